//! `wdsweep slurm`: batch scripts that run a sweep on a Slurm cluster.
//!
//! The sweep becomes a job array of N tasks, task I running
//! `wdsweep run SPEC --shards N` (the index comes from
//! `SLURM_ARRAY_TASK_ID`; the count is written into the script, never read
//! from the environment), and a merge job that depends on the array with
//! `afterany`, so it runs even when a task failed and can say which shards
//! to rerun. Paths in the scripts are absolute, because tasks start in
//! whatever folder Slurm gives them.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run::{UsageError, default_out};
use crate::spec::{DEFAULT_MAX_JOBS, Spec};

/// Options of `wdsweep slurm`.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    pub spec: PathBuf,
    pub shards: u64,
    pub out: Option<PathBuf>,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: u16,
    pub max_parallel: Option<u64>,
}

/// The scripts written for a sweep.
#[derive(Debug, Clone)]
pub struct Scripts {
    pub out: PathBuf,
    pub array: PathBuf,
    pub merge: PathBuf,
    pub shards: u64,
}

/// The job ids of a submission.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub array: String,
    pub merge: String,
}

/// `text` as one word for bash, in single quotes.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current folder")?
        .join(path))
}

/// Refuses option values that would break out of an `#SBATCH` line.
fn check_word(option: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UsageError(format!(
            "--{option} {value:?} must be a single word without spaces"
        ))
        .into());
    }
    Ok(())
}

/// Checks the spec and writes `OUT/slurm/shards.sbatch` and
/// `OUT/slurm/merge.sbatch`.
pub fn prepare(opts: &SlurmOptions) -> Result<Scripts> {
    let spec = Spec::from_file(&opts.spec, DEFAULT_MAX_JOBS)?;
    if opts.shards > spec.grid.len() {
        return Err(UsageError(format!(
            "--shards {} is more than the grid's {} jobs; some shards would have nothing to do",
            opts.shards,
            spec.grid.len()
        ))
        .into());
    }
    for (option, value) in [("partition", &opts.partition), ("time", &opts.time)] {
        if let Some(v) = value {
            check_word(option, v)?;
        }
    }
    if let Some(t) = &opts.time
        && !is_slurm_time(t)
    {
        return Err(UsageError(format!(
            "--time {t:?} is not a Slurm time limit; write minutes (90), H:MM:SS (1:30:00), \
             D-HH (2-12), D-HH:MM:SS (2-12:00:00), or UNLIMITED"
        ))
        .into());
    }
    if opts.max_parallel == Some(0) {
        return Err(UsageError("--max-parallel must be at least 1".into()).into());
    }

    let out = absolute(&opts.out.clone().unwrap_or_else(|| default_out(&spec)))?;
    crate::run::refuse_foreign(&out, &spec, crate::run::RUN_FIX)?;
    let spec_path = fs::canonicalize(&opts.spec)
        .with_context(|| format!("cannot resolve {}", opts.spec.display()))?;
    let exe = std::env::current_exe().context("cannot find the wdsweep executable")?;
    let dir = out.join("slurm");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;

    let mut common = String::new();
    if let Some(p) = &opts.partition {
        let _ = writeln!(common, "#SBATCH --partition={p}");
    }
    if let Some(t) = &opts.time {
        let _ = writeln!(common, "#SBATCH --time={t}");
    }
    let last = opts.shards - 1;
    let throttle = opts
        .max_parallel
        .map(|k| format!("%{k}"))
        .unwrap_or_default();
    let (exe, spec_q, out_q) = (
        quote(&exe.to_string_lossy()),
        quote(&spec_path.to_string_lossy()),
        quote(&out.to_string_lossy()),
    );

    let array_text = format!(
        "#!/bin/bash\n\
         # The sweep \"{name}\" as a Slurm job array: task I runs shard I of {n}.\n\
         # Written by `wdsweep slurm`. A failed task can be rerun alone, for\n\
         # example `sbatch --array=3 {script}`; it finishes only what it lacked.\n\
         #SBATCH --job-name=wdsweep-{name}\n\
         #SBATCH --array=0-{last}{throttle}\n\
         #SBATCH --cpus-per-task={cpus}\n\
         #SBATCH --output={logs}/shard-%A_%a.log\n\
         {common}\
         set -euo pipefail\n\
         exec {exe} run {spec_q} --out {out_q} --shards {n} -j \"${{SLURM_CPUS_PER_TASK:-1}}\"\n",
        name = spec.name,
        n = opts.shards,
        script = dir.join("shards.sbatch").display(),
        cpus = opts.cpus_per_task,
        logs = logs.display(),
    );
    let merge_text = format!(
        "#!/bin/bash\n\
         # Merges the shards of the sweep \"{name}\" into {out}.\n\
         # Submit it after the array: sbatch --dependency=afterany:ARRAY_ID {script}\n\
         # (afterany, so that it also runs, and names the shards to rerun,\n\
         # when a task failed).\n\
         #SBATCH --job-name=wdsweep-{name}-merge\n\
         #SBATCH --cpus-per-task=1\n\
         #SBATCH --output={logs}/merge-%j.log\n\
         {common}\
         set -euo pipefail\n\
         exec {exe} merge {out_q}\n",
        name = spec.name,
        out = out.display(),
        script = dir.join("merge.sbatch").display(),
        logs = logs.display(),
    );
    let array = dir.join("shards.sbatch");
    let merge = dir.join("merge.sbatch");
    crate::store::write_text(&array, &array_text)?;
    crate::store::write_text(&merge, &merge_text)?;
    Ok(Scripts {
        out,
        array,
        merge,
        shards: opts.shards,
    })
}

