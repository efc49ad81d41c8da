//! Regression check against committed results: the CI sweeps are rerun and
//! compared, bit for bit, with `tests/golden/` (see its README for how to
//! change the numerics on purpose).

mod common;

use std::path::Path;

use common::*;
use wdsweep::key::NUMERICS_VERSION;
use wdsweep::verify::{self, VerifyOptions};

fn check(name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = root.join("sweeps").join(format!("{name}.toml"));
    let golden = root.join("tests/golden").join(name);

    // The folder records the numerics that made it; a bump of the version
    // must come with regenerated files, and the other way round.
    let recorded: toml::Table =
        toml::from_str(&std::fs::read_to_string(golden.join("spec.toml")).unwrap()).unwrap();
    assert_eq!(
        recorded["provenance"]["numerics_version"].as_integer(),
        Some(i64::from(NUMERICS_VERSION)),
        "tests/golden/{name} was made by another numerics version; regenerate it (tests/golden/README.md)"
    );

    let opts = VerifyOptions {
        spec: spec.clone(),
        against: golden.clone(),
        sample: None,
        threads: Some(2),
        max_jobs: u64::MAX,
    };
    let report = verify::verify(&opts).unwrap();
    assert!(report.checked > 0);
    assert!(report.passed(), "{}", verify::render(&report, &golden));

    // The aggregated tables as text, too: they depend on polars as well as
    // on the training code.
    let dir = tempfile::tempdir().unwrap();
    let o = run(&spec, dir.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for file in ["jobs.csv", "summary.csv", "best.json"] {
        let got = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let want = std::fs::read_to_string(golden.join(file)).unwrap();
        assert!(
            got == want,
            "{file} differs from tests/golden/{name}:\n--- golden\n{want}\n--- now\n{got}"
        );
    }
}

#[test]
fn ci_sweep_matches_its_golden_results() {
    check("ci");
}

#[test]
fn ci_optimizer_sweep_matches_its_golden_results() {
    check("ci_optimizer");
}

#[test]
fn verify_reports_a_changed_value_and_exits_1() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let golden = root.join("tests/golden/ci");
    let copy = dir.path().join("ci");
    std::fs::create_dir(&copy).unwrap();
    for file in ["spec.toml", "jobs.csv"] {
        std::fs::copy(golden.join(file), copy.join(file)).unwrap();
    }
    // Nudge one validation loss by one unit in the last place.
    let text = std::fs::read_to_string(copy.join("jobs.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[3].split(',').map(str::to_string).collect();
    let v: f64 = cells[7].parse().unwrap();
    cells[7] = f64::from_bits(v.to_bits() + 1).to_string();
    lines[3] = cells.join(",");
    std::fs::write(copy.join("jobs.csv"), lines.join("\n") + "\n").unwrap();

    let o = wdsweep()
        .args([
            "verify",
            root.join("sweeps/ci.toml").to_str().unwrap(),
            "--against",
        ])
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("1 value differs in 1 of 40 jobs"), "{text}");
    assert!(
        text.contains("val_loss") && text.contains("FAILED"),
        "{text}"
    );

    // A sample checks fewer jobs, the same ones every time.
    let sample = |k: &str| {
        let o = wdsweep()
            .args([
                "verify",
                root.join("sweeps/ci.toml").to_str().unwrap(),
                "--sample",
                k,
                "--against",
            ])
            .arg(&golden)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // The golden folder has curves, and they are compared.
    assert!(sample("7").contains("verified: 7 jobs match"));
    assert!(sample("7").contains("every epoch's losses"));

    // A folder without curves is checked on its final metrics, and says so.
    let bare = dir.path().join("bare");
    copy_golden(&bare, &["spec.toml", "jobs.parquet"]);
    let o = verify_ci(&bare, &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("verified: 40 jobs") && text.contains("no curves.parquet"),
        "{text}"
    );
    assert_eq!(
        verify::sample_jobs(40, Some(7)),
        verify::sample_jobs(40, Some(7))
    );
}

/// Copies `files` of the golden `ci` folder into `to`.
fn copy_golden(to: &Path, files: &[&str]) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ci");
    std::fs::create_dir_all(to).unwrap();
    for file in files {
        std::fs::copy(golden.join(file), to.join(file)).unwrap();
    }
}

/// Rewrites a folder's jobs.csv, letting `edit` change its data rows.
fn edit_jobs_csv(dir: &Path, edit: impl FnOnce(&mut Vec<Vec<String>>)) {
    let (header, mut rows) = read_csv(&dir.join("jobs.csv"));
    edit(&mut rows);
    let mut text = header.join(",") + "\n";
    for row in rows {
        text += &(row.join(",") + "\n");
    }
    std::fs::write(dir.join("jobs.csv"), text).unwrap();
}

fn verify_ci(against: &Path, extra: &[&str]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    wdsweep()
        .arg("verify")
        .arg(root.join("sweeps/ci.toml"))
        .args(extra)
        .arg("--against")
        .arg(against)
        .output()
        .unwrap()
}

#[test]
fn verify_compares_jobs_csv_as_well_as_jobs_parquet_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("both");
    copy_golden(&both, &["spec.toml", "jobs.parquet", "jobs.csv"]);
    // An edit to the CSV alone, as a hand edit or a merge would make: one
    // training loss one unit in the last place off.
    edit_jobs_csv(&both, |rows| {
        let v: f64 = rows[5][6].parse().unwrap();
        rows[5][6] = f64::from_bits(v.to_bits() + 1).to_string();
    });
    let o = verify_ci(&both, &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("1 value differs in 1 of 40 jobs"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("train_loss"))
        .unwrap_or_else(|| panic!("no train_loss row: {text}"));
    assert!(
        row.contains("jobs.csv") && !row.contains("jobs.parquet"),
        "{row}"
    );
    assert!(row.trim_start().starts_with("5 "), "{row}");

    // A row that the CSV lost is a difference in the CSV, not a missing job.
    let lost = dir.path().join("lost");
    copy_golden(&lost, &["spec.toml", "jobs.parquet", "jobs.csv"]);
    edit_jobs_csv(&lost, |rows| {
        rows.remove(12);
    });
    let report = verify::verify(&VerifyOptions {
        spec: Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/ci.toml"),
        against: lost.clone(),
        sample: None,
        threads: Some(2),
        max_jobs: u64::MAX,
    })
    .unwrap();
    assert!(report.missing.is_empty());
    assert_eq!(report.checked, 40);
    assert_eq!(report.tables, ["jobs.parquet", "jobs.csv"]);
    let [m] = report.mismatches.as_slice() else {
        panic!("{}", verify::render(&report, &lost));
    };
    assert_eq!(
        (m.job, m.file, m.column.as_str(), m.expected.as_str()),
        (12, "jobs.csv", "status", "(no row)")
    );

    // Both tables untouched: every job matches, and the line says both
    // were compared.
    let fine = dir.path().join("fine");
    copy_golden(&fine, &["spec.toml", "jobs.parquet", "jobs.csv"]);
    let o = verify_ci(&fine, &["--sample", "5"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("in jobs.parquet and jobs.csv"), "{text}");
}

#[test]
fn verify_says_when_the_folder_is_a_partial_run() {
    // Shard 0 of 2, merged alone, leaves a partial folder with job 0 (seed
    // 0) only.
    let dir = tempfile::tempdir().unwrap();
    let grid = "[data]\nnum_inputs = 30\n[grid]\nlambda = [0.3]\nlr = [0.01]\n";
    let two = write_spec(
        dir.path(),
        "two.toml",
        &format!("{grid}seed = {{ count = 2 }}\n"),
    );
    let out = dir.path().join("out");
    let o = run(&two, &out, &["--shard", "0/2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = wdsweep().arg("merge").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let verify = |spec: &Path| {
        wdsweep()
            .arg("verify")
            .arg(spec)
            .arg("--against")
            .arg(&out)
            .output()
            .unwrap()
    };

    // Job 1 was never run there: the folder is partial, and the hint says
    // so rather than doubting the spec.
    let o = verify(&two);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert_mentions(
        &text,
        &[
            "is a partial run",
            "never run there",
            "rerunning the command",
        ],
    );
    assert!(!text.contains("a run of this spec"), "{text}");
    assert!(text.contains("1 of 2 jobs is not in"), "{text}");
    assert!(
        text.trim_end().lines().last().unwrap().contains("partial"),
        "{text}"
    );

    // A spec of job 0 alone checks only what the folder holds: it passes,
    // and its last line still says that the folder is partial.
    let one = write_spec(
        dir.path(),
        "one.toml",
        &format!("{grid}seed = {{ count = 1 }}\n"),
    );
    let o = verify(&one);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{text}");
    let last = text.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("verified: 1 job matches") && last.contains("is a partial run"),
        "{text}"
    );
}

#[test]
fn verify_refuses_a_jobs_table_with_a_repeated_row() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("ci");
    copy_golden(&copy, &["spec.toml", "jobs.csv"]);
    // The same row twice: every value still matches.
    edit_jobs_csv(&copy, |rows| rows.push(rows[4].clone()));

    let o = verify_ci(&copy, &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("jobs.csv holds 1 key in more than one row") && text.contains("FAILED"),
        "{text}"
    );
    assert!(!text.contains("largest difference"), "{text}");
}
