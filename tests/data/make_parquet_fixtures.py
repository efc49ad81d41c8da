"""Writes the Parquet fixtures of tests/data_errors.rs and tests/user_data.rs:
columns stored in types that Rust's polars here cannot write, made once with
pyarrow and committed. Rerun with: python3 make_parquet_fixtures.py
"""

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

y = pa.array([3.0, 5.0, 4.0, 9.0, 8.0, 7.0], pa.float64())
b = pa.array([10, 30, 20, 50, 40, 60], pa.int64())

# A text column stored as a dictionary (a "category"), next to good ones.
label = pa.array(["lo", "hi", "lo", "hi", "lo", "hi"]).dictionary_encode()
pq.write_table(pa.table({"label": label, "b": b, "y": y}), "dictionary_column.parquet")

# A feature stored as 16-bit floats, which wdsweep does not read.
half = pa.array(np.array([1, 2, 3, 4, 5, 6], np.float16))
pq.write_table(pa.table({"a": half, "b": b, "y": y}), "float16_column.parquet")

# Small integers and decimals, which it reads; small_types.csv holds the
# same values as text.
small = {
    "i8": pa.array([-3, 1, 4, -1, 5, 9], pa.int8()),
    "i16": pa.array([200, -300, 150, 800, -20, 0], pa.int16()),
    "u8": pa.array([250, 1, 17, 3, 99, 128], pa.uint8()),
    "u16": pa.array([60000, 2, 1000, 7, 512, 33], pa.uint16()),
    "dec": pa.array(
        [Decimal(v) for v in ["1.25", "-0.50", "3.75", "2.00", "0.05", "9.99"]],
        pa.decimal128(5, 2),
    ),
    "y": y,
}
pq.write_table(pa.table(small), "small_types.parquet")
with open("small_types.csv", "w") as f:
    f.write(",".join(small) + "\n")
    for row in zip(*(column.to_pylist() for column in small.values())):
        f.write(",".join(str(v) for v in row) + "\n")
