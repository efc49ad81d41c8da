//! The sharded path against a real Slurm. `.ci/run` brings up a private
//! one-node cluster on loopback and sets `WDSWEEP_SLURM_TEST=1` and
//! `SLURM_CONF`; anywhere else this test says why it is skipped and passes,
//! so plain `cargo test` never needs, or touches, a cluster.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn enabled() -> bool {
    if std::env::var("WDSWEEP_SLURM_TEST").as_deref() != Ok("1") {
        println!(
            "skipped: set WDSWEEP_SLURM_TEST=1 and SLURM_CONF (as .ci/run does) to run against Slurm"
        );
        return false;
    }
    assert!(
        std::env::var_os("SLURM_CONF").is_some(),
        "WDSWEEP_SLURM_TEST=1 needs SLURM_CONF"
    );
    true
}

/// Waits until none of `ids` is queued or running.
fn wait_for(ids: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let o = Command::new("squeue")
            .args(["-h", "-o", "%i", "-j", &ids.join(",")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        if text.trim().is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Slurm jobs {ids:?} still queued: {text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn sbatch(args: &[&str]) -> String {
    let o = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sbatch {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn merge_log(out: &Path, id: &str) -> String {
    std::fs::read_to_string(out.join(format!("slurm/logs/merge-{id}.log"))).unwrap()
}

#[test]
fn a_sharded_sweep_runs_on_slurm_reports_a_failed_shard_and_merges_after_its_rerun() {
    if !enabled() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = root.join("sweeps/ci.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");

    // Shard 2 fails on purpose: a plain file stands where its folder goes.
    std::fs::create_dir_all(out.join("shards")).unwrap();
    let blocker = out.join("shards/shard-2-of-4");
    std::fs::write(&blocker, "in the way").unwrap();

    let o = wdsweep()
        .arg("slurm")
        .arg(&spec)
        .args(["--shards", "4", "--max-parallel", "4", "--submit", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let id_after = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no '{prefix}' in {text}"))
            .to_string()
    };
    let array = id_after("submitted the shard array as job ");
    let merge = id_after("submitted the merge job as job ");
    wait_for(&[&array, &merge]);

    // The merge ran despite the failure (afterany) and named the shard.
    let log = merge_log(&out, &merge);
    assert!(
        log.contains("missing or incomplete shards: 1 of 4"),
        "{log}"
    );
    assert!(
        log.contains("shard 2/4") && log.contains("--array=2"),
        "{log}"
    );
    let best = std::fs::read_to_string(out.join("best.json")).unwrap();
    assert!(best.contains("\"complete\": false"), "{best}");

    // Rerun only the failed task, then merge again through Slurm.
    std::fs::remove_file(&blocker).unwrap();
    let script = out.join("slurm/shards.sbatch");
    let rerun = sbatch(&["--array=2", script.to_str().unwrap()]);
    let merge_script = out.join("slurm/merge.sbatch");
    let merge = sbatch(&[
        &format!("--dependency=afterany:{rerun}"),
        merge_script.to_str().unwrap(),
    ]);
    wait_for(&[&rerun, &merge]);
    let log = merge_log(&out, &merge);
    assert!(log.contains("merged the shards of a 4-shard run"), "{log}");
    assert!(!log.contains("missing"), "{log}");

    // The merged result equals a single-process run, byte for byte.
    let single = dir.path().join("single");
    let o = run(&spec, &single, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_files(&single, &out);
}
