//! `wdsweep run`: from a spec file to a results folder.
//!
//! The steps follow the pipeline of DESIGN.md §1: read and check the spec,
//! claim the output folder, train every job, write the tables, aggregate,
//! choose, plot and report. Timings go to the terminal only, never into a
//! result file, so two runs of one spec write byte-identical files.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::{say, tell};
use anyhow::{Context, Result, anyhow};

use crate::journal::{self, Journal, Opened};
use crate::key::{NUMERICS_VERSION, experiment_hash, job_key};
use crate::lock;
use crate::numfmt::{grouped, plural};
use crate::plot;
use crate::report;
use crate::shard::{self, Shard};
use crate::signals::{self, Stop};
use crate::spec::{DataSource, Spec};
use crate::store;
use crate::summary::{self, Choice};
use crate::sweep::{self, Clock, Control, JobResult, Progress};
use crate::train::Status;

/// A mistake in how the tool was called (exit code 2), as opposed to a
/// failure while running (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub use crate::spec::DEFAULT_MAX_JOBS;

/// The files a run writes, which `--fresh` may remove.
pub const OUTPUT_FILES: [&str; 10] = [
    journal::JOURNAL_FILE,
    "spec.toml",
    "jobs.parquet",
    "jobs.csv",
    "curves.parquet",
    "summary.csv",
    "summary.md",
    "best.json",
    "val_loss_vs_lambda.png",
    "loss_curves.png",
];

/// Options of `wdsweep run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub spec: PathBuf,
    pub out: Option<PathBuf>,
    pub threads: Option<usize>,
    pub quiet: bool,
    pub fresh: bool,
    pub max_jobs: u64,
    /// Run only this shard of the grid, under `OUT/shards/`.
    pub shard: Option<Shard>,
    /// Whether to keep per-epoch curves (`curves.parquet`).
    pub curves: Curves,
    /// Print where the wall time went.
    pub verbose: bool,
}

/// `--curves`: per-epoch losses of every job, or only the final metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Curves {
    On,
    Off,
    /// On for grids of up to 100 000 jobs and 10 million curve rows.
    Auto,
}

/// Above this many jobs `--curves auto` keeps no curves: they would cost
/// about 350 bytes of memory per job and most of the training time.
pub const AUTO_CURVES_MAX_JOBS: u64 = 100_000;

/// Above this many curve rows (jobs × (epochs + 1)) even `--curves on` is
/// refused: they are held in memory until written, at 32 bytes a row.
pub const CURVES_MAX_ROWS: u64 = 100_000_000;

impl Curves {
    /// Refuses `--curves on` for a grid whose curves would not fit in a
    /// machine's memory, before anything runs.
    pub fn check(self, jobs: u64, epochs: usize) -> Result<(), UsageError> {
        let rows = jobs.saturating_mul(epochs as u64 + 1);
        if self == Curves::On && rows > CURVES_MAX_ROWS {
            return Err(UsageError(format!(
                "--curves on would keep {} per-epoch rows ({} jobs × {} rows each, about {} GB of \
                 memory), more than the {} wdsweep allows; pass --curves off (the summary and \
                 every job's final losses are the same), or run fewer jobs or epochs",
                grouped(rows),
                grouped(jobs),
                grouped(epochs as u64 + 1),
                rows.saturating_mul(32) / 1_000_000_000,
                grouped(CURVES_MAX_ROWS)
            )));
        }
        Ok(())
    }

    /// Whether a grid of `jobs` jobs of `epochs` epochs keeps curves. `auto`
    /// also drops them when they would pass ten million rows (320 MB).
    pub fn keep(self, jobs: u64, epochs: usize) -> bool {
        match self {
            Curves::On => true,
            Curves::Off => false,
            Curves::Auto => {
                jobs <= AUTO_CURVES_MAX_JOBS && jobs.saturating_mul(epochs as u64 + 1) <= 10_000_000
            }
        }
    }
}

/// Wall time of the steps of a run, for `-v`.
#[derive(Debug, Default)]
struct Timings {
    spec: f64,
    training: f64,
    tables: f64,
    summary: f64,
    plots: f64,
}

/// What a run found.
#[derive(Debug)]
pub struct RunReport {
    pub out: PathBuf,
    pub choice: Option<Choice>,
    /// Jobs in the grid, and how many of them are done.
    pub jobs: u64,
    pub done: u64,
    pub diverged: u64,
    /// The signal that stopped the run early, if one did.
    pub signal: Option<i32>,
    /// The shard that ran, for a sharded run (which chooses nothing).
    pub shard: Option<Shard>,
}

impl RunReport {
    /// The exit status (DESIGN.md §6): 130/143 after a signal, 3 when the
    /// complete sweep has nothing to choose, else 0.
    pub fn exit_code(&self) -> u8 {
        match self.signal {
            Some(s) => signals::exit_code(s),
            None if self.shard.is_some() => 0,
            None if self.choice.is_none() => 3,
            None => 0,
        }
    }
}

