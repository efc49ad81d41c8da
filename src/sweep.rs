//! Running a sweep's jobs in parallel.
//!
//! Work is organised by seed: a seed's data set (the book's draw, or its
//! split of a data file) and initial weights are made once and shared by
//! all of its (λ, lr) jobs, which run as nested rayon tasks. Results are collected with order-preserving `collect`s and placed
//! by job number, so nothing about scheduling reaches the results.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use ndarray::Array1;
use rayon::prelude::*;

use crate::data::{self, Dataset};
use crate::grid::JobIndex;
use crate::kernel::{self, SeedFactors};
use crate::key::job_key;
use crate::numfmt::grouped;
use crate::signals::Stop;
use crate::spec::{DataSource, Spec, TrainSettings};
use crate::tell;
use crate::train::{self, Outcome};

/// One finished job.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub index: JobIndex,
    pub key: String,
    pub lambda: f64,
    pub lr: f64,
    pub seed: u64,
    pub outcome: Outcome,
}

/// Progress reporting on stderr: a bar on a terminal, a plain line every 10%
/// elsewhere (a cluster log), or nothing.
pub struct Progress {
    total: u64,
    mode: Mode,
}

enum Mode {
    Quiet,
    Bar(ProgressBar),
    Lines {
        done: AtomicU64,
        start: Instant,
        lock: Mutex<()>,
    },
}

