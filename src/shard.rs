//! Shards: one sweep split across the tasks of a job array, and merged.
//!
//! Shard `I` of `N` runs the jobs with `i mod N == I` (DESIGN.md §4) and
//! writes only under `DIR/shards/shard-I-of-N/`: its own spec.toml, journal
//! and lock, so shards never touch each other's files and each is
//! resumable like any run. `wdsweep merge DIR` reads every shard's journal,
//! checks that all shards ran the same spec, and writes the same final
//! files a single-process run writes — or, when shards are missing, says
//! which and how to rerun them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::journal::{self, JOURNAL_FILE};
use crate::key::job_key;
use crate::lock::{FolderLock, LOCK_FILE};
use crate::numfmt::grouped;
use crate::run::UsageError;
use crate::spec::Spec;
use crate::sweep::JobResult;

/// Shard `index` of `count`, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    pub fn new(index: u64, count: u64) -> Result<Shard, String> {
        if count == 0 {
            return Err("the number of shards must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the number of shards, {count}; indices run \
                 from 0 to {} (a 1-based array? use --array=0-{})",
                count - 1,
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N` as given to `--shard`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not of the form I/N (for example 0/8)"))?;
        let num = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("'{text}': '{s}' is not a whole number"))
        };
        Shard::new(num(i)?, num(n)?)
    }

    /// The shard index from the job-array environment, for `--shards N`:
    /// `SLURM_ARRAY_TASK_ID` (Slurm) or `JOB_COMPLETION_INDEX` (Kubernetes
    /// Indexed Jobs). The count is never taken from the environment.
    pub fn from_env(count: u64, env: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        for var in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
            if let Some(value) = env(var) {
                let index = value.trim().parse::<u64>().map_err(|_| {
                    format!("{var}={value:?} is not a whole number, so it cannot name a shard")
                })?;
                return Shard::new(index, count).map_err(|e| format!("{var}={index}: {e}"));
            }
        }
        Err(
            "--shards N takes the shard index from SLURM_ARRAY_TASK_ID or \
             JOB_COMPLETION_INDEX, and neither is set; outside a job array use --shard I/N"
                .into(),
        )
    }

    /// Whether job `job` belongs to this shard.
    pub fn owns(&self, job: u64) -> bool {
        job % self.count == self.index
    }

    /// How many of the jobs 0 … total − 1 this shard owns.
    pub fn jobs_of(&self, total: u64) -> u64 {
        (total + self.count - 1 - self.index) / self.count
    }

    /// The folder of this shard under a sweep's output folder.
    pub fn dir(&self, out: &Path) -> PathBuf {
        let width = (self.count - 1).to_string().len();
        out.join("shards").join(format!(
            "shard-{:0width$}-of-{}",
            self.index,
            self.count,
            width = width
        ))
    }
}

/// The shard folders found under `out/shards`, by shard.
pub fn find_shards(out: &Path) -> Result<Vec<(Shard, PathBuf)>> {
    let root = out.join("shards");
    let mut found = Vec::new();
    let entries = match fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", root.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", root.display()))?;
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let parsed = name
            .strip_prefix("shard-")
            .and_then(|rest| rest.split_once("-of-"));
        if let Some((i, n)) = parsed
            && let (Ok(i), Ok(n)) = (i.parse::<u64>(), n.parse::<u64>())
            && let Ok(shard) = Shard::new(i, n)
        {
            found.push((shard, entry.path()));
        }
    }
    found.sort_by_key(|(s, _)| (s.count, s.index));
    Ok(found)
}

/// Refuses to run shard `shard` beside shards of another split of `out`,
/// or beside shards that ran another spec, which `merge` would refuse after
/// the fact. `spec_text` gives the spec.toml this spec writes in a folder
/// (a data file's path is written relative to it).
pub fn check_siblings(out: &Path, shard: Shard, spec_text: &dyn Fn(&Path) -> String) -> Result<()> {
    let found = find_shards(out)?;
    let counts: BTreeSet<u64> = found.iter().map(|(s, _)| s.count).collect();
    if let Some(other) = counts.iter().find(|&&n| n != shard.count) {
        return Err(UsageError(format!(
            "{} holds shards of a {other}-shard run, and this is shard {shard}; finish and merge \
             that run, remove {}, or write elsewhere with --out DIR",
            out.display(),
            out.join("shards").display()
        ))
        .into());
    }
    for (sibling, dir) in found.iter().filter(|(s, _)| *s != shard) {
        let path = dir.join("spec.toml");
        let Ok(theirs) = fs::read_to_string(&path) else {
            continue;
        };
        if theirs != spec_text(dir) {
            return Err(UsageError(format!(
                "shard {sibling} of {} ran a different spec (see {}), and merge takes only shards \
                 of one spec; run shard {shard} with that spec (it is a valid spec itself), or \
                 write elsewhere with --out DIR",
                out.display(),
                path.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// Locks every one of the `found` shard folders, or refuses (naming the
/// running shards, then `fix`) if any is in use.
pub fn lock_all(found: &[(Shard, PathBuf)], fix: &str) -> Result<Vec<FolderLock>> {
    let mut locks = Vec::new();
    let mut running = Vec::new();
    for (shard, dir) in found {
        match crate::lock::acquire(dir) {
            Ok(lock) => locks.push(lock),
            Err(e) => running.push(format!("shard {shard} ({e:#})")),
        }
    }
    // A folder in use, as a run's own lock says: exit 1, not a usage error.
    if !running.is_empty() {
        anyhow::bail!("shards are still running: {}; {fix}", running.join("; "));
    }
    Ok(locks)
}

/// Removes the `found` shard folders (which the caller has locked) and
/// then `out/shards` itself, for `run --fresh`. Only the files a shard
/// writes are removed; a folder that holds anything else is left, and
/// named.
pub fn remove_all(out: &Path, found: &[(Shard, PathBuf)]) -> Result<()> {
    for (_, dir) in found {
        let entries =
            fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name == LOCK_FILE
                || crate::run::OUTPUT_FILES.contains(&name.as_str())
                || crate::run::is_temporary(&name);
            if ours {
                let path = entry.path();
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        fs::remove_dir(dir).with_context(|| {
            format!(
                "--fresh cannot remove the old shard folder {}: it holds files wdsweep did not \
                 write; move them and remove the folder, or write elsewhere with --out DIR",
                dir.display()
            )
        })?;
    }
    // Left in place if something else lives there.
    let _ = fs::remove_dir(out.join("shards"));
    Ok(())
}

/// Every intact record of the given journals (absent ones are skipped),
/// read without modifying them; a key found twice keeps its first record.
pub fn read_journals(paths: &[PathBuf]) -> Result<HashMap<String, journal::Record>> {
    let mut records = HashMap::new();
    for path in paths {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        for r in journal::parse(&bytes) {
            records.entry(r.key.clone()).or_insert(r);
        }
    }
    Ok(records)
}

/// The journals of the shards under `out`.
pub fn shard_journals(out: &Path) -> Result<Vec<PathBuf>> {
    Ok(find_shards(out)?
        .into_iter()
        .map(|(_, dir)| dir.join(JOURNAL_FILE))
        .collect())
}

/// What merging found.
pub struct Merged {
    pub spec: Spec,
    pub shards: u64,
    /// Every job of the grid that some shard finished, in job order.
    pub results: Vec<JobResult>,
    /// Shards with jobs still missing: index → (done, expected).
    pub incomplete: BTreeMap<u64, (u64, u64)>,
    /// A shard's spec.toml: the spec to rerun missing shards with.
    pub spec_path: PathBuf,
    /// The shards' locks, held while the merge writes.
    _locks: Vec<FolderLock>,
}

impl Merged {
    pub fn complete(&self) -> bool {
        self.incomplete.is_empty()
    }

    /// The message for missing shards, with the `--array=` list that reruns
    /// them.
    pub fn missing_report(&self, out: &Path) -> String {
        let mut lines = Vec::new();
        for (index, (done, expected)) in &self.incomplete {
            let what = if *done == 0 {
                "no job done".to_string()
            } else {
                format!("{} of {} jobs done", grouped(*done), grouped(*expected))
            };
            lines.push(format!("  shard {index}/{}: {what}", self.shards));
        }
        let list: Vec<String> = self.incomplete.keys().map(u64::to_string).collect();
        let script = out.join("slurm").join("shards.sbatch");
        let local = format!(
            "wdsweep run {} --out {} --shard I/{} for each I above",
            self.spec_path.display(),
            out.display(),
            self.shards
        );
        let rerun = if script.exists() {
            format!(
                "sbatch --array={} {}
  or, without Slurm: {local}",
                list.join(","),
                script.display()
            )
        } else {
            format!("{local} (a job array: --array={})", list.join(","))
        };
        format!(
            "missing or incomplete shards: {} of {}\n{}\nrerun them with: {rerun}\nthen merge again.",
            self.incomplete.len(),
            self.shards,
            lines.join("\n")
        )
    }
}

/// Gathers the shards of `out`. Refuses a mix of splits and shards that ran
/// different specs; a shard folder that does not exist yet counts as
/// missing.
pub fn gather(out: &Path, max_jobs: u64) -> Result<Merged> {
    let found = find_shards(out)?;
    let counts: BTreeSet<u64> = found.iter().map(|(s, _)| s.count).collect();
    let count = match counts.len() {
        0 => {
            return Err(UsageError(format!(
                "{} has no shards to merge (no {}/shard-I-of-N folders); run the shards first \
                 with `wdsweep run SPEC --out {} --shard I/N`",
                out.display(),
                out.join("shards").display(),
                out.display()
            ))
            .into());
        }
        1 => *counts.iter().next().expect("one count"),
        _ => {
            let list: Vec<String> = counts.iter().map(u64::to_string).collect();
            return Err(UsageError(format!(
                "{} mixes shards of runs split {} ways; keep the folders of one split only",
                out.join("shards").display(),
                list.join(" and ")
            ))
            .into());
        }
    };

    // A shard still running would be reported as missing: refuse instead.
    // The locks are held until the merge is done, so none starts meanwhile.
    let locks = lock_all(&found, "merge when they have finished")?;

    // Every shard must have run the very same spec.
    let mut spec_text: Option<(String, Shard)> = None;
    for (shard, dir) in &found {
        let path = dir.join("spec.toml");
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        match &spec_text {
            None => spec_text = Some((text, *shard)),
            Some((first, first_shard)) if *first != text => {
                return Err(UsageError(format!(
                    "shard {shard} ran a different spec from shard {first_shard} (compare {} with \
                     {}); rerun it with the sweep's spec, or merge only shards of one spec",
                    path.display(),
                    first_shard.dir(out).join("spec.toml").display()
                ))
                .into());
            }
            Some(_) => {}
        }
    }
    let Some((text, read_from)) = spec_text else {
        return Err(UsageError(format!(
            "no shard under {} has started (no spec.toml in any shard folder)",
            out.join("shards").display()
        ))
        .into());
    };
    // A data file's path in a shard's spec.toml is relative to that shard's
    // folder (all shards are at the same depth, so they write the same text).
    let spec = Spec::parse_in(
        &text,
        &format!("{}/shards/*/spec.toml", out.display()),
        "merged",
        max_jobs,
        &read_from.dir(out),
    )
    .map_err(|e| UsageError(format!("the shards' spec.toml cannot be read: {e}")))?;

    // The union of the shards' journals and the folder's own (an earlier
    // single-process run), read without modifying them.
    let mut journals: Vec<PathBuf> = found
        .iter()
        .map(|(_, dir)| dir.join(JOURNAL_FILE))
        .collect();
    journals.push(out.join(JOURNAL_FILE));
    let mut records = read_journals(&journals)?;

    let grid = &spec.grid;
    let mut results = Vec::new();
    let mut tally: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for job in 0..grid.len() {
        let (index, lambda, lr, seed) = grid.point(job);
        let key = job_key(&spec.data, &spec.train, lambda, lr, seed);
        let entry = tally.entry(job % count).or_default();
        entry.1 += 1;
        if let Some(r) = records.remove(&key) {
            entry.0 += 1;
            results.push(JobResult {
                index,
                key,
                lambda,
                lr,
                seed,
                outcome: r.outcome,
            });
        }
    }
    let incomplete = tally
        .into_iter()
        .filter(|(_, (done, expected))| done < expected)
        .collect();
    let spec_path = read_from.dir(out).join("spec.toml");
    Ok(Merged {
        spec,
        shards: count,
        results,
        incomplete,
        spec_path,
        _locks: locks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_jobs() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
        for job in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.owns(job)).count(), 1);
        }
        assert!(shards[2].owns(5));
    }

    #[test]
    fn shard_text_is_parsed_and_checked() {
        assert_eq!(Shard::parse("2/8").unwrap(), Shard { index: 2, count: 8 });
        assert!(Shard::parse("8/8").unwrap_err().contains("not below"));
        assert!(Shard::parse("1/0").unwrap_err().contains("at least 1"));
        assert!(Shard::parse("a/3").unwrap_err().contains("whole number"));
        assert!(Shard::parse("3").unwrap_err().contains("I/N"));
    }

    #[test]
    fn the_index_comes_from_the_array_environment_and_never_the_count() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]);
        assert_eq!(
            Shard::from_env(5, slurm).unwrap(),
            Shard { index: 3, count: 5 }
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "0")]);
        assert_eq!(
            Shard::from_env(2, k8s).unwrap(),
            Shard { index: 0, count: 2 }
        );
        let one_based = env(&[("SLURM_ARRAY_TASK_ID", "4")]);
        let err = Shard::from_env(4, one_based).unwrap_err();
        assert!(
            err.contains("SLURM_ARRAY_TASK_ID=4") && err.contains("--array=0-3"),
            "{err}"
        );
        assert!(
            Shard::from_env(4, env(&[]))
                .unwrap_err()
                .contains("neither is set")
        );
    }

    #[test]
    fn shard_folders_sort_by_index() {
        let out = Path::new("r");
        assert_eq!(
            Shard::new(3, 12).unwrap().dir(out),
            Path::new("r/shards/shard-03-of-12")
        );
        assert_eq!(
            Shard::new(0, 1).unwrap().dir(out),
            Path::new("r/shards/shard-0-of-1")
        );
    }
}
