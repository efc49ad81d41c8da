//! Sharded runs without a scheduler: `--shard I/N`, `--shards N` with the
//! array environment, and `merge`.

mod common;

use std::path::Path;

use common::*;

const SPEC: &str = "[data]\nnum_inputs = 30\n[grid]\nlambda = [0, 0.3, 3]\nlr = [0.01, 0.03]\nseed = { count = 4 }\n";

fn shard(spec: &Path, out: &Path, which: &str) -> std::process::Output {
    wdsweep()
        .arg("run")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .args(["--shard", which, "-q"])
        .output()
        .unwrap()
}

fn merge(out: &Path) -> std::process::Output {
    wdsweep().arg("merge").arg(out).output().unwrap()
}

#[test]
fn merged_shards_equal_a_single_run_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "s.toml", SPEC);
    let single = dir.path().join("single");
    assert!(run(&spec, &single, &[]).status.success());

    let out = dir.path().join("sharded");
    for i in 0..5 {
        let o = shard(&spec, &out, &format!("{i}/5"));
        assert!(o.status.success(), "{}", stderr(&o));
        // A shard writes only under shards/.
        for name in FINAL_FILES {
            assert!(!out.join(name).exists(), "shard {i} wrote {name}");
        }
    }
    let o = merge(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_files(&single, &out);
}

#[test]
fn a_missing_shard_is_named_with_the_array_list_that_reruns_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "s.toml", SPEC);
    let out = dir.path().join("out");
    for i in [0, 2] {
        assert!(shard(&spec, &out, &format!("{i}/4")).status.success());
    }
    let o = merge(&out);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("missing or incomplete shards: 2 of 4"),
        "{err}"
    );
    assert!(
        err.contains("shard 1/4") && err.contains("shard 3/4"),
        "{err}"
    );
    assert!(err.contains("--array=1,3"), "{err}");
    // What it wrote does not look complete.
    let best = std::fs::read_to_string(out.join("best.json")).unwrap();
    assert!(best.contains("\"complete\": false"), "{best}");

    for i in [1, 3] {
        assert!(shard(&spec, &out, &format!("{i}/4")).status.success());
    }
    let o = merge(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(out.join("best.json"))
            .unwrap()
            .contains("\"complete\": true")
    );
}

#[test]
fn shards_of_a_different_spec_are_refused_when_they_run_and_by_merge() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "s.toml", SPEC);
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let changed = write_spec(
        &other,
        "s.toml",
        &SPEC.replace("[0, 0.3, 3]", "[0, 0.3, 4]"),
    );
    let out = dir.path().join("out");
    assert!(shard(&spec, &out, "0/2").status.success());
    // Refused before it computes anything.
    let o = shard(&changed, &out, "1/2");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_mentions(
        &stderr(&o),
        &["shard 0/2", "different spec", "shard-0-of-2"],
    );
    assert!(!out.join("shards/shard-1-of-2").exists());

    // A shard whose spec was changed after it ran is still caught by merge.
    assert!(shard(&spec, &out, "1/2").status.success());
    let path = out.join("shards/shard-1-of-2/spec.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("epochs = 10", "epochs = 11")).unwrap();
    let o = merge(&out);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("different spec"), "{}", stderr(&o));
}

#[test]
fn shards_of_another_split_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "s.toml", SPEC);
    let out = dir.path().join("out");
    assert!(shard(&spec, &out, "0/2").status.success());
    let o = shard(&spec, &out, "0/3");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("2-shard run"), "{}", stderr(&o));
}

#[test]
fn the_index_comes_from_the_array_environment() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "s.toml", SPEC);
    let out = dir.path().join("out");
    let with_env = |var: &str, value: &str| {
        wdsweep()
            .arg("run")
            .arg(&spec)
            .arg("--out")
            .arg(&out)
            .args(["--shards", "3", "-q"])
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("JOB_COMPLETION_INDEX")
            .env(var, value)
            .output()
            .unwrap()
    };
    assert!(with_env("SLURM_ARRAY_TASK_ID", "1").status.success());
    assert!(out.join("shards/shard-1-of-3/journal.bin").exists());
    assert!(with_env("JOB_COMPLETION_INDEX", "2").status.success());
    assert!(out.join("shards/shard-2-of-3/journal.bin").exists());

    // A 1-based array's last index is refused, not wrapped around.
    let o = with_env("SLURM_ARRAY_TASK_ID", "3");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--array=0-2"), "{}", stderr(&o));

    let o = wdsweep()
        .arg("run")
        .arg(&spec)
        .args(["--shards", "3"])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("neither is set"), "{}", stderr(&o));
}

