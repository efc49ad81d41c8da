//! Regression tests for a data file that cannot be swept as the spec asks.
//! Each runs the binary on the smallest file that shows the problem and
//! checks that the run is refused before anything is written: exit code 2,
//! no results folder, and a message naming the file and the row, column or
//! key to fix.

mod common;

use std::path::Path;

use common::*;
use polars::prelude::{Column, DataFrame};
use polars_io::prelude::ParquetWriter;

/// Five clean rows: two features and the target `y`.
const GOOD: &str = "a,b,y\n1,10,3\n2,30,5\n3,20,4\n4,50,9\n5,40,8\n";

/// Runs `spec` (written into `dir`) into `dir/out` and returns the message,
/// after checking that it was refused as bad input and wrote nothing.
fn refused_in(dir: &Path, spec: &str) -> String {
    let spec = write_spec(dir, "s.toml", spec);
    let out = dir.join("out");
    let o = run(&spec, &out, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!out.exists(), "a refused run must not create its folder");
    assert_eq!(err.lines().count(), 1, "one message, no panic: {err}");
    err
}

/// A spec reading `data.csv` (holding `csv`) with target `y` and the extra
/// `[data]` keys `keys`, refused.
fn refused(csv: &str, keys: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), "data.csv", csv);
    refused_in(
        dir.path(),
        &format!("[data]\npath = \"data.csv\"\ntarget = \"y\"\n{keys}\n[train]\nbatch_size = 1\n"),
    )
}

/// Writes a Parquet file of float columns (`None` is a null cell).
fn write_parquet(path: &Path, columns: Vec<Column>) {
    let mut df = DataFrame::new_infer_height(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();
}

#[test]
fn the_clean_file_runs() {
    // The baseline every case below breaks in one place.
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), "data.csv", GOOD);
    let spec = write_spec(
        dir.path(),
        "s.toml",
        "[data]\npath = \"data.csv\"\ntarget = \"y\"\n[train]\nbatch_size = 1\n",
    );
    let o = run(&spec, &dir.path().join("out"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_missing_file_names_the_path_as_resolved_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused_in(
        dir.path(),
        "[data]\npath = \"sub/nope.csv\"\ntarget = \"y\"\n",
    );
    let resolved = dir.path().join("sub/nope.csv");
    assert_mentions(
        &err,
        &[
            "s.toml",
            "[data] path = \"sub/nope.csv\"",
            &resolved.display().to_string(),
            "relative path is taken from the spec's folder",
        ],
    );
}

#[test]
fn a_missing_target_column_lists_the_columns_and_suggests_one() {
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), "data.csv", GOOD);
    let err = refused_in(dir.path(), "[data]\npath = \"data.csv\"\ntarget = \"Y\"\n");
    assert_mentions(
        &err,
        &[
            "data.csv has no column \"Y\"",
            "[data] target",
            "did you mean 'y'?",
            "a, b, y",
        ],
    );
}

#[test]
fn a_missing_feature_column_names_the_key() {
    let err = refused(GOOD, "features = [\"a\", \"bb\"]");
    assert_mentions(
        &err,
        &["data.csv has no column \"bb\"", "[data] features", "'b'"],
    );
}

#[test]
fn a_non_numeric_cell_names_its_row_line_and_column() {
    let err = refused("a,b,y\n1,10,3\n2,30,5\n3,thirty,4\n4,50,9\n5,40,8\n", "");
    assert_mentions(
        &err,
        &[
            "data.csv: row 3 (line 4 of the file), column \"b\"",
            "\"thirty\" is not a number",
        ],
    );
}

#[test]
fn a_non_numeric_cell_past_the_first_hundred_rows_is_found_too() {
    // Polars guesses a column's type from its first rows by default; the
    // whole column must count.
    let mut csv = String::from("a,b,y\n");
    for i in 0..150 {
        let b = if i == 120 {
            "n/a".to_string()
        } else {
            i.to_string()
        };
        csv.push_str(&format!("{i},{b},{}\n", i % 7));
    }
    let err = refused(&csv, "");
    assert_mentions(
        &err,
        &["row 121 (line 122 of the file), column \"b\"", "\"n/a\""],
    );
}

