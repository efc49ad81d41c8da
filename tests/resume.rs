//! Nothing is lost: resuming, kill -9 at random moments, signals, the folder
//! lock and failing writes. Every test ends by comparing the final files,
//! byte for byte, with those of one uninterrupted run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use ndarray_rand::rand::{Rng, SeedableRng};

/// Long enough (many epochs; several seconds in a debug build) that kills
/// and signals land mid-run.
const LONG: &str = r#"
[train]
epochs = 1500
[grid]
lambda = [0, 0.1, 1, 3]
lr = [0.01, 0.03]
seed = { count = 24 }
"#;

/// An uninterrupted run of `LONG`, made once and shared by the tests.
fn long_reference() -> PathBuf {
    static REFERENCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    REFERENCE
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("resume-reference");
            let _ = std::fs::remove_dir_all(&dir);
            reference(&dir, LONG)
        })
        .clone()
}

/// An uninterrupted run of `text`, from a spec file of the same name as the
/// run it is compared with (the name is part of the files), in its own
/// folder.
fn reference(dir: &Path, text: &str) -> PathBuf {
    let own = dir.join("ref");
    std::fs::create_dir_all(&own).unwrap();
    let spec = write_spec(&own, "s.toml", text);
    let out = own.join("out");
    let o = run(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

fn spawn(spec: &Path, out: &Path) -> Child {
    wdsweep()
        .arg("run")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status();
    assert!(status.unwrap().success());
}

/// Waits until the run has journaled something (or gives up after a while;
/// the caller's assertions then say what went wrong).
fn wait_for_journal(out: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::fs::metadata(out.join("journal.bin")).is_ok_and(|m| m.len() > 0) {
            return;
        }
        sleep(Duration::from_millis(20));
    }
}

fn journal_keys(out: &Path) -> Vec<String> {
    let bytes = std::fs::read(out.join("journal.bin")).unwrap();
    let records = wdsweep::journal::parse(&bytes);
    records.into_iter().map(|r| r.key).collect()
}

fn jobs_in_grid(out: &Path) -> usize {
    read_csv(&out.join("jobs.csv")).1.len()
}

#[test]
fn ctrl_c_saves_a_partial_run_and_a_rerun_finishes_it_identically() {
    let dir = tempfile::tempdir().unwrap();
    let reference = long_reference();
    let spec = write_spec(dir.path(), "s.toml", LONG);
    let out = dir.path().join("out");

    let child = spawn(&spec, &out);
    wait_for_journal(&out);
    signal(&child, "INT");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("stopping: no new job starts"),
        "the first Ctrl-C is acknowledged: {}",
        stderr(&o)
    );

    // What is done is written, and says it is partial.
    let best = std::fs::read_to_string(out.join("best.json")).unwrap();
    assert!(best.contains("\"complete\": false"), "{best}");
    assert!(
        std::fs::read_to_string(out.join("summary.md"))
            .unwrap()
            .contains("Partial run")
    );
    let done = jobs_in_grid(&out);
    assert!(done > 0 && done < 192, "{done} jobs after Ctrl-C");

    let o = run(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_files(&out, &reference);
    assert_eq!(journal_keys(&out).len(), 192);
}

#[test]
fn a_second_signal_exits_at_once_without_corrupting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let reference = long_reference();
    let spec = write_spec(dir.path(), "s.toml", LONG);
    let out = dir.path().join("out");

    let child = spawn(&spec, &out);
    wait_for_journal(&out);
    signal(&child, "TERM");
    signal(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));

    let o = run(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_files(&out, &reference);
}