impl Progress {
    pub fn new(total: u64, quiet: bool) -> Progress {
        let mode = if quiet || total == 0 {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {done}/{total} jobs \
                     ({rate}, eta {eta})",
                )
                .expect("a valid progress template")
                .with_key(
                    "rate",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} jobs/s", state.per_sec());
                    },
                )
                // Counts as everywhere else in wdsweep: "1 650".
                .with_key(
                    "done",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}", grouped(state.pos()));
                    },
                )
                .with_key(
                    "total",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}", grouped(state.len().unwrap_or(0)));
                    },
                ),
            );
            Mode::Bar(bar)
        } else {
            Mode::Lines {
                done: AtomicU64::new(0),
                start: Instant::now(),
                lock: Mutex::new(()),
            }
        };
        Progress { total, mode }
    }

    /// Counts `jobs` finished jobs.
    pub fn inc(&self, jobs: u64) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bar(bar) => bar.inc(jobs),
            Mode::Lines { done, start, lock } => {
                let now = done.fetch_add(jobs, Ordering::Relaxed) + jobs;
                let tenth = |k: u64| k * 10 / self.total;
                if tenth(now) > tenth(now - jobs) {
                    let _guard = lock.lock();
                    let secs = start.elapsed().as_secs_f64();
                    let rate = now as f64 / secs.max(1e-9);
                    let eta = (self.total - now) as f64 / rate.max(1e-9);
                    tell!(
                        "wdsweep: {now}/{} jobs ({}%), {rate:.0} jobs/s, eta {eta:.0} s",
                        self.total,
                        now * 100 / self.total
                    );
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}

/// Jobs of one seed trained together by the kernel.
const BLOCK: usize = 64;

/// How the jobs of one seed are trained. The choice depends only on the
/// data's shape, which is part of every job's identity, so a job gives the
/// same bits alone or in any grid.
enum Trainer {
    /// In the span of the training rows ([`kernel`]): it works in
    /// num_train dimensions, which pays when there are fewer training rows
    /// than inputs. The book's data always train this way, from their
    /// reduced draw ([`data::BookDraw`]), whatever their shape.
    Span(SeedFactors),
    /// On w itself ([`train::fit`]), for a data file with at least as many
    /// training rows as inputs.
    Direct { data: Dataset, init: Array1<f64> },
}

impl Trainer {
    fn new(source: &DataSource, train: &TrainSettings, seed: u64) -> Trainer {
        let table = match source {
            // The book's validation rows are drawn reduced, never formed.
            DataSource::Book(settings) => {
                let draw = data::book_draw(settings, seed);
                return Trainer::Span(SeedFactors::book(&draw, train.init_std));
            }
            DataSource::Table(table) => table,
        };
        let dataset = table
            .dataset(seed)
            .expect("a data file's seeds are all checked when the spec is read");
        let init = data::initial_weights(dataset.num_inputs(), train.init_std, seed);
        if dataset.num_train() >= dataset.num_inputs() {
            Trainer::Direct {
                data: dataset,
                init,
            }
        } else {
            Trainer::Span(SeedFactors::new(&dataset, init.view()))
        }
    }

    /// Jobs per task: the kernel trains a block at once, the direct loop
    /// one job at a time.
    fn block(&self) -> usize {
        match self {
            Trainer::Span(_) => BLOCK,
            Trainer::Direct { .. } => 1,
        }
    }

    /// The outcomes of `jobs` (λ, lr), in order; without `curves`, their
    /// curves are empty and the final metrics the same bits. `None` once
    /// `give_up` answers true (asked every epoch): the jobs are abandoned.
    fn fit(
        &self,
        settings: &TrainSettings,
        jobs: &[(f64, f64)],
        seed: u64,
        curves: bool,
        give_up: &dyn Fn() -> bool,
    ) -> Option<Vec<Outcome>> {
        match self {
            Trainer::Span(factors) => {
                kernel::fit_block_until(factors, settings, jobs, seed, curves, give_up)
            }
            Trainer::Direct { data, init } => jobs
                .iter()
                .map(|&job| {
                    train::fit_until(data, settings, job, init.view(), seed, curves, give_up)
                        .map(|fit| fit.outcome)
                })
                .collect(),
        }
    }
}

/// Runs every job of the spec's grid and returns the results in job order.
pub fn run_all(spec: &Spec, progress: &Progress) -> Vec<JobResult> {
    let jobs: Vec<u64> = (0..spec.grid.len()).collect();
    run_jobs(spec, &jobs, progress, true)
}

/// Runs the given jobs of the spec's grid (each below `grid.len()`), with
/// their curves if `curves`, and returns their results sorted by job
/// number.
pub fn run_jobs(spec: &Spec, jobs: &[u64], progress: &Progress, curves: bool) -> Vec<JobResult> {
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    let (stop, clock) = (Stop::new(), Clock::default());
    let control = Control {
        progress,
        stop: &stop,
        curves,
        clock: &clock,
    };
    run_jobs_with(spec, jobs, &control, &|batch| {
        results
            .lock()
            .expect("no job panics while holding the lock")
            .extend(batch)
    });
    let mut results = results.into_inner().expect("every worker has finished");
    results.sort_by_key(|r| r.index.job);
    results
}

/// Where the worker threads' time goes, summed over threads.
#[derive(Debug, Default)]
pub struct Clock {
    /// Making data sets and their products.
    pub data_ns: AtomicU64,
    /// Training.
    pub train_ns: AtomicU64,
}

impl Clock {
    fn add(counter: &AtomicU64, since: Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn secs(counter: &AtomicU64) -> f64 {
        counter.load(Ordering::Relaxed) as f64 * 1e-9
    }
}

/// How a sweep is run: where progress goes, when to stop, whether to keep
/// per-epoch curves, and where to count time.
pub struct Control<'a> {
    pub progress: &'a Progress,
    /// Once requested, no further job starts, and running ones are
    /// abandoned at their next epoch (a rerun does them again).
    pub stop: &'a Stop,
    pub curves: bool,
    pub clock: &'a Clock,
}

/// Runs the given jobs, handing the results to `done` a block at a time as
/// they finish (from the worker thread, in no particular order). A block
/// at a time, not a job at a time: a receiver on another thread is woken
/// once per block.
pub fn run_jobs_with(
    spec: &Spec,
    jobs: &[u64],
    control: &Control,
    done: &(dyn Fn(Vec<JobResult>) + Sync),
) {
    let (progress, stop) = (control.progress, control.stop);
    let grid = &spec.grid;

    // Group by seed, so that each seed's data set is made once.
    let mut by_seed: BTreeMap<usize, Vec<JobIndex>> = BTreeMap::new();
    for &job in jobs {
        let index = grid.index(job);
        by_seed.entry(index.seed).or_default().push(index);
    }
    let groups: Vec<(usize, Vec<JobIndex>)> = by_seed.into_iter().collect();

    groups.par_iter().for_each(|(si, indices)| {
        if stop.requested() {
            return;
        }
        let started = Instant::now();
        let seed = grid.seeds.get(*si);
        let trainer = Trainer::new(&spec.data, &spec.train, seed);
        Clock::add(&control.clock.data_ns, started);
        // A block's size changes no job's arithmetic (see `kernel`); it only
        // sets how much work one task takes.
        indices.par_chunks(trainer.block()).for_each(|block| {
            if stop.requested() {
                return;
            }
            let settings: Vec<(f64, f64)> = block
                .iter()
                .map(|i| (grid.lambdas[i.lambda], grid.lrs[i.lr]))
                .collect();
            let started = Instant::now();
            let outcomes = trainer.fit(&spec.train, &settings, seed, control.curves, &|| {
                stop.requested()
            });
            Clock::add(&control.clock.train_ns, started);
            let Some(outcomes) = outcomes else {
                return;
            };
            let results = block
                .iter()
                .zip(outcomes.into_iter().zip(settings))
                .map(|(&index, (outcome, (lambda, lr)))| JobResult {
                    index,
                    key: job_key(&spec.data, &spec.train, lambda, lr, seed),
                    lambda,
                    lr,
                    seed,
                    outcome,
                })
                .collect();
            progress.inc(block.len() as u64);
            done(results);
        });
    });
}
