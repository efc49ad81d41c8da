//! wdsweep: weight-decay (L2) hyperparameter sweeps.
//!
//! A sweep spec (TOML) names grids of λ, learning rate and seed plus the
//! data and training settings. Each job trains the book's linear model
//! (*Dive into Deep Learning*, §3.7) by minibatch SGD, on the book's
//! synthetic data or on a user's CSV or Parquet file ([`table`]); the jobs
//! run in parallel and their final validation losses are aggregated over
//! seeds to recommend a λ. The modules follow the pipeline:
//!
//! spec → grid → train (via [`sweep`]) → store → summary → plot / report.

pub mod data;
pub mod grid;
pub mod journal;
pub mod kernel;
pub mod key;
pub mod linalg;
pub mod lock;
pub mod numfmt;
pub mod output;
pub mod plot;
pub mod report;
pub mod run;
pub mod shard;
pub mod signals;
pub mod slurm;
pub mod spec;
pub mod store;
pub mod summary;
pub mod sweep;
pub mod table;
pub mod train;
pub mod verify;
