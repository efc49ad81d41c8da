//! The `wdsweep` command line. Parsing only: the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use wdsweep::run::{self, DEFAULT_MAX_JOBS, RunOptions, UsageError};
use wdsweep::spec::SpecError;
use wdsweep::verify::{self, VerifyOptions};

/// Weight-decay (L2) sweeps: train every (λ, lr, seed) of a grid in
/// parallel and find the λ with the lowest validation loss.
#[derive(Parser)]
#[command(name = "wdsweep", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        /// Worker threads (default: one per core).
        #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// Print nothing but errors.
        #[arg(short, long)]
        quiet: bool,
        /// Remove the results already in the output folder first.
        #[arg(long)]
        fresh: bool,
        /// Refuse grids with more jobs than this.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_JOBS)]
        max_jobs: u64,
        /// Print the expanded grid, the job count and the output folder;
        /// run nothing.
        #[arg(long)]
        dry_run: bool,
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
        #[arg(long, value_name = "K")]
        sample: Option<u64>,
        /// Worker threads (default: one per core).
        #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// Refuse grids with more jobs than this.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_JOBS)]
        max_jobs: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            spec,
            out,
            jobs,
            quiet,
            fresh,
            max_jobs,
            dry_run,
        } => {
            let opts = RunOptions {
                spec,
                out,
                threads: jobs.map(usize::from),
                quiet,
                fresh,
                max_jobs,
            };
            if dry_run {
                run::dry_run(&opts).map(|text| {
                    println!("{text}");
                    0
                })
            } else {
                run::run(&opts).map(|report| report.exit_code())
            }
        }
        Command::Verify {
            spec,
            against,
            sample,
            jobs,
            max_jobs,
        } => {
            let opts = VerifyOptions {
                spec,
                against,
                sample,
                threads: jobs.map(usize::from),
                max_jobs,
            };
            verify::verify(&opts).map(|report| {
                print!("{}", verify::render(&report, &opts.against));
                if report.passed() { 0 } else { 1 }
            })
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("wdsweep: error: {err:#}");
            let usage = err.downcast_ref::<SpecError>().is_some()
                || err.downcast_ref::<UsageError>().is_some();
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
