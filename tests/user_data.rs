//! Sweeps of a user's own CSV or Parquet file: the same outputs and the same
//! guarantees as the book's data — reproducible bits, keys that follow the
//! file's bytes, a spec.toml that reruns, shards that merge.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use polars::prelude::{Column, DataFrame};
use polars_io::prelude::ParquetWriter;
use wdsweep::spec::Spec;
use wdsweep::sweep::{self, JobResult, Progress};

/// `n` rows of three features and a target y = 2a − b + 0.5c + 1 + noise.
fn rows(n: usize) -> Vec<[f64; 4]> {
    (0..n)
        .map(|i| {
            let t = i as f64;
            let a = (t * 0.37).sin() * 3.0;
            let b = (t * 1.3).cos() + t * 0.01;
            let c = ((i * 7) % 11) as f64;
            let noise = (t * 12.9898).sin() * 0.3;
            [a, b, c, 2.0 * a - b + 0.5 * c + 1.0 + noise]
        })
        .collect()
}

/// The rows as CSV, every number as the shortest text that reads back to
/// it, so that CSV and Parquet hold the same floats.
fn csv(rows: &[[f64; 4]]) -> String {
    let mut text = String::from("a,b,c,y\n");
    for r in rows {
        text.push_str(&format!("{},{},{},{}\n", r[0], r[1], r[2], r[3]));
    }
    text
}

fn write_parquet(path: &Path, rows: &[[f64; 4]]) {
    let column = |name: &str, j: usize| {
        Column::new(name.into(), rows.iter().map(|r| r[j]).collect::<Vec<f64>>())
    };
    let mut df = DataFrame::new_infer_height(vec![
        column("a", 0),
        column("b", 1),
        column("c", 2),
        column("y", 3),
    ])
    .unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(&mut df)
        .unwrap();
}

/// A spec reading `file`, with a small grid.
fn spec_text(file: &str, grid: &str) -> String {
    format!(
        "[data]\npath = \"{file}\"\ntarget = \"y\"\n[train]\nepochs = 5\nbatch_size = 8\n\
         [grid]\n{grid}\n"
    )
}

const GRID: &str = "lambda = [0, 0.1, 1]\nlr = [0.01, 0.05]\nseed = { count = 3 }";

/// A folder holding `data.csv` of 60 rows and `s.toml` reading it.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), "data.csv", &csv(&rows(60)));
    let spec = write_spec(dir.path(), "s.toml", &spec_text("data.csv", GRID));
    (dir, spec)
}