/// Where a spec's results go by default: `results/NAME`.
pub fn default_out(spec: &Spec) -> PathBuf {
    Path::new("results").join(&spec.name)
}

/// What an output folder holds, as far as this experiment is concerned.
enum Folder {
    /// Absent, or without a `spec.toml`.
    Unclaimed,
    /// Results of this experiment.
    Same,
    /// Results of another experiment: why it differs.
    Different(String),
}

fn inspect_folder(out: &Path, spec: &Spec) -> Result<Folder> {
    let existing = out.join("spec.toml");
    if !existing.exists() {
        return Ok(Folder::Unclaimed);
    }
    let text = fs::read_to_string(&existing)
        .with_context(|| format!("cannot read {}", existing.display()))?;
    let theirs = toml::from_str::<toml::Table>(&text).ok();
    let theirs_hash = theirs.as_ref().and_then(|t| {
        t.get("provenance")?
            .get("experiment")?
            .as_str()
            .map(str::to_string)
    });
    if theirs_hash == Some(experiment_hash(&spec.data, &spec.train)) {
        return Ok(Folder::Same);
    }
    Ok(Folder::Different(match theirs {
        Some(t) => describe_difference(&t, spec, out),
        None => "its spec.toml cannot be read".into(),
    }))
}

/// What a run can do about a folder of another experiment.
pub(crate) const RUN_FIX: &str = "pass --fresh to replace them, or --out DIR to write elsewhere";

/// Refuses a folder that holds another experiment's results; `fix` says
/// what the command at hand can do about it.
pub(crate) fn refuse_foreign(out: &Path, spec: &Spec, fix: &str) -> Result<()> {
    if let Folder::Different(what) = inspect_folder(out, spec)? {
        return Err(UsageError(format!(
            "{} holds results of a different experiment ({what}); {fix}",
            out.display()
        ))
        .into());
    }
    Ok(())
}