#[test]
fn an_empty_cell_names_its_row_and_column() {
    let err = refused("a,b,y\n1,10,3\n2,30,5\n3,20,4\n4,,9\n5,40,8\n", "");
    assert_mentions(
        &err,
        &[
            "data.csv: row 4 (line 5 of the file), column \"b\"",
            "the cell is empty",
            "leave the column out of [data] features",
        ],
    );
    // An empty target cell cannot be left out.
    let err = refused("a,b,y\n1,10,3\n2,30,\n3,20,4\n4,50,9\n5,40,8\n", "");
    assert_mentions(&err, &["row 2 (line 3 of the file), column \"y\""]);
    assert!(!err.contains("features"), "{err}");
}

#[test]
fn nan_in_the_data_names_its_row_and_column() {
    let err = refused("a,b,y\n1,10,3\n2,NaN,5\n3,20,4\n4,50,9\n5,40,8\n", "");
    assert_mentions(
        &err,
        &[
            "data.csv: row 2 (line 3 of the file), column \"b\"",
            "NaN",
            "finite",
        ],
    );
}

#[test]
fn inf_in_the_data_names_its_row_and_column() {
    let err = refused("a,b,y\n1,10,3\n2,30,5\n3,20,4\n4,50,9\n5,40,-inf\n", "");
    assert_mentions(
        &err,
        &[
            "data.csv: row 5 (line 6 of the file), column \"y\"",
            "-inf",
            "finite",
        ],
    );
}

#[test]
fn the_first_bad_cell_in_the_file_is_the_one_named() {
    // Column a goes wrong later than column b, so b's cell is reported.
    let err = refused("a,b,y\n1,10,3\n2,30,5\n3,x,4\n,50,9\n5,40,8\n", "");
    assert_mentions(&err, &["row 3", "column \"b\""]);
}

#[test]
fn fewer_rows_than_the_split_needs_say_what_would_work() {
    // Two rows: one validates (at least one does) and one would train.
    let err = refused("a,b,y\n1,10,3\n2,30,5\n", "");
    assert_mentions(
        &err,
        &[
            "data.csv has 2 data rows",
            "val_fraction = 0.2",
            "1 to train",
            "at least 2 rows",
        ],
    );
    let err = refused(GOOD, "train_rows = 5");
    assert_mentions(
        &err,
        &[
            "data.csv has 5 data rows",
            "train_rows = 5",
            "no row to validate",
            "train_rows from 2 to 4",
        ],
    );
    let err = refused("a,b,y\n", "");
    assert_mentions(&err, &["data.csv has no data rows"]);
}

#[test]
fn a_batch_larger_than_the_training_rows_is_refused_once_they_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), "data.csv", GOOD);
    let err = refused_in(
        dir.path(),
        "[data]\npath = \"data.csv\"\ntarget = \"y\"\n[train]\nbatch_size = 5\n",
    );
    assert_mentions(
        &err,
        &[
            "s.toml: [train] batch_size = 5",
            "4 training rows",
            "data.csv",
            "batch_size from 1 to 4",
        ],
    );
}

#[test]
fn a_column_constant_in_the_training_rows_is_named() {
    let err = refused(
        "a,b,y\n7,10,3\n7,30,5\n7,20,4\n4,50,9\n5,40,8\n",
        "train_rows = 3",
    );
    assert_mentions(
        &err,
        &[
            "data.csv: column \"a\"",
            "the same value, 7",
            "first 3 rows",
            "cannot be standardised",
            "standardize = false",
        ],
    );
}

#[test]
fn a_column_constant_in_one_seeds_training_rows_names_the_seed() {
    // Column a is 0 but in one row; with half the rows validating, some seed
    // of the ten validates that row and leaves a constant.
    let mut csv = String::from("a,b,y\n");
    for i in 0..6 {
        csv.push_str(&format!("{},{i},{}\n", u8::from(i == 2), i * 2));
    }
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), "data.csv", &csv);
    let err = refused_in(
        dir.path(),
        "[data]\npath = \"data.csv\"\ntarget = \"y\"\nval_fraction = 0.5\n\
         [train]\nbatch_size = 1\n[grid]\nseed = { count = 10 }\n",
    );
    assert_mentions(&err, &["column \"a\"", "the same value, 0", "of seed "]);
}

#[test]
fn synthetic_keys_beside_a_path_are_named_as_the_books() {
    let err = refused(GOOD, "num_train = 3\nnoise_std = 0.1");
    assert_mentions(
        &err,
        &[
            "s.toml: [data] num_train and noise_std belong to the built-in synthetic data set",
            "path = \"data.csv\"",
            "remove them",
        ],
    );
}

