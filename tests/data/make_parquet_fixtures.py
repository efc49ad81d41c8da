"""Writes the Parquet fixtures of tests/data_errors.rs: columns stored in
types that wdsweep's polars build does not read. Rust's polars here cannot
write them (its dtype features are off), so they are made once with
pyarrow and committed. Rerun with: python3 make_parquet_fixtures.py
"""

import pyarrow as pa
import pyarrow.parquet as pq

y = pa.array([3.0, 5.0, 4.0, 9.0, 8.0, 7.0], pa.float64())
b = pa.array([10, 30, 20, 50, 40, 60], pa.int64())

# A text column stored as a dictionary (a "category"), next to good ones.
label = pa.array(["lo", "hi", "lo", "hi", "lo", "hi"]).dictionary_encode()
pq.write_table(pa.table({"label": label, "b": b, "y": y}), "dictionary_column.parquet")

# A feature stored as 8-bit integers.
a8 = pa.array([1, 2, 3, 4, 5, 6], pa.int8())
pq.write_table(pa.table({"a": a8, "b": b, "y": y}), "int8_column.parquet")
