//! The `wdsweep` command line. Parsing only: the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use wdsweep::run::{self, Curves, DEFAULT_MAX_JOBS, RunOptions, UsageError};
use wdsweep::shard::Shard;
use wdsweep::slurm::{self, SlurmOptions};
use wdsweep::spec::SpecError;
use wdsweep::verify::{self, VerifyOptions};
use wdsweep::{say, tell};

/// Weight-decay (L2) sweeps: train every (λ, lr, seed) of a grid in
/// parallel and find the λ with the lowest validation loss.
#[derive(Parser)]
#[command(name = "wdsweep", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Common {
    /// Worker threads (default: one per core).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Refuse grids with more jobs than this.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_JOBS)]
    max_jobs: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Run a sweep spec and write its results folder.
    Run {
        /// The sweep spec (TOML), for example sweeps/grid.toml.
        spec: PathBuf,
        /// Write results here instead of results/NAME/.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
        /// Print nothing but errors (and the timings, if -v asks for them).
        #[arg(short, long)]
        quiet: bool,
        /// Remove the results already in the output folder (and its shards)
        /// first.
        #[arg(long)]
        fresh: bool,
        /// Print the expanded grid, the job count and the output folder;
        /// run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run only shard I of N (jobs with index mod N == I), under
        /// DIR/shards/; combine the shards with `wdsweep merge`.
        #[arg(long, value_name = "I/N", value_parser = Shard::parse, conflicts_with = "shards")]
        shard: Option<Shard>,
        /// Split into N shards and run the one named by SLURM_ARRAY_TASK_ID
        /// or JOB_COMPLETION_INDEX.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        shards: Option<u64>,
        /// Keep per-epoch losses of every job in curves.parquet: on, off, or
        /// auto (on for grids of up to 100 000 jobs).
        #[arg(long, value_enum, default_value_t = Curves::Auto)]
        curves: Curves,
        /// Print where the wall time went (spec, data, training, writing,
        /// aggregation, plots), also under -q: `-q -v` prints only that.
        #[arg(short, long, visible_alias = "timings")]
        verbose: bool,
    },
    /// Rerun a spec and compare every job, bit for bit, with a results
    /// folder; exit 1 on any difference. Use it to guard a sweep in CI.
    Verify {
        /// The sweep spec (TOML).
        spec: PathBuf,
        /// The results folder to compare with (for example results/grid).
        #[arg(long, value_name = "DIR")]
        against: PathBuf,
        /// Check only K jobs, drawn the same way on every run.
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
        sample: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Combine the shards under DIR/shards/ into DIR's final files; exit 1
    /// and name the shards to rerun if any is missing.
    Merge {
        /// The sweep's output folder.
        dir: PathBuf,
        /// Print nothing but errors.
        #[arg(short, long)]
        quiet: bool,
        /// Refuse grids with more jobs than this.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_JOBS)]
        max_jobs: u64,
    },
    /// Write Slurm batch scripts that run a sweep as a job array of shards
    /// plus a merge job; --submit submits them.
    Slurm(SlurmArgs),
}

#[derive(Args)]
struct SlurmArgs {
    /// The sweep spec (TOML).
    spec: PathBuf,
    /// The number of shards (array tasks).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    shards: u64,
    /// The output folder (default results/NAME/); it must be on storage
    /// that every node sees.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The partition to run in (sbatch --partition).
    #[arg(long)]
    partition: Option<String>,
    /// The time limit of each task (sbatch --time), for example 1:00:00.
    #[arg(long)]
    time: Option<String>,
    /// CPUs per array task; each shard uses that many threads.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    cpus_per_task: u16,
    /// Run at most this many array tasks at once (the %K of --array).
    #[arg(long, value_name = "K")]
    max_parallel: Option<u64>,
    /// Submit the array and the merge job with sbatch and print their ids.
    #[arg(long)]
    submit: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            spec,
            out,
            common,
            quiet,
            fresh,
            dry_run,
            shard,
            shards,
            curves,
            verbose,
        } => {
            let shard = match shards {
                Some(n) => Shard::from_env(n, |k| std::env::var(k).ok())
                    .map(Some)
                    .map_err(|e| UsageError(e).into()),
                None => Ok(shard),
            };
            shard.and_then(|shard| {
                let opts = RunOptions {
                    spec,
                    out,
                    threads: common.jobs.map(usize::from),
                    quiet,
                    fresh,
                    max_jobs: common.max_jobs,
                    shard,
                    curves,
                    verbose,
                };
                if dry_run {
                    run::dry_run(&opts).map(|text| {
                        say!("{text}");
                        0
                    })
                } else {
                    run::run(&opts).map(|report| {
                        let code = report.exit_code();
                        if code == 3 && opts.quiet {
                            // -q keeps errors, and this is one: say it.
                            tell!(
                                "wdsweep: every cell of the grid diverged, so no λ can be \
                                 chosen (exit 3); see {}",
                                report.out.join("summary.md").display()
                            );
                        }
                        code
                    })
                }
            })
        }
        Command::Verify {
            spec,
            against,
            sample,
            common,
        } => {
            let opts = VerifyOptions {
                spec,
                against,
                sample,
                threads: common.jobs.map(usize::from),
                max_jobs: common.max_jobs,
            };
            verify::verify(&opts).map(|report| {
                say!("{}", verify::render(&report, &opts.against).trim_end());
                if report.passed() { 0 } else { 1 }
            })
        }
        Command::Merge {
            dir,
            quiet,
            max_jobs,
        } => run::merge(&dir, quiet, max_jobs).map(|report| report.exit_code()),
        Command::Slurm(a) => {
            let opts = SlurmOptions {
                spec: a.spec,
                shards: a.shards,
                out: a.out,
                partition: a.partition,
                time: a.time,
                cpus_per_task: a.cpus_per_task,
                max_parallel: a.max_parallel,
            };
            slurm::prepare(&opts).and_then(|scripts| {
                if a.submit {
                    let ids = slurm::submit(&scripts)?;
                    say!("submitted the shard array as job {}", ids.array);
                    say!(
                        "submitted the merge job as job {} (runs after the array)",
                        ids.merge
                    );
                } else {
                    say!("{}", scripts.instructions());
                }
                Ok(0)
            })
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            tell!("wdsweep: error: {err:#}");
            let usage = err.downcast_ref::<SpecError>().is_some()
                || err.downcast_ref::<UsageError>().is_some();
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