#[test]
fn sigkill_at_random_moments_loses_no_job_and_repeats_none() {
    let dir = tempfile::tempdir().unwrap();
    let reference = long_reference();
    let spec = write_spec(dir.path(), "s.toml", LONG);
    let out = dir.path().join("out");

    // The delays come from a fixed stream, so a failure can be replayed.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut kills = 0;
    for _ in 0..8 {
        let mut child = spawn(&spec, &out);
        sleep(Duration::from_millis(rng.random_range(200..1500)));
        if child.try_wait().unwrap().is_some() {
            break; // it finished before the kill
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        // No torn final file is ever left in place.
        if out.join("jobs.csv").exists() {
            read_csv(&out.join("jobs.csv"));
        }
    }
    assert!(
        kills >= 2,
        "the sweep finished before it could be killed twice; make it longer"
    );

    let o = run(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_files(&out, &reference);
    let mut keys = journal_keys(&out);
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(
        (keys.len(), n),
        (192, 192),
        "every job exactly once in the journal"
    );
}

#[test]
fn a_rerun_of_a_finished_sweep_runs_nothing_and_rewrites_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[data]\nnum_inputs = 20\n[grid]\nlambda = [0, 1]\nseed = { count = 3 }\n";
    let reference = reference(dir.path(), text);
    let spec = write_spec(dir.path(), "s.toml", text);
    let o = run_loud(&spec, &reference, &[]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("6 of 6 jobs already done, running 0"),
        "{}",
        stderr(&o)
    );
    let fresh = dir.path().join("fresh");
    assert!(run(&spec, &fresh, &[]).status.success());
    assert_same_files(&reference, &fresh);
}

#[test]
fn adding_values_to_an_axis_runs_only_the_new_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let small = "[data]\nnum_inputs = 20\n[grid]\nlambda = [0, 1]\nseed = { count = 3 }\n";
    let large = "[data]\nnum_inputs = 20\n[grid]\nlambda = [0, 0.5, 1]\nseed = { count = 4 }\n";
    let reference = reference(dir.path(), large);
    let out = dir.path().join("out");
    assert!(
        run(&write_spec(dir.path(), "s.toml", small), &out, &[])
            .status
            .success()
    );

    let spec = write_spec(dir.path(), "s.toml", large);
    let o = run_loud(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("6 of 12 jobs already done, running 6"),
        "{}",
        stderr(&o)
    );
    assert_same_files(&out, &reference);
}

#[test]
fn fresh_discards_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[data]\nnum_inputs = 20\n[grid]\nlambda = [0, 1]\n";
    let spec = write_spec(dir.path(), "s.toml", text);
    let out = dir.path().join("out");
    assert!(run(&spec, &out, &[]).status.success());
    let o = run_loud(&spec, &out, &["--fresh"]);
    assert!(o.status.success());
    assert!(!stderr(&o).contains("already done"), "{}", stderr(&o));
    assert_eq!(journal_keys(&out).len(), 2);
}

#[test]
fn a_second_run_on_a_busy_folder_is_refused_with_the_first_runs_pid() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "s.toml", LONG);
    let out = dir.path().join("out");
    let mut first = spawn(&spec, &out);
    wait_for_journal(&out);

    let o = run(&spec, &out, &[]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert!(err.contains("another wdsweep run"), "{err}");

    // The first was killed; its lock went with it, and a rerun takes over.
    let o = run(&spec, &out, &["--max-jobs", "192"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A tmpfs of `size` mounted on `dir`, unmounted on drop; `None` where
/// this process may not mount (not root, or no mount namespace for it).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_reported_with_the_path_and_a_rerun_after_freeing_space_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "256k") else {
        println!("skipped: cannot mount a small tmpfs here (needs root), so no full disk to test");
        return;
    };
    let reference = long_reference();
    let spec = write_spec(dir.path(), "s.toml", LONG);
    let out = disk.0.join("out");

    let o = run(&spec, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains(out.to_str().unwrap()),
        "the message names the path: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    disk.resize("64m");
    let o = run(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_files(&out, &reference);
}

#[test]
fn a_journal_path_that_is_not_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "s.toml", "[data]\nnum_inputs = 20\n");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink("/dev/full", out.join("journal.bin")).unwrap();
    let o = run(&spec, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
}

#[test]
fn a_final_file_that_cannot_be_written_names_its_path_and_keeps_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[data]\nnum_inputs = 20\n[grid]\nlambda = [0, 1]\nseed = { count = 3 }\n";
    let reference = reference(dir.path(), text);
    let spec = write_spec(dir.path(), "s.toml", text);
    let out = dir.path().join("out");
    // A folder where summary.csv should go: the rename onto it fails.
    std::fs::create_dir_all(out.join("summary.csv").join("x")).unwrap();
    let o = run(&spec, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("summary.csv"), "{}", stderr(&o));
    assert_eq!(
        journal_keys(&out).len(),
        6,
        "the jobs are safe in the journal"
    );

    std::fs::remove_dir_all(out.join("summary.csv")).unwrap();
    let o = run_loud(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("6 of 6 jobs already done"),
        "{}",
        stderr(&o)
    );
    assert_same_files(&out, &reference);
}

/// Jobs that would train for hours: only a stop request ends them.
const ENDLESS: &str = r#"
[train]
epochs = 2000000000
[grid]
lambda = [0, 3]
lr = [0.01]
seed = { count = 2 }
"#;

/// Starts a run, waits until it has started training (its stderr says so),
/// then sends SIGINT and waits at most a minute for it to end; the status,
/// or `None` if it was still running and had to be killed.
fn interrupt_once_training(spec: &Path, out: &Path) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader};
    let mut child = spawn(spec, out);
    let (lines, seen) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = lines.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(line) = seen.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains("training on") {
            break;
        }
    }
    // The workers are past their first epoch by now.
    sleep(Duration::from_millis(300));
    signal(&child, "INT");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap())
}