/// Makes `out` ready for this experiment. A folder that holds another
/// experiment's results is refused unless `fresh`, which removes only the
/// files wdsweep writes.
fn claim_folder(out: &Path, spec: &Spec, fresh: bool, fix: &str) -> Result<()> {
    refuse_overwriting_data(out, spec)?;
    if fresh {
        for name in OUTPUT_FILES {
            let path = out.join(name);
            if path.exists() {
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
    } else {
        refuse_foreign(out, spec, fix)?;
    }
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    remove_stale_temporaries(out)
}

/// Refuses to run a spec file that is one of the files the run writes in
/// `out`: a hand-written spec saved as `OUT/spec.toml` (or, say,
/// `OUT/best.json`) would be replaced. A spec.toml that wdsweep wrote may be
/// rerun in place; the run writes it again.
fn refuse_overwriting_spec(out: &Path, spec_path: &Path, spec: &Spec) -> Result<()> {
    if let Some(name) = output_named(out, spec_path) {
        if name == "spec.toml" && spec.recorded_numerics.is_some() {
            return Ok(());
        }
        return Err(UsageError(format!(
            "{}: the spec is the {name} this run would write in {} (replacing it{}); keep your \
             specs elsewhere (sweeps/{}.toml, say) or pass --out DIR",
            spec_path.display(),
            out.display(),
            if name == "spec.toml" {
                ", and its comments, with the spec as run"
            } else {
                ""
            },
            spec.name
        ))
        .into());
    }
    Ok(())
}

/// Which of the files a run writes in `out` the existing `file` is, if any.
fn output_named(out: &Path, file: &Path) -> Option<&'static str> {
    let file = fs::canonicalize(file).ok()?;
    OUTPUT_FILES
        .into_iter()
        .find(|name| fs::canonicalize(out.join(name)).is_ok_and(|p| p == file))
}

/// Whether `name` is a temporary file of an output being written
/// (`.NAME.tmp-PID`, renamed over NAME once whole).
pub(crate) fn is_temporary(name: &str) -> bool {
    OUTPUT_FILES
        .iter()
        .any(|f| name.starts_with(&format!(".{f}.tmp-")))
}

/// Refuses a folder where one of the files a run writes is the data file
/// itself (a table named `summary.csv` in the output folder, say), which
/// the run would otherwise replace with its results.
fn refuse_overwriting_data(out: &Path, spec: &Spec) -> Result<()> {
    let crate::spec::DataSource::Table(table) = &spec.data else {
        return Ok(());
    };
    if let Some(name) = output_named(out, &table.path) {
        return Err(UsageError(format!(
            "{}: the data file is the {name} this run would write in {}; move or rename the \
             data file, or pass --out DIR to write the results elsewhere",
            table.path.display(),
            out.display()
        ))
        .into());
    }
    Ok(())
}

/// Warns when a spec.toml written by other numerics, or from a data file
/// that has changed since, is rerun: its jobs will not reproduce the
/// numbers stored beside it.
pub fn warn_numerics(spec: &Spec, quiet: bool) {
    if let (Some(recorded), Some(table)) = (&spec.recorded_data_hash, spec.data.table())
        && *recorded != table.hash.to_hex().as_str()
        && !quiet
    {
        tell!(
            "wdsweep: warning: this spec.toml was written from other contents of {} (BLAKE3 \
             {recorded}, now {}): its numbers will differ from the results it was written with",
            table.path.display(),
            table.hash.to_hex()
        );
    }
    if let Some(v) = spec
        .recorded_numerics
        .filter(|&v| v != i64::from(NUMERICS_VERSION))
        && !quiet
    {
        tell!(
            "wdsweep: warning: this spec.toml records numerics version {v}, and this wdsweep \
             computes with version {NUMERICS_VERSION}: its numbers will differ from the results \
             it was written with"
        );
    }
}

/// Removes `.NAME.tmp-PID` files that a killed run left mid-write. The
/// caller holds the folder's lock, so no live run is writing them.
fn remove_stale_temporaries(out: &Path) -> Result<()> {
    let entries = fs::read_dir(out).with_context(|| format!("cannot list {}", out.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_temporary(&name) {
            let path = entry.path();
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// Names the data and training settings that differ between the spec.toml
/// of the folder `out` and `spec`.
fn describe_difference(theirs: &toml::Table, spec: &Spec, out: &Path) -> String {
    let ours: toml::Table = toml::from_str(&report::spec_as_run(spec, out)).unwrap_or_default();
    let mut diffs = Vec::new();
    let data_hash = |t: &toml::Table| {
        t.get("provenance")?
            .get(crate::spec::DATA_HASH_KEY)?
            .as_str()
            .map(str::to_string)
    };
    if let (Some(a), Some(b)) = (data_hash(&ours), data_hash(theirs))
        && a != b
    {
        diffs.push(format!(
            "the data file's bytes differ: BLAKE3 {}… here, {}… there",
            &a[..a.len().min(12)],
            &b[..b.len().min(12)]
        ));
    }
    let path = |t: &toml::Table| t.get("data")?.get("path").map(|v| v.to_string());
    let source = |p: Option<String>| {
        p.map_or("the book's synthetic data".into(), |p| {
            format!("the data file {p}")
        })
    };
    let (our_path, their_path) = (path(&ours), path(theirs));
    // Book data against a file: the one difference worth naming.
    let sections: &[&str] = if our_path.is_some() != their_path.is_some() {
        diffs.push(format!(
            "{} here, {} there",
            source(our_path),
            source(their_path)
        ));
        &["train"]
    } else {
        &["data", "train"]
    };
    for &section in sections {
        let (a, b) = (ours.get(section), theirs.get(section));
        // The keys of both sides, ours first, so that a key only the
        // folder has is named too.
        let mut keys: Vec<String> = Vec::new();
        for table in [a, b].into_iter().flatten().filter_map(|v| v.as_table()) {
            for key in table.keys() {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
        for key in keys {
            let (x, y) = (a.and_then(|t| t.get(&key)), b.and_then(|t| t.get(&key)));
            if x != y {
                let show = |v: Option<&toml::Value>| v.map_or("absent".into(), |v| v.to_string());
                diffs.push(format!(
                    "[{section}] {key} is {} here, {} there",
                    show(x),
                    show(y)
                ));
            }
        }
    }
    if diffs.is_empty() {
        "it was written by a different numerics version".into()
    } else {
        diffs.join("; ")
    }
}

/// Where the rows come from, in a line.
fn describe_data(spec: &Spec) -> String {
    match &spec.data {
        DataSource::Book(d) => format!(
            "the book's synthetic data: {} train, {} validate, {} inputs",
            d.num_train, d.num_val, d.num_inputs
        ),
        DataSource::Table(t) => format!(
            "{}: {} rows × {} features, target {:?}; {}{}",
            t.path.display(),
            grouped(t.num_rows() as u64),
            t.features.len(),
            t.target,
            t.describe_split(),
            if t.standardize {
                "; features standardised on the training rows"
            } else {
                "; features as they are"
            }
        ),
    }
}

/// `--dry-run`: what a run would do — the expanded axes, the job count and
/// the output folder — without running or writing anything.
pub fn dry_run(opts: &RunOptions) -> Result<String> {
    let spec = Spec::from_file(&opts.spec, opts.max_jobs)?;
    opts.curves.check(spec.grid.len(), spec.train.epochs)?;
    let out = opts.out.clone().unwrap_or_else(|| default_out(&spec));
    let list = |values: Vec<String>| {
        if values.len() <= 24 {
            values.join(", ")
        } else {
            let (head, tail) = (&values[..12], &values[values.len() - 3..]);
            format!(
                "{}, … ({} more) …, {}",
                head.join(", "),
                values.len() - 15,
                tail.join(", ")
            )
        }
    };
    let floats = |v: &[f64]| list(v.iter().map(|&x| crate::numfmt::short(x)).collect());
    let seeds = match &spec.grid.seeds {
        crate::grid::SeedAxis::Range { start, count } => {
            format!("{start} to {}", start + (count - 1))
        }
        crate::grid::SeedAxis::List(v) => list(v.iter().map(u64::to_string).collect()),
    };
    let folder = match inspect_folder(&out, &spec)? {
        Folder::Unclaimed if out.exists() => "exists, holds no wdsweep results".to_string(),
        Folder::Unclaimed => "new".to_string(),
        Folder::Same if opts.fresh => {
            "holds this experiment's results, which --fresh would discard".to_string()
        }
        Folder::Same => "holds this experiment's results; a run reuses them".to_string(),
        Folder::Different(what) if opts.fresh => {
            format!("holds a different experiment ({what}), which --fresh would discard")
        }
        Folder::Different(what) => {
            format!("holds a DIFFERENT experiment ({what}); a run refuses without --fresh")
        }
    };
    let locked = match opts.shard {
        Some(s) => s.dir(&out),
        None => out.clone(),
    };
    // The folder's own journal, read once: its records, and the damage a
    // run would report (and repair; a dry run only looks).
    let own_journal = locked.join(journal::JOURNAL_FILE);
    let own = match fs::read(&own_journal) {
        Ok(bytes) => {
            let found = journal::scan(&bytes);
            let damage = found.damage(&bytes);
            (found.records, damage)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", own_journal.display()));
        }
    };
    let folder = match own.1 {
        Some(d) if !d.torn => format!(
            "{folder}; its journal is damaged: {} bytes cannot be read, and the jobs they held \
             would run again",
            grouped(d.bytes)
        ),
        _ => folder,
    };
    let folder = match lock::holder(&locked) {
        Some(who) => format!(
            "{folder}; in use right now by a running sweep ({who}), so a run would be refused \
             until it ends"
        ),
        None => folder,
    };
    let g = &spec.grid;

    // What a run would do: which jobs, and how many are already done.
    let scope = |job: u64| opts.shard.is_none_or(|s| s.owns(job));
    let records = if opts.fresh {
        Default::default()
    } else {
        // The folder's own records first; a plain run also counts its
        // shards'.
        let mut records = std::collections::HashMap::new();
        for r in own.0 {
            records.entry(r.key.clone()).or_insert(r);
        }
        if opts.shard.is_none() {
            for (key, r) in shard::read_journals(&shard::shard_journals(&out)?)? {
                records.entry(key).or_insert(r);
            }
        }
        records
    };
    let wanted = opts.shard.map_or(g.len(), |s| s.jobs_of(g.len()));
    // Keys are hashed only when there is a journal to look them up in, so
    // that a dry run of a huge fresh grid is instant.
    let mut done = 0u64;
    if !records.is_empty() {
        for job in (0..g.len()).filter(|&j| scope(j)) {
            let (_, lambda, lr, seed) = g.point(job);
            done += u64::from(records.contains_key(&job_key(
                &spec.data,
                &spec.train,
                lambda,
                lr,
                seed,
            )));
        }
    }
    let shard_line = match opts.shard {
        Some(s) => format!(
            "shard:   {s}: {} of the jobs, in {}\n",
            grouped(wanted),
            s.dir(&out).display()
        ),
        None => String::new(),
    };
    Ok(format!(
        "spec:    {} (name \"{}\", penalty = \"{}\")\n\
         data:    {}\n\
         lambda:  {} values: {}\n\
         lr:      {} values: {}\n\
         seed:    {} values: {}\n\
         jobs:    {}\n\
         {shard_line}\
         output:  {} ({folder})\n\
         done:    {} of {} already done, {} to run\n\
        nothing was run (--dry-run)",
        opts.spec.display(),
        spec.name,
        spec.train.penalty,
        describe_data(&spec),
        g.lambdas.len(),
        floats(&g.lambdas),
        g.lrs.len(),
        floats(&g.lrs),
        g.seeds.len(),
        seeds,
        grouped(g.len()),
        out.display(),
        grouped(done),
        grouped(wanted),
        grouped(wanted - done),
    ))
}

/// Runs a sweep end to end and writes its folder. Jobs already in the
/// folder's journal are reused; a signal stops the run early with the files
/// of what is done, marked partial.
pub fn run(opts: &RunOptions) -> Result<RunReport> {
    let started = Instant::now();
    let spec = Spec::from_file(&opts.spec, opts.max_jobs)?;
    opts.curves.check(spec.grid.len(), spec.train.epochs)?;
    let out = opts.out.clone().unwrap_or_else(|| default_out(&spec));
    let stop = Stop::install()?;
    warn_numerics(&spec, opts.quiet);
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let (dir, _locks, shards) = match opts.shard {
        // A shard keeps all of its state in its own folder under OUT/shards/,
        // and shares OUT's lock with the other shards.
        Some(shard) => {
            let shared = lock::acquire_shared(&out)?;
            let dir = shard.dir(&out);
            shard::check_siblings(&out, shard, &|dir| report::spec_as_run(&spec, dir))?;
            fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let own = lock::acquire(&dir)?;
            (dir, vec![shared, own], Vec::new())
        }
        // A run of the whole grid counts the jobs its folder's shards
        // finished. A running shard would do some of the same jobs at the
        // same time, so it is refused, by name, before anything is touched;
        // OUT's lock then keeps new shards out until this run ends.
        None => {
            let shards = shard::find_shards(&out)?;
            let mut locks = shard::lock_all(
                &shards,
                "wait for them to finish (then run again, or merge), or write elsewhere with \
                 --out DIR",
            )?;
            locks.push(lock::acquire(&out)?);
            (out.clone(), locks, shards)
        }
    };
    refuse_overwriting_spec(&dir, &opts.spec, &spec)?;
    claim_folder(&dir, &spec, opts.fresh, RUN_FIX)?;
    // --fresh discards the shards' results too.
    if opts.fresh {
        shard::remove_all(&out, &shards)?;
    }
    store::write_text(&dir.join("spec.toml"), &report::spec_as_run(&spec, &dir))?;

    let Opened {
        journal,
        mut done,
        damage,
    } = Journal::open(&dir)?;
    let journaled = done.len() as u64;
    if opts.shard.is_none() {
        // Jobs finished by shards of this folder count as done too.
        for (key, record) in shard::read_journals(&shard::shard_journals(&out)?)? {
            done.entry(key).or_insert(record);
        }
    }
    // Decided on the whole grid, so that every shard of a sweep agrees.
    let keep_curves = opts.curves.keep(spec.grid.len(), spec.train.epochs);
    let grid = &spec.grid;
    let in_scope = |job: u64| opts.shard.is_none_or(|s| s.owns(job));
    let total = opts.shard.map_or(grid.len(), |s| s.jobs_of(grid.len()));
    let mut results = Vec::new();
    let mut todo = Vec::new();
    for job in (0..grid.len()).filter(|&j| in_scope(j)) {
        // Listing a huge grid takes a while; a signal stops it too.
        if job % (1 << 16) == 0 && stop.requested() {
            tell!("wdsweep: stopped while listing the grid's jobs; nothing was trained");
            return Ok(RunReport {
                out,
                choice: None,
                jobs: total,
                done: 0,
                diverged: 0,
                signal: stop.signal(),
                shard: opts.shard,
            });
        }
        // Nothing to reuse: the workers compute each key once, as they go.
        if done.is_empty() {
            todo.push(job);
            continue;
        }
        let (index, lambda, lr, seed) = grid.point(job);
        let key = job_key(&spec.data, &spec.train, lambda, lr, seed);
        // A record without its curve cannot serve a run that keeps curves.
        let usable = done
            .get(&key)
            .filter(|r| !keep_curves || !r.outcome.curve.is_empty());
        match usable {
            Some(record) => {
                let outcome = record.outcome.clone();
                results.push(JobResult {
                    index,
                    key,
                    lambda,
                    lr,
                    seed,
                    outcome,
                });
            }
            None => todo.push(job),
        }
    }
    drop(done);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    match damage {
        // Damage is not the aftermath of a kill: it is said even under -q.
        Some(d) if !d.torn => tell!(
            "wdsweep: warning: {} is damaged: {} bytes from byte {} could not be read; the jobs \
             they held run again, and the {} intact records are kept (the file was repaired \
             without the damage). Check the disk it is on.",
            journal.path().display(),
            grouped(d.bytes),
            grouped(d.at),
            grouped(journaled)
        ),
        Some(d) if !opts.quiet => tell!(
            "wdsweep: the journal's last {} bytes were a torn write (the previous run was \
             killed or its disk filled); they were cut off, and any job they held runs again",
            grouped(d.bytes)
        ),
        _ => {}
    }
    if !opts.quiet {
        let scope = match opts.shard {
            Some(s) => format!("shard {s}: {} of the ", grouped(total)),
            None => String::new(),
        };
        if spec.data.table().is_some() {
            tell!("wdsweep: data: {}", describe_data(&spec));
        }
        tell!(
            "wdsweep: {scope}{} {} ({} λ × {} lr × {} {}) → {}",
            grouped(grid.len()),
            plural(grid.len(), "job"),
            grid.lambdas.len(),
            grid.lrs.len(),
            grid.seeds.len(),
            plural(grid.seeds.len(), "seed"),
            dir.display()
        );
        if !results.is_empty() {
            tell!(
                "wdsweep: {} of {} jobs already done, running {}",
                grouped(results.len() as u64),
                grouped(total),
                grouped(todo.len() as u64)
            );
        }
        if !todo.is_empty() {
            tell!(
                "wdsweep: training on {} threads",
                pool.current_num_threads()
            );
        }
    }

    if !opts.quiet && !keep_curves {
        tell!("wdsweep: keeping no per-epoch curves (--curves on keeps them)");
    }
    let mut timings = Timings {
        spec: started.elapsed().as_secs_f64(),
        ..Timings::default()
    };
    let progress = Progress::new(todo.len() as u64, opts.quiet);
    let clock = Clock::default();
    let train_started = Instant::now();
    let (fresh, journal_error) = {
        let (tx, rx) = mpsc::channel::<Vec<JobResult>>();
        let writer = spawn_journal_writer(journal, rx, stop.clone(), opts.quiet);
        pool.install(|| {
            let control = Control {
                progress: &progress,
                stop: &stop,
                curves: keep_curves,
                clock: &clock,
            };
            sweep::run_jobs_with(&spec, &todo, &control, &|batch| {
                // The writer outlives the sender, so a send cannot fail.
                let _ = tx.send(batch);
            })
        });
        drop(tx);
        writer
            .join()
            .map_err(|_| anyhow!("the journal writer crashed"))?
    };
    progress.finish();
    let train_secs = train_started.elapsed().as_secs_f64();
    timings.training = train_secs;
    let ran = fresh.len();
    results.extend(fresh);
    results.sort_by_key(|r| r.index.job);

    if let Some(err) = journal_error {
        return Err(err.context(
            "the sweep stopped early; the jobs recorded before the failure are kept in the \
             journal, so rerunning the same command after fixing the cause finishes the sweep",
        ));
    }

    let complete = results.len() as u64 == total;
    if let Some(shard) = opts.shard {
        // Shards write no final files: `merge` does, once all are done.
        let diverged = results
            .iter()
            .filter(|r| r.outcome.status == Status::Diverged)
            .count();
        if !opts.quiet {
            say!(
                "shard {shard}: {} of {} jobs done ({diverged} diverged) in {}",
                grouped(results.len() as u64),
                grouped(total),
                dir.display()
            );
            if complete {
                say!("when every shard is done: wdsweep merge {}", out.display());
            } else {
                say!("rerun the same command to finish this shard; finished jobs are kept");
            }
        }
        return Ok(RunReport {
            out,
            choice: None,
            jobs: total,
            done: results.len() as u64,
            diverged: diverged as u64,
            signal: stop.signal(),
            shard: Some(shard),
        });
    }
    let (cells, choice) = write_outputs(
        &out,
        &spec,
        &results,
        complete,
        keep_curves,
        opts.quiet,
        Some(&mut timings),
    )?;
    let diverged: u64 = cells.iter().map(|c| c.n_diverged).sum();
    if opts.verbose {
        let threads = pool.current_num_threads();
        tell!(
            "wdsweep: wall time: spec, data file, grid and journal {:.4} s; training {:.4} s \
             on {threads} threads (of their time, {:.4} s making data sets and products, {:.4} s \
             in the training loops); writing tables {:.4} s; aggregation {:.4} s; plots {:.4} s",
            timings.spec,
            timings.training,
            Clock::secs(&clock.data_ns),
            Clock::secs(&clock.train_ns),
            timings.tables,
            timings.summary,
            timings.plots
        );
    }
    if !opts.quiet {
        print_outcome(&cells, choice.as_ref(), results.len() as u64, total);
        if !complete {
            say!("rerun the same command to finish; finished jobs are kept");
        }
        let rate = if ran > 0 {
            format!(", {:.0} jobs/s", ran as f64 / train_secs.max(1e-9))
        } else {
            String::new()
        };
        say!(
            "results in {}/ ({:.2} s: {:.2} s training {} jobs{rate})",
            out.display(),
            started.elapsed().as_secs_f64(),
            train_secs,
            grouped(ran as u64),
        );
    }
    Ok(RunReport {
        out,
        choice,
        jobs: total,
        done: results.len() as u64,
        diverged,
        signal: stop.signal(),
        shard: None,
    })
}

/// The summary table, the diverged count and the choice, on stdout.
fn print_outcome(cells: &[summary::Cell], choice: Option<&Choice>, done: u64, total: u64) {
    if done == 0 {
        let none = match total {
            1 => "the one job did not finish".to_string(),
            n => format!("none of the {} jobs finished", grouped(n)),
        };
        say!("PARTIAL RUN: {none}, so no λ can be chosen yet");
        return;
    }
    say!("{}", report::terminal_table(cells, choice));
    let diverged: u64 = cells.iter().map(|c| c.n_diverged).sum();
    if diverged > 0 {
        say!("{diverged} of {done} jobs diverged; their cells are never chosen.");
    }
    if done == total {
        say!("{}", report::choice_line(choice, cells));
    } else {
        say!(
            "PARTIAL RUN: {} of {} jobs done; so far the best is {}",
            grouped(done),
            grouped(total),
            report::choice_line(choice, cells)
        );
    }
}

/// What `wdsweep merge` found.
#[derive(Debug)]
pub struct MergeReport {
    pub complete: bool,
    pub choice: Option<Choice>,
}

impl MergeReport {
    /// 1 when shards are missing, 3 when nothing can be chosen, else 0.
    pub fn exit_code(&self) -> u8 {
        match (self.complete, &self.choice) {
            (false, _) => 1,
            (true, None) => 3,
            (true, Some(_)) => 0,
        }
    }
}

/// `wdsweep merge OUT`: combines the shards under `OUT/shards/` into the
/// final files of `OUT`, the same bytes a single-process run writes. With
/// shards missing, the files are written marked partial, and the report
/// names the shards to rerun.
pub fn merge(out: &Path, quiet: bool, max_jobs: u64) -> Result<MergeReport> {
    let merged = shard::gather(out, max_jobs)?;
    let _lock = lock::acquire(out)?;
    claim_folder(
        out,
        &merged.spec,
        false,
        "merge writes its files there, so move those results away (or delete the folder's \
         spec.toml) and merge again",
    )?;
    store::write_text(
        &out.join("spec.toml"),
        &report::spec_as_run(&merged.spec, out),
    )?;
    let complete = merged.complete();
    let keep_curves = merged.results.iter().all(|r| !r.outcome.curve.is_empty());
    let (cells, choice) = write_outputs(
        out,
        &merged.spec,
        &merged.results,
        complete,
        keep_curves,
        quiet,
        None,
    )?;
    if !quiet {
        print_outcome(
            &cells,
            choice.as_ref(),
            merged.results.len() as u64,
            merged.spec.grid.len(),
        );
        say!(
            "merged the shards of a {}-shard run into {}/",
            merged.shards,
            out.display()
        );
    }
    if !complete {
        tell!("wdsweep: {}", merged.missing_report(out));
    }
    Ok(MergeReport { complete, choice })
}

/// Writes every final file of a folder from the results at hand (in job
/// order); `complete` is false when some jobs of the grid are missing.
fn write_outputs(
    out: &Path,
    spec: &Spec,
    results: &[JobResult],
    complete: bool,
    keep_curves: bool,
    quiet: bool,
    timings: Option<&mut Timings>,
) -> Result<(Vec<summary::Cell>, Option<Choice>)> {
    let mut local = Timings::default();
    let timings = timings.unwrap_or(&mut local);
    let mut clock = Instant::now();
    let mut lap = || {
        let secs = clock.elapsed().as_secs_f64();
        clock = Instant::now();
        secs
    };
    let mut jobs = store::jobs_frame(results)?;
    store::write_parquet(&out.join("jobs.parquet"), &mut jobs)?;
    store::write_csv(&out.join("jobs.csv"), &mut jobs)?;
    let curves_path = out.join("curves.parquet");
    let curves = if keep_curves {
        let mut curves = store::curves_frame(results)?;
        store::write_parquet(&curves_path, &mut curves)?;
        Some(curves)
    } else {
        // A curves table from an earlier run would not match these jobs.
        if curves_path.exists() {
            fs::remove_file(&curves_path)
                .with_context(|| format!("cannot remove {}", curves_path.display()))?;
        }
        None
    };
    timings.tables = lap();

    let mut summary = summary::summarize(&jobs)?;
    store::write_csv(&out.join("summary.csv"), &mut summary)?;
    let cells = summary::cells(&summary)?;
    let choice = summary::choose(&cells);
    timings.summary = lap();
    store::write_text(
        &out.join("summary.md"),
        &report::summary_markdown(&spec.name, &cells, choice.as_ref(), complete),
    )?;
    store::write_text(
        &out.join("best.json"),
        &report::best_json(choice.as_ref(), &cells, complete),
    )?;
    let note = draw(
        out,
        spec,
        &cells,
        choice.as_ref(),
        &jobs,
        curves.as_ref(),
        !complete,
    )?;
    if let Some(note) = note
        && !quiet
    {
        tell!("{note}");
    }
    timings.plots = lap();
    Ok((cells, choice))
}

/// The thread that appends finished jobs to the journal in small batches:
/// whatever has arrived is written and synced at least every 100 ms. It
/// returns every result it was handed, and the first write error, after
/// which it records nothing more and asks the sweep to stop.
fn spawn_journal_writer(
    mut journal: Journal,
    rx: mpsc::Receiver<Vec<JobResult>>,
    stop: Stop,
    quiet: bool,
) -> thread::JoinHandle<(Vec<JobResult>, Option<anyhow::Error>)> {
    const EVERY: Duration = Duration::from_millis(100);
    thread::spawn(move || {
        // The first Ctrl-C is acknowledged here, the thread that is awake
        // every 0.1 s while the workers train.
        let mut told = quiet;
        let mut kept = Vec::new();
        let mut buf = Vec::new();
        let mut error: Option<anyhow::Error> = None;
        let mut last = Instant::now();
        let mut flush = |buf: &mut Vec<u8>, error: &mut Option<anyhow::Error>| {
            if !buf.is_empty()
                && error.is_none()
                && let Err(e) = journal.write(buf)
            {
                *error = Some(e);
                stop.request();
            }
            buf.clear();
        };
        let mut ended = false;
        while !ended {
            match rx.recv_timeout(EVERY) {
                Ok(batch) => {
                    for r in batch {
                        if error.is_none() {
                            journal::encode_parts(
                                &mut buf, &r.key, r.lambda, r.lr, r.seed, &r.outcome,
                            );
                        }
                        kept.push(r);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // The workers are done; a stop that ended them is still
                // acknowledged below.
                Err(mpsc::RecvTimeoutError::Disconnected) => ended = true,
            }
            if !told && stop.signal().is_some() {
                told = true;
                tell!(
                    "wdsweep: stopping: no new job starts, running ones are abandoned at \
                     their next epoch, and all that is finished is saved; press Ctrl-C again \
                     to quit at once (finished jobs are kept either way)"
                );
            }
            if last.elapsed() >= EVERY || buf.len() >= 1 << 20 {
                flush(&mut buf, &mut error);
                last = Instant::now();
            }
        }
        flush(&mut buf, &mut error);
        (kept, error)
    })
}

/// The most per-epoch rows the loss-curve figure reruns jobs for when a
/// run kept no curves (about 32 MB).
const PLOT_RERUN_MAX_ROWS: u64 = 1_000_000;

/// Renders both figures; a note for the user when one is not drawn.
fn draw(
    out: &Path,
    spec: &Spec,
    cells: &[summary::Cell],
    choice: Option<&Choice>,
    jobs: &polars::prelude::DataFrame,
    curves: Option<&polars::prelude::DataFrame>,
    partial: bool,
) -> Result<Option<String>> {
    let points: Vec<plot::Cell> = cells
        .iter()
        .map(|c| plot::Cell {
            lambda: c.lambda,
            lr: c.lr,
            mean: c.val_loss_mean,
            sem: c.val_loss_sem,
            n: c.n as usize,
            n_diverged: c.n_diverged as usize,
        })
        .collect();
    // A partial run has fewer seeds in some cells than the grid has.
    let grid_seeds = spec.grid.seeds.len();
    let seeds = match cells.iter().map(|c| c.n).max() {
        Some(most) if partial => format!("up to {most} of {grid_seeds}"),
        _ => grid_seeds.to_string(),
    };
    let marked = choice.map(|c| plot::Choice {
        lambda: c.lambda,
        lr: c.lr,
    });
    plot::val_loss_vs_lambda(
        &out.join("val_loss_vs_lambda.png"),
        &points,
        marked.as_ref(),
        &format!(
            "{}: validation loss vs λ ({seeds} {})",
            spec.name,
            plural(grid_seeds, "seed")
        ),
        partial,
    )?;

    // The book's figure: the smallest λ of the grid against the chosen one.
    let smallest = spec
        .grid
        .lambdas
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let lr = choice.map_or(spec.grid.lrs[0], |c| c.lr);
    let mut lambdas = vec![smallest];
    if let Some(c) = choice.filter(|c| c.lambda != smallest) {
        lambdas.push(c.lambda);
    }
    let rerun;
    let curves = match curves {
        Some(c) => c,
        None => {
            // Without curves kept, run the plotted jobs again with them: a
            // job's result is the same bits whenever it runs, and these are
            // a few jobs per seed.
            let wanted = summary::plotted_jobs(jobs, lr, &lambdas)?;
            let rows = (wanted.len() as u64).saturating_mul(spec.train.epochs as u64 + 1);
            if rows > PLOT_RERUN_MAX_ROWS {
                // Very long jobs: rerunning them for the figure would hold
                // every epoch of every plotted job in memory.
                let path = out.join("loss_curves.png");
                if path.exists() {
                    fs::remove_file(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))?;
                }
                return Ok(Some(format!(
                    "wdsweep: loss_curves.png is not drawn: its {} jobs of {} epochs would \
                     need {} curve rows (the figure takes at most {})",
                    wanted.len(),
                    grouped(spec.train.epochs as u64),
                    grouped(rows),
                    grouped(PLOT_RERUN_MAX_ROWS)
                )));
            }
            rerun = store::curves_frame(&sweep::run_jobs(
                spec,
                &wanted,
                &Progress::new(0, true),
                true,
            ))?;
            &rerun
        }
    };
    let means = summary::mean_curves(jobs, curves, lr, &lambdas)?;
    let lam = means.column("lambda")?.f64()?;
    let train = means.column("train_loss")?.f64()?;
    let val = means.column("val_loss")?.f64()?;
    let lines: Vec<plot::Curve> = lambdas
        .iter()
        .map(|&l| {
            let rows = (0..means.height()).filter(|&i| lam.get(i) == Some(l));
            let (t, v): (Vec<_>, Vec<_>) = rows.map(|i| (train.get(i), val.get(i))).unzip();
            plot::Curve {
                lambda: l,
                train: t,
                val: v,
            }
        })
        .collect();
    plot::loss_curves(
        &out.join("loss_curves.png"),
        &lines,
        lr,
        &format!(
            "{}: loss per epoch, mean over {seeds} {}",
            spec.name,
            plural(grid_seeds, "seed")
        ),
        partial,
    )?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_curves_stop_at_a_hundred_thousand_jobs_or_ten_million_rows() {
        assert!(Curves::Auto.keep(100_000, 10));
        assert!(!Curves::Auto.keep(100_001, 10));
        // One job of a million epochs would be a million rows: still kept;
        // a thousand such jobs would not be.
        assert!(Curves::Auto.keep(1, 1_000_000));
        assert!(!Curves::Auto.keep(1_000, 1_000_000));
        assert!(Curves::On.keep(u64::MAX, usize::MAX));
        assert!(!Curves::Off.keep(1, 1));
    }
}
