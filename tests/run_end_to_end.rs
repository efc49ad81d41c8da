//! `wdsweep run` on a small spec, checking every file it writes.

mod common;

use std::collections::BTreeMap;

use common::*;

const SMALL: &str = r#"
name = "small"
[data]
num_train = 10
num_val = 30
num_inputs = 20
[train]
epochs = 4
batch_size = 3
[grid]
lambda = [0, 0.1, 3]
lr = [0.01, 0.03]
seed = { count = 4 }
"#;

#[test]
fn a_small_sweep_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "small.toml", SMALL);
    let out = dir.path().join("out");
    let o = run(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));

    for name in FINAL_FILES {
        assert!(out.join(name).is_file(), "{name} is missing");
    }

    // jobs.csv: one row per job in job order, seed fastest.
    let (header, rows) = read_csv(&out.join("jobs.csv"));
    assert_eq!(
        header,
        [
            "job",
            "key",
            "lambda",
            "lr",
            "seed",
            "status",
            "train_loss",
            "val_loss",
            "l2_penalty"
        ]
    );
    assert_eq!(rows.len(), 3 * 2 * 4);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], i.to_string());
        assert_eq!(row[4], (i % 4).to_string());
        assert_eq!(row[5], "ok");
    }
    assert_eq!(rows[8][3], "0.01");
    assert_eq!(rows[4][3], "0.03");

    // The parquet tables agree with the CSV and have the curves' shape.
    let jobs = wdsweep::store::read_parquet(&out.join("jobs.parquet")).unwrap();
    assert_eq!(jobs.height(), rows.len());
    let names = |df: &polars::prelude::DataFrame| -> Vec<String> {
        df.get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect()
    };
    assert_eq!(names(&jobs), header);
    let curves = wdsweep::store::read_parquet(&out.join("curves.parquet")).unwrap();
    assert_eq!(names(&curves), ["job", "epoch", "train_loss", "val_loss"]);
    assert_eq!(
        curves.height(),
        rows.len() * 5,
        "epochs 0 to 4 for every job"
    );

    // summary.csv equals a mean and sample std recomputed from jobs.csv.
    let mut groups: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for row in &rows {
        groups
            .entry((row[2].clone(), row[3].clone()))
            .or_default()
            .push(row[7].parse().unwrap());
    }
    let (sheader, srows) = read_csv(&out.join("summary.csv"));
    assert_eq!(
        sheader,
        [
            "lambda",
            "lr",
            "n",
            "n_ok",
            "n_diverged",
            "val_loss_mean",
            "val_loss_std",
            "val_loss_sem",
            "train_loss_mean",
            "l2_penalty_mean"
        ]
    );
    assert_eq!(srows.len(), 6);
    for row in &srows {
        let vals = &groups[&(row[0].clone(), row[1].clone())];
        let n = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let got = |i: usize| row[i].parse::<f64>().unwrap();
        assert_eq!(row[2], "4");
        assert!(
            (got(5) - mean).abs() <= 1e-12 * mean.abs(),
            "mean {} vs {mean}",
            got(5)
        );
        assert!(
            (got(6) - std).abs() <= 1e-9 * std,
            "std {} vs {std}",
            got(6)
        );
        assert!((got(7) - std / n.sqrt()).abs() <= 1e-9 * std);
    }

    // best.json names a grid point and says the run is complete.
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("best.json")).unwrap()).unwrap();
    assert_eq!(best["complete"], true);
    assert!([0.0, 0.1, 3.0].contains(&best["lambda"].as_f64().unwrap()));
    assert_eq!(best["n_ok"], 4);

    // The PNGs decode and have their sizes.
    let (w, h) = png_size(&out.join("val_loss_vs_lambda.png"));
    assert!(w >= 800 && h >= 500, "{w}×{h}");
    let (w, h) = png_size(&out.join("loss_curves.png"));
    assert!(w >= 800 && h >= 400, "{w}×{h}");

    // spec.toml is itself a spec that reproduces the run.
    let again = dir.path().join("again");
    let o = run(&out.join("spec.toml"), &again, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(out.join("jobs.csv")).unwrap(),
        std::fs::read(again.join("jobs.csv")).unwrap()
    );
}