#[test]
fn ctrl_c_abandons_running_jobs_instead_of_waiting_hours_for_them() {
    let dir = tempfile::tempdir().unwrap();
    // A tall table trains on w itself, the book's data in the kernel: both
    // must hear the stop.
    let rows: String = (0..40)
        .map(|i| format!("{},{},{}\n", i % 7, (i * i) % 11, i % 5))
        .collect();
    std::fs::write(dir.path().join("t.csv"), format!("a,b,y\n{rows}")).unwrap();
    let table = format!("[data]\npath = \"t.csv\"\ntarget = \"y\"\n{ENDLESS}");
    for (name, text) in [("book", ENDLESS.to_string()), ("table", table)] {
        let spec = write_spec(dir.path(), &format!("{name}.toml"), &text);
        let out = dir.path().join(name);
        let (status, err) = interrupt_once_training(&spec, &out);
        assert_eq!(status, Some(130), "{name}: {err}");
        let best = std::fs::read_to_string(out.join("best.json")).unwrap();
        assert!(
            best.contains("\"reason\": \"no job has finished\""),
            "{name}: {best}"
        );
        // Abandoned jobs are not journaled: a rerun does them.
        assert!(journal_keys(&out).is_empty(), "{name}");
    }
}

#[test]
fn a_damaged_byte_inside_the_journal_costs_only_its_job() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[data]\nnum_inputs = 30\n[grid]\nlambda = [0, 1, 3]\nseed = { count = 40 }\n";
    let reference = reference(dir.path(), text);
    let spec = write_spec(dir.path(), "s.toml", text);
    let out = dir.path().join("out");
    assert!(run(&spec, &out, &[]).status.success());
    let path = out.join("journal.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    // Said even under -q; the rerun does the one job again, not half.
    let o = run(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_mentions(
        &stderr(&o),
        &["journal.bin is damaged", "119 intact records"],
    );
    assert_same_files(&out, &reference);
    assert_eq!(journal_keys(&out).len(), 120);
}

#[test]
fn garbage_over_the_end_of_the_journal_is_reported_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[data]\nnum_inputs = 30\n[grid]\nlambda = [0, 3]\nseed = { count = 30 }\n";
    let spec = write_spec(dir.path(), "s.toml", text);
    let out = dir.path().join("out");
    assert!(run(&spec, &out, &[]).status.success());
    let path = out.join("journal.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.len();
    // Zeros over the last fifth: not a write cut short.
    bytes[end - end / 5..].fill(0);
    std::fs::write(&path, &bytes).unwrap();

    // A dry run says so, and changes nothing.
    let dry = run_loud(&spec, &out, &["--dry-run"]);
    assert_mentions(
        &String::from_utf8_lossy(&dry.stdout),
        &["its journal is damaged", "would run again"],
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    let o = run(&spec, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_mentions(&stderr(&o), &["journal.bin is damaged", "Check the disk"]);
    assert_eq!(journal_keys(&out).len(), 60);
}