#[test]
fn file_keys_without_a_path_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused_in(dir.path(), "[data]\ntarget = \"y\"\ntrain_rows = 3\n");
    assert_mentions(
        &err,
        &[
            "s.toml: [data] target and train_rows describe a data file",
            "no path",
        ],
    );
}

#[test]
fn both_split_keys_are_refused() {
    let err = refused(GOOD, "val_fraction = 0.3\ntrain_rows = 3");
    assert_mentions(
        &err,
        &[
            "s.toml",
            "val_fraction and train_rows both choose the split",
            "keep one",
        ],
    );
}

#[test]
fn a_val_fraction_outside_0_to_1_is_refused() {
    for f in ["0", "1", "1.5", "-0.2"] {
        let err = refused(GOOD, &format!("val_fraction = {f}"));
        assert_mentions(&err, &["s.toml", "[data] val_fraction", "between 0 and 1"]);
    }
}

#[test]
fn an_unknown_extension_without_a_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), "data.txt", GOOD);
    let err = refused_in(dir.path(), "[data]\npath = \"data.txt\"\ntarget = \"y\"\n");
    assert_mentions(
        &err,
        &[
            "s.toml: [data] path = \"data.txt\"",
            "extension",
            "format = \"csv\"",
        ],
    );
    // An unknown format name is refused where it is written.
    let err = refused_in(
        dir.path(),
        "[data]\npath = \"data.txt\"\nformat = \"xlsx\"\ntarget = \"y\"\n",
    );
    assert_mentions(&err, &["s.toml:3:", "[data] format", "csv", "parquet"]);
}

#[test]
fn a_format_that_does_not_match_the_file_says_which_it_tried() {
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), "data.parquet", GOOD);
    let err = refused_in(
        dir.path(),
        "[data]\npath = \"data.parquet\"\ntarget = \"y\"\n",
    );
    assert_mentions(
        &err,
        &["data.parquet: cannot be read as parquet", "[data] format"],
    );
}

#[test]
fn the_target_among_the_features_and_no_features_are_refused() {
    let err = refused(GOOD, "features = [\"a\", \"y\"]");
    assert_mentions(&err, &["s.toml", "[data] features", "target column \"y\""]);
    let err = refused(GOOD, "features = []");
    assert_mentions(&err, &["s.toml", "features = []"]);
    let err = refused(GOOD, "features = [\"a\", \"a\"]");
    assert_mentions(&err, &["\"a\" twice"]);
    let err = refused("y\n1\n2\n3\n", "");
    assert_mentions(&err, &["data.csv has no column besides the target \"y\""]);
}

#[test]
fn a_null_cell_in_parquet_names_its_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(
        &dir.path().join("data.parquet"),
        vec![
            Column::new("a".into(), [Some(1.0), Some(2.0), None, Some(4.0)]),
            Column::new("y".into(), [1.0, 2.0, 3.0, 4.0]),
        ],
    );
    let err = refused_in(
        dir.path(),
        "[data]\npath = \"data.parquet\"\ntarget = \"y\"\n[train]\nbatch_size = 1\n",
    );
    assert_mentions(
        &err,
        &["data.parquet: row 3, column \"a\"", "the cell is empty"],
    );
    assert!(!err.contains("line"), "Parquet has no lines: {err}");
}

#[test]
fn text_and_booleans_in_parquet_are_not_numbers() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(
        &dir.path().join("data.parquet"),
        vec![
            Column::new("a".into(), ["1", "2", "three", "4"]),
            Column::new("flag".into(), [true, false, true, true]),
            Column::new("y".into(), [1i64, 2, 3, 4]),
        ],
    );
    let spec = "[data]\npath = \"data.parquet\"\ntarget = \"y\"\n[train]\nbatch_size = 1\n";
    let err = refused_in(dir.path(), spec);
    // The flag column goes wrong in its first row, before a's third.
    assert_mentions(
        &err,
        &[
            "data.parquet: row 1, column \"flag\"",
            "\"true\" is not a number",
        ],
    );
    let err = refused_in(
        dir.path(),
        &spec.replace("target", "features = [\"a\"]\ntarget"),
    );
    assert_mentions(&err, &["row 3, column \"a\"", "\"three\" is not a number"]);
}