#[test]
fn the_terminal_report_names_the_choice_and_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "small.toml", SMALL);
    let out = dir.path().join("out");
    let o = run_loud(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(text.contains("← chosen"), "{text}");
    assert!(text.contains("mean ± SEM over 4 seeds"), "{text}");
    assert!(text.contains(&out.display().to_string()), "{text}");
    // Not a terminal: plain progress lines instead of a bar.
    assert!(stderr(&o).contains("24/24 jobs (100%)"), "{}", stderr(&o));
}

#[test]
fn quiet_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "small.toml", SMALL);
    let o = run(&spec, &dir.path().join("out"), &[]);
    assert!(o.status.success());
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
}

#[test]
fn a_folder_of_another_experiment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let spec = write_spec(dir.path(), "small.toml", SMALL);
    assert!(run(&spec, &out, &[]).status.success());
    let before = std::fs::read(out.join("jobs.csv")).unwrap();

    let other = write_spec(
        dir.path(),
        "other.toml",
        &SMALL.replace("epochs = 4", "epochs = 5"),
    );
    let o = run(&other, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("different experiment") && err.contains("epochs"),
        "{err}"
    );
    assert!(err.contains("--fresh"), "{err}");
    assert_eq!(
        std::fs::read(out.join("jobs.csv")).unwrap(),
        before,
        "nothing may be touched"
    );

    let o = run(&other, &out, &["--fresh"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(out.join("jobs.csv")).unwrap(), before);
}

#[test]
fn every_cell_diverging_exits_3_and_still_writes_files() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "wild.toml",
        "[grid]\nlambda = [0, 1]\nlr = [10]\nseed = { count = 2 }\n",
    );
    let out = dir.path().join("out");
    let o = run(&spec, &out, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let best = std::fs::read_to_string(out.join("best.json")).unwrap();
    assert!(best.contains("\"lambda\": null"), "{best}");
    let (_, rows) = read_csv(&out.join("jobs.csv"));
    assert!(rows.iter().all(|r| r[5] == "diverged" && r[7].is_empty()));
    assert!(
        !std::fs::read_to_string(out.join("jobs.csv"))
            .unwrap()
            .contains("NaN")
    );
    assert!(out.join("val_loss_vs_lambda.png").is_file());
    // The run was -q, which keeps errors, and this is one.
    assert!(
        stderr(&o).contains("no λ can be chosen (exit 3)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_bad_spec_exits_2_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "bad.toml", "[grid]\nlamda = [0]\n");
    let o = run(&spec, &dir.path().join("out"), &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("bad.toml:2:1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !dir.path().join("out").exists(),
        "a refused spec creates nothing"
    );
}

#[test]
fn a_closed_pipe_or_a_full_stdout_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "small.toml", SMALL);
    let out = dir.path().join("out");

    // stdout is a pipe that nobody reads: the reader went away.
    let mut child = wdsweep()
        .arg("run")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));

    // stdout is a full disk: an I/O failure, exit 1, with the cause.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = wdsweep()
        .arg("run")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("No space left on device"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert!(
        out.join("best.json").is_file(),
        "the results were written before the report"
    );
}

#[test]
fn quiet_with_timings_prints_the_timings_alone() {
    // benches/compare.sh reads the training time from `-q -v`.
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "small.toml", SMALL);
    let o = run(&spec, &dir.path().join("out"), &["-v"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_mentions(&err, &["wall time:", "; training ", " s on "]);
}

#[test]
fn a_loss_curve_figure_too_long_to_rerun_is_skipped_and_said_unless_quiet() {
    // Two jobs of 600 000 epochs without kept curves: the figure would
    // rerun 1.2 million epoch rows, over its limit of a million.
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "long.toml",
        "[data]\nnum_train = 5\nnum_val = 5\nnum_inputs = 3\n[train]\nepochs = 600000\n\
         [grid]\nlambda = [1]\nseed = { count = 2 }\n",
    );
    let out = dir.path().join("out");
    let o = run(&spec, &out, &["--curves", "off"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "-q prints nothing but errors");
    assert!(!out.join("loss_curves.png").exists());
    assert!(out.join("val_loss_vs_lambda.png").exists());
    let o = run_loud(&spec, &out, &["--curves", "off"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_mentions(
        &stderr(&o),
        &["loss_curves.png is not drawn", "1 200 002 curve rows"],
    );
}
