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
    std::fs::create_dir(&bare).unwrap();
    for file in ["spec.toml", "jobs.parquet"] {
        std::fs::copy(golden.join(file), bare.join(file)).unwrap();
    }
    let o = wdsweep()
        .args([
            "verify",
            root.join("sweeps/ci.toml").to_str().unwrap(),
            "--against",
        ])
        .arg(&bare)
        .output()
        .unwrap();
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