#[test]
fn a_rerun_shard_finishes_only_what_it_lacked() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "s.toml", SPEC);
    let out = dir.path().join("out");
    assert!(shard(&spec, &out, "1/2").status.success());
    let o = wdsweep()
        .arg("run")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .args(["--shard", "1/2"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("12 of 12 jobs already done, running 0"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn slurm_scripts_name_the_shards_and_depend_with_afterany() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "s.toml", SPEC);
    let out = dir.path().join("out");
    let o = wdsweep()
        .arg("slurm")
        .arg(&spec)
        .args([
            "--shards",
            "6",
            "--partition",
            "short",
            "--time",
            "0:10:00",
            "--cpus-per-task",
            "2",
            "--max-parallel",
            "3",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("--dependency=afterany:"), "{text}");
    let array = std::fs::read_to_string(out.join("slurm/shards.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-5%3",
        "#SBATCH --partition=short",
        "#SBATCH --time=0:10:00",
        "#SBATCH --cpus-per-task=2",
        "shard-%A_%a.log",
        "--shards 6",
    ] {
        assert!(array.contains(line), "{line} missing from\n{array}");
    }
    let merge = std::fs::read_to_string(out.join("slurm/merge.sbatch")).unwrap();
    assert!(merge.contains(" merge '"), "{merge}");

    let o = wdsweep()
        .arg("slurm")
        .arg(&spec)
        .args(["--shards", "6", "--partition", "a b"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn merging_a_shard_into_a_finished_single_run_keeps_it_complete() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "s.toml", SPEC);
    let out = dir.path().join("out");
    assert!(run(&spec, &out, &[]).status.success());
    let before = std::fs::read(out.join("jobs.csv")).unwrap();
    assert!(shard(&spec, &out, "0/2").status.success());
    let o = merge(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("jobs.csv")).unwrap(), before);

    // And a plain run reuses what shards finished.
    let other = dir.path().join("other");
    for i in 0..2 {
        assert!(shard(&spec, &other, &format!("{i}/2")).status.success());
    }
    let o = run_loud(&spec, &other, &[]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("24 of 24 jobs already done, running 0"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn merge_refuses_while_a_shard_is_still_running() {
    let dir = tempfile::tempdir().unwrap();
    let long = SPEC.replace("[grid]", "[train]\nepochs = 20000\n[grid]");
    let spec = write_spec(dir.path(), "s.toml", &long);
    let out = dir.path().join("out");
    assert!(shard(&spec, &out, "0/2").status.success());
    let mut running = wdsweep()
        .arg("run")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .args(["--shard", "1/2", "-q"])
        .spawn()
        .unwrap();
    let lock = out.join("shards/shard-1-of-2/spec.toml");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !lock.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = merge(&out);
    running.kill().unwrap();
    running.wait().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("still running") && stderr(&o).contains("shard 1/2"),
        "{}",
        stderr(&o)
    );
    assert!(
        !out.join("best.json").exists(),
        "nothing is written while shards run"
    );
}

/// Starts `wdsweep run SPEC --out OUT -q` plus `extra` in the background and
/// returns once `ready` exists (a run writes its spec.toml after taking its
/// locks).
fn start(spec: &Path, out: &Path, extra: &[&str], ready: &Path) -> std::process::Child {
    let child = wdsweep()
        .arg("run")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .arg("-q")
        .args(extra)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

fn stop(mut child: std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_whole_grid_run_and_a_shard_never_run_on_one_folder_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let endless = SPEC.replace("[grid]", "[train]\nepochs = 2000000000\n[grid]");
    let spec = write_spec(dir.path(), "s.toml", &endless);
    let out = dir.path().join("out");

    // A shard runs: a run of the whole grid would repeat its jobs.
    let running = start(
        &spec,
        &out,
        &["--shard", "1/2"],
        &out.join("shards/shard-1-of-2/spec.toml"),
    );
    let o = run(&spec, &out, &[]);
    stop(running);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_mentions(&stderr(&o), &["still running", "shard 1/2", "--out DIR"]);
    for name in ["spec.toml", "journal.bin"] {
        assert!(!out.join(name).exists(), "{name} was written");
    }

    // The whole grid runs: a shard would repeat its jobs, and a dry run
    // says so.
    let running = start(&spec, &out, &[], &out.join("spec.toml"));
    let dry = run_loud(&spec, &out, &["--dry-run"]);
    let o = shard(&spec, &out, "0/2");
    stop(running);
    assert!(!o.status.success());
    assert_mentions(&stderr(&o), &["whole grid", "--out DIR"]);
    assert!(!out.join("shards/shard-0-of-2").exists());
    let dry = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert_mentions(&dry, &["in use right now by a running sweep (pid "]);

    // Shards run side by side.
    let first = start(
        &spec,
        &out,
        &["--shard", "0/2"],
        &out.join("shards/shard-0-of-2/spec.toml"),
    );
    let second = start(
        &spec,
        &out,
        &["--shard", "1/2"],
        &out.join("shards/shard-1-of-2/spec.toml"),
    );
    let mut both = [first, second];
    let running = both.each_mut().map(|c| c.try_wait().unwrap().is_none());
    both.into_iter().for_each(stop);
    assert_eq!(running, [true, true], "a shard refused its sibling");
}

#[test]
fn fresh_discards_the_shards_results_too_so_another_split_can_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "s.toml", SPEC);
    let out = dir.path().join("out");
    for i in 0..2 {
        assert!(shard(&spec, &out, &format!("{i}/4")).status.success());
    }
    let o = run_loud(&spec, &out, &["--fresh"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("already done"), "{}", stderr(&o));
    assert!(!out.join("shards").exists());
    let o = shard(&spec, &out, "0/2");
    assert!(o.status.success(), "{}", stderr(&o));

    // A file wdsweep did not write is neither removed nor ignored.
    let notes = out.join("shards/shard-0-of-2/notes.txt");
    std::fs::write(&notes, "mine").unwrap();
    let o = run(&spec, &out, &["--fresh"]);
    assert!(!o.status.success());
    assert_mentions(&stderr(&o), &["shard-0-of-2", "did not write"]);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "mine");
}