impl Scripts {
    /// How to submit the scripts by hand.
    pub fn instructions(&self) -> String {
        format!(
            "wrote {} ({} array tasks) and {}\n\
             submit them with:\n  \
             array=$(sbatch --parsable {})\n  \
             sbatch --dependency=afterany:${{array%%;*}} {}\n\
             (or add --submit); results go to {}/",
            self.array.display(),
            self.shards,
            self.merge.display(),
            quote(&self.array.to_string_lossy()),
            quote(&self.merge.to_string_lossy()),
            self.out.display()
        )
    }
}

fn sbatch(args: &[&str]) -> Result<String> {
    let output = Command::new("sbatch").args(args).output().map_err(|e| {
        anyhow::anyhow!("cannot run sbatch ({e}); is Slurm's client installed and on PATH?")
    })?;
    if !output.status.success() {
        bail!(
            "sbatch {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    // `--parsable` prints "jobid" or "jobid;cluster".
    let text = String::from_utf8_lossy(&output.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() {
        bail!("sbatch {} printed no job id", args.join(" "));
    }
    Ok(id)
}

/// Submits the array, then the merge job after it (`afterany`).
pub fn submit(scripts: &Scripts) -> Result<Submitted> {
    let array = sbatch(&["--parsable", &scripts.array.to_string_lossy()])?;
    let dependency = format!("--dependency=afterany:{array}");
    let merge = sbatch(&["--parsable", &dependency, &scripts.merge.to_string_lossy()])?;
    Ok(Submitted { array, merge })
}

/// Whether `t` is one of sbatch's forms of a time limit: M, M:S, H:M:S,
/// D-H, D-H:M, D-H:M:S (whole numbers), or UNLIMITED / INFINITE.
fn is_slurm_time(t: &str) -> bool {
    if ["unlimited", "infinite"].contains(&t.to_ascii_lowercase().as_str()) {
        return true;
    }
    let number = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    let (days, clock) = match t.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, t),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    days.is_none_or(number) && parts.iter().all(|p| number(p)) && (1..=3).contains(&parts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_in_sbatchs_forms_are_accepted_and_nothing_else() {
        for good in [
            "90",
            "30:00",
            "1:30:00",
            "2-12",
            "2-12:30",
            "2-12:30:00",
            "UNLIMITED",
        ] {
            assert!(is_slurm_time(good), "{good}");
        }
        for bad in [
            "forever",
            "",
            "1h",
            "1:2:3:4",
            "-5",
            "2-",
            "1::2",
            "1.5",
            "2-1:2:3:4",
        ] {
            assert!(!is_slurm_time(bad), "{bad}");
        }
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