/// Copies a committed Parquet fixture (see tests/data/) into `dir`.
fn fixture(dir: &Path, name: &str) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::copy(&from, dir.join(name)).unwrap();
}

#[test]
fn a_parquet_column_stored_in_a_type_not_read_is_named_with_its_type() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), "float16_column.parquet");
    let err = refused_in(
        dir.path(),
        "[data]\npath = \"float16_column.parquet\"\ntarget = \"y\"\n[train]\nbatch_size = 1\n",
    );
    assert_mentions(
        &err,
        &[
            "float16_column.parquet",
            "column \"a\"",
            "Float16",
            "[data] features",
        ],
    );
}

#[test]
fn small_integers_and_decimals_in_parquet_read_as_the_same_numbers_as_in_csv() {
    let dir = tempfile::tempdir().unwrap();
    let mut losses = Vec::new();
    for file in ["small_types.parquet", "small_types.csv"] {
        fixture(dir.path(), file);
        let spec = write_spec(
            dir.path(),
            &format!("{file}.toml"),
            &format!(
                "[data]\npath = \"{file}\"\ntarget = \"y\"\ntrain_rows = 4\n[train]\n\
                 batch_size = 1\n[grid]\nlambda = [0, 1]\n"
            ),
        );
        let out = dir.path().join(format!("out-{file}"));
        let o = run(&spec, &out, &[]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let (header, rows) = read_csv(&out.join("jobs.csv"));
        let metrics: Vec<usize> = ["status", "train_loss", "val_loss", "l2_penalty"]
            .iter()
            .map(|name| header.iter().position(|h| h == name).unwrap())
            .collect();
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|row| metrics.iter().map(|&i| row[i].clone()).collect())
            .collect();
        losses.push(table);
    }
    assert_eq!(losses[0], losses[1]);
    assert!(
        losses[0].iter().all(|row| row[0] == "ok"),
        "{:?}",
        losses[0]
    );
}

#[test]
fn a_parquet_column_the_spec_does_not_use_is_never_read() {
    // A dictionary-encoded text column beside the ones the spec uses: left
    // out, it is not read at all; used, it is refused by name, not a crash.
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), "dictionary_column.parquet");
    let spec = write_spec(
        dir.path(),
        "used.toml",
        "[data]\npath = \"dictionary_column.parquet\"\ntarget = \"y\"\nfeatures = [\"b\"]\n\
         [train]\nbatch_size = 1\n",
    );
    let o = run(&spec, &dir.path().join("used"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = refused_in(
        dir.path(),
        "[data]\npath = \"dictionary_column.parquet\"\ntarget = \"y\"\n[train]\nbatch_size = 1\n",
    );
    assert_mentions(
        &err,
        &[
            "dictionary_column.parquet",
            "column \"label\"",
            "Dictionary",
        ],
    );
}

#[test]
fn a_data_file_where_the_run_writes_a_result_is_refused_and_kept() {
    // The data is called summary.csv and sits in the output folder.
    let dir = tempfile::tempdir().unwrap();
    let data = write_spec(dir.path(), "summary.csv", GOOD);
    let spec = write_spec(
        dir.path(),
        "s.toml",
        "[data]\npath = \"summary.csv\"\ntarget = \"y\"\n[train]\nbatch_size = 1\n",
    );
    let o = run(&spec, dir.path(), &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_mentions(&err, &["summary.csv", "the data file is", "--out"]);
    assert_eq!(std::fs::read_to_string(&data).unwrap(), GOOD);
    assert!(!dir.path().join("jobs.csv").exists());
}

#[test]
fn a_header_that_names_a_column_twice_is_refused() {
    let err = refused("x,x,y\n1,2,3\n2,1,4\n3,5,2\n4,4,1\n5,3,6\n", "");
    assert_mentions(&err, &["data.csv", "\"x\" more than once"]);
}

#[test]
fn a_misspelt_parquet_feature_lists_every_column_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), "small_types.parquet");
    let err = refused_in(
        dir.path(),
        "[data]\npath = \"small_types.parquet\"\ntarget = \"y\"\nfeatures = [\"i8\", \"u61\"]\n",
    );
    assert_mentions(
        &err,
        &[
            "no column \"u61\"",
            "did you mean",
            "its columns are i8, i16, u8, u16, dec, y",
        ],
    );
}
