//! Helpers shared by the end-to-end tests: run the real binary in a
//! temporary folder and read what it wrote.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wdsweep::train::Outcome;

pub fn wdsweep() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wdsweep"))
}

/// Writes `text` as `name` in `dir` and returns its path.
pub fn write_spec(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `wdsweep run SPEC --out OUT -q` plus `extra`, returning the output.
pub fn run(spec: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut all = vec!["-q"];
    all.extend_from_slice(extra);
    run_loud(spec, out, &all)
}

/// Runs `wdsweep run SPEC --out OUT` plus `extra`, with its report and
/// progress, returning the output.
pub fn run_loud(spec: &Path, out: &Path, extra: &[&str]) -> Output {
    wdsweep()
        .arg("run")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// Asserts that a message contains every one of `words`.
pub fn assert_mentions(err: &str, words: &[&str]) {
    for w in words {
        assert!(err.contains(w), "{err:?} does not mention {w:?}");
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses a CSV file into its header and rows of cells (the files wdsweep
/// writes contain no quoted fields).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// The width and height of a PNG file, decoding every pixel on the way.
pub fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    (info.width, info.height)
}

/// Every final file of a results folder (all but the journal and the lock).
pub const FINAL_FILES: [&str; 9] = [
    "spec.toml",
    "jobs.csv",
    "jobs.parquet",
    "curves.parquet",
    "summary.csv",
    "summary.md",
    "best.json",
    "val_loss_vs_lambda.png",
    "loss_curves.png",
];

/// Asserts that two results folders hold byte-identical final files.
pub fn assert_same_files(a: &Path, b: &Path) {
    for name in FINAL_FILES {
        let (x, y) = (
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
        );
        assert!(x == y, "{name} differs between {a:?} and {b:?}");
    }
}

/// Every number of an outcome as raw bits, so that comparisons are exact.
pub fn outcome_bits(o: &Outcome) -> Vec<Option<u64>> {
    let mut v = vec![
        o.train_loss.map(f64::to_bits),
        o.val_loss.map(f64::to_bits),
        o.l2_penalty.map(f64::to_bits),
    ];
    for e in &o.curve {
        v.push(e.train.map(f64::to_bits));
        v.push(e.val.map(f64::to_bits));
    }
    v
}