fn run_ok(spec: &Path, out: &Path, extra: &[&str]) {
    let o = run(spec, out, extra);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A column of `jobs.csv` by name.
fn jobs_column(out: &Path, name: &str) -> Vec<String> {
    let (header, rows) = read_csv(&out.join("jobs.csv"));
    let at = header.iter().position(|h| h == name).unwrap();
    rows.into_iter().map(|r| r[at].clone()).collect()
}

fn experiment(out: &Path) -> String {
    let text = std::fs::read_to_string(out.join("spec.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc["provenance"]["experiment"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn csv_and_parquet_of_the_same_numbers_give_the_same_losses_under_their_own_keys() {
    let (dir, spec) = setup();
    write_parquet(&dir.path().join("data.parquet"), &rows(60));
    let parquet = write_spec(dir.path(), "p.toml", &spec_text("data.parquet", GRID));
    let (a, b) = (dir.path().join("csv"), dir.path().join("parquet"));
    run_ok(&spec, &a, &[]);
    run_ok(&parquet, &b, &[]);
    for column in ["val_loss", "train_loss", "l2_penalty", "status"] {
        assert_eq!(jobs_column(&a, column), jobs_column(&b, column), "{column}");
    }
    assert!(jobs_column(&a, "status").iter().all(|s| s == "ok"));
    // Other bytes, so other keys: the format and the file's hash are part of
    // a job's identity.
    let (ka, kb) = (jobs_column(&a, "key"), jobs_column(&b, "key"));
    assert!(ka.iter().zip(&kb).all(|(x, y)| x != y));
    assert!(png_size(&b.join("val_loss_vs_lambda.png")).0 > 0);
}

#[test]
fn the_spec_toml_of_a_run_records_the_file_and_reruns_from_its_folder() {
    let (dir, spec) = setup();
    let out = dir.path().join("results").join("mine");
    run_ok(&spec, &out, &[]);
    let written = std::fs::read_to_string(out.join("spec.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&written).unwrap();
    let data = doc["data"].as_table().unwrap();
    assert_eq!(data["path"].as_str(), Some("../../data.csv"), "{written}");
    assert_eq!(data["target"].as_str(), Some("y"));
    let features: Vec<&str> = data["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(features, ["a", "b", "c"]);
    assert_eq!(data["val_fraction"].as_float(), Some(0.2));
    assert_eq!(data["standardize"].as_bool(), Some(true));
    let bytes = std::fs::read(dir.path().join("data.csv")).unwrap();
    assert_eq!(
        doc["provenance"]["data_file_blake3"].as_str(),
        Some(blake3::hash(&bytes).to_hex().as_str())
    );

    // Run from anywhere, the folder's own spec finds the file and is the
    // same experiment: every job is reused.
    let o = run_loud(&out.join("spec.toml"), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("18 of 18 jobs already done, running 0"),
        "{}",
        stderr(&o)
    );
    let o = wdsweep()
        .arg("verify")
        .arg(out.join("spec.toml"))
        .arg("--against")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn an_edited_file_is_a_different_experiment_with_different_keys() {
    let (dir, spec) = setup();
    let (out, other) = (dir.path().join("out"), dir.path().join("other"));
    run_ok(&spec, &out, &[]);

    // One value changed.
    let mut data = rows(60);
    data[17][1] += 0.5;
    write_spec(dir.path(), "data.csv", &csv(&data));
    run_ok(&spec, &other, &[]);
    let (before, after) = (jobs_column(&out, "key"), jobs_column(&other, "key"));
    assert_eq!(before.len(), 18);
    assert!(before.iter().zip(&after).all(|(a, b)| a != b));
    assert_ne!(experiment(&out), experiment(&other));

    let o = run(&spec, &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("different experiment") && stderr(&o).contains("data file's bytes"),
        "{}",
        stderr(&o)
    );
    run_ok(&spec, &out, &["--fresh"]);
    assert_eq!(jobs_column(&out, "key"), after);

    // The book's data into a folder of a data file's results: the file is
    // named, not a list of the book's keys absent there.
    let book = write_spec(dir.path(), "book.toml", "[grid]\nlambda = [0]\n");
    let o = run(&book, &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_mentions(
        &stderr(&o),
        &["the book's synthetic data here, the data file", "data.csv"],
    );
    assert!(!stderr(&o).contains("absent"), "{}", stderr(&o));
}

#[test]
fn a_moved_file_is_the_same_experiment() {
    let (dir, spec) = setup();
    let out = dir.path().join("out");
    run_ok(&spec, &out, &[]);
    std::fs::create_dir(dir.path().join("moved")).unwrap();
    std::fs::rename(
        dir.path().join("data.csv"),
        dir.path().join("moved/data.csv"),
    )
    .unwrap();
    write_spec(dir.path(), "s.toml", &spec_text("moved/data.csv", GRID));
    let o = run_loud(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("18 of 18 jobs already done"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn one_and_two_threads_write_byte_identical_files() {
    let (dir, spec) = setup();
    let outs: Vec<PathBuf> = [("a", "1"), ("b", "2"), ("c", "1")]
        .iter()
        .map(|(name, threads)| {
            let out = dir.path().join(name);
            run_ok(&spec, &out, &["-j", threads]);
            out
        })
        .collect();
    for out in &outs[1..] {
        assert_same_files(&outs[0], out);
    }
}

#[test]
fn shards_merge_into_the_files_of_a_single_run() {
    let (dir, spec) = setup();
    let (single, sharded) = (dir.path().join("single"), dir.path().join("sharded"));
    run_ok(&spec, &single, &[]);
    for shard in ["0/2", "1/2"] {
        run_ok(&spec, &sharded, &["--shard", shard]);
    }
    let o = wdsweep()
        .args(["merge", "-q"])
        .arg(&sharded)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_files(&single, &sharded);
}

fn run_in_process(spec: &Spec) -> Vec<JobResult> {
    sweep::run_all(spec, &Progress::new(0, true))
}

#[test]
fn a_job_gives_the_same_bits_alone_and_in_any_grid() {
    // So the split, the scaling and the initial weights of a seed are the
    // same for every λ and lr of it.
    let (dir, _) = setup();
    let spec_of = |name: &str, grid: &str| {
        let path = write_spec(dir.path(), name, &spec_text("data.csv", grid));
        Spec::from_file(&path, 1000).unwrap()
    };
    let alone = spec_of("alone.toml", "lambda = [0.1]\nlr = [0.05]\nseed = [2]");
    let big = spec_of(
        "big.toml",
        "lambda = [0, 0.1, 1, 5]\nlr = [0.01, 0.05, 0.2]\nseed = [7, 2, 0]",
    );
    let find = |results: Vec<JobResult>| {
        results
            .into_iter()
            .find(|r| r.lambda == 0.1 && r.lr == 0.05 && r.seed == 2)
            .unwrap()
    };
    let (a, b) = (find(run_in_process(&alone)), find(run_in_process(&big)));
    assert_eq!(outcome_bits(&a.outcome), outcome_bits(&b.outcome));
    assert_eq!(a.key, b.key);
}

#[test]
fn the_file_is_read_once_when_the_spec_is_read() {
    let (dir, spec) = setup();
    let spec = Spec::from_file(&spec, 1000).unwrap();
    let first = run_in_process(&spec);
    // No job goes back to the file.
    std::fs::remove_file(dir.path().join("data.csv")).unwrap();
    let second = run_in_process(&spec);
    assert_eq!(first.len(), 18);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(outcome_bits(&a.outcome), outcome_bits(&b.outcome));
    }
}

#[test]
fn a_tall_table_trains_on_w_and_a_wide_one_in_the_span_of_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    // Tall: 48 training rows, 3 inputs. Wide: 4 training rows, 7 inputs.
    write_spec(dir.path(), "tall.csv", &csv(&rows(60)));
    let mut wide = String::from("a,b,c,d,e,f,g,y\n");
    for i in 0..6 {
        let t = i as f64;
        let cells: Vec<String> = (0..8)
            .map(|j| ((t + 1.0) * (j as f64 + 0.5)).sin().to_string())
            .collect();
        wide.push_str(&cells.join(","));
        wide.push('\n');
    }
    write_spec(dir.path(), "wide.csv", &wide);
    for (file, split, exact) in [
        ("tall.csv", "", true),
        ("wide.csv", "train_rows = 4\n", false),
    ] {
        let text = format!(
            "[data]\npath = \"{file}\"\ntarget = \"y\"\n{split}[train]\nepochs = 20\n\
             batch_size = 2\n[grid]\nlambda = [0, 0.3]\nlr = [0.05]\nseed = [1, 4]\n"
        );
        let spec = Spec::from_file(&write_spec(dir.path(), "s.toml", &text), 100).unwrap();
        for r in run_in_process(&spec) {
            let data = wdsweep::data::for_seed(&spec.data, r.seed).unwrap();
            let init =
                wdsweep::data::initial_weights(data.num_inputs(), spec.train.init_std, r.seed);
            let reference =
                wdsweep::train::fit(&data, &spec.train, r.lambda, r.lr, init.view(), r.seed)
                    .outcome;
            let (got, want) = (r.outcome.val_loss.unwrap(), reference.val_loss.unwrap());
            if exact {
                assert_eq!(got.to_bits(), want.to_bits(), "{file}");
            } else {
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs(),
                    "{file}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn a_bad_cell_in_a_column_the_spec_leaves_out_is_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = csv(&rows(30)).replace("a,b,c,y", "a,b,c,y,note");
    text = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else {
                format!("{l},n/a {i}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    write_spec(dir.path(), "data.csv", &text);
    let spec = write_spec(
        dir.path(),
        "s.toml",
        "[data]\npath = \"data.csv\"\ntarget = \"y\"\nfeatures = [\"c\", \"a\"]\n\
         train_rows = 20\n",
    );
    let spec = Spec::from_file(&spec, 10).unwrap();
    let table = spec.data.table().unwrap();
    assert_eq!(table.features, ["c", "a"]);
    assert_eq!((table.num_train(), table.num_val()), (20, 10));
    assert_eq!(table.x[[3, 0]], rows(30)[3][2]);
}
