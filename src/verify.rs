//! `wdsweep verify`: rerun a spec (or a sample of its jobs) and compare,
//! bit for bit, with the results in a folder.
//!
//! Jobs are matched by key (DESIGN.md §3), so a folder written by code with
//! other numerics — whose keys differ — is reported as such rather than as a
//! pile of numeric differences. Final metrics and, where the folder has
//! them, the per-epoch curves are compared exactly; every difference is
//! listed with its size and the file that holds it. A folder with both
//! `jobs.parquet` and `jobs.csv` has each compared: the CSV is the table
//! people read, review and merge, so an edit to it must not go unnoticed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ndarray_rand::rand::seq::index;
use polars::prelude::DataFrame;

use crate::data::{self, Stream};
use crate::key::NUMERICS_VERSION;
use crate::numfmt::{plural, short};
use crate::spec::Spec;
use crate::store;
use crate::sweep::{self, JobResult, Progress};

/// Options of `wdsweep verify`.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub spec: PathBuf,
    pub against: PathBuf,
    /// Check only this many jobs, drawn without replacement by a fixed
    /// stream, so a CI job checks the same sample every time.
    pub sample: Option<u64>,
    pub threads: Option<usize>,
    pub max_jobs: u64,
}

/// One value that differs.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub job: u64,
    pub lambda: f64,
    pub lr: f64,
    pub seed: u64,
    /// The folder's file that holds the value: `jobs.parquet`, `jobs.csv`
    /// or `curves.parquet`.
    pub file: &'static str,
    /// `status`, `train_loss`, … or `val_loss @ epoch 3`.
    pub column: String,
    pub expected: String,
    pub got: String,
    /// |got − expected|, where both are numbers.
    pub abs_diff: Option<f64>,
}

/// What a verification found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub checked: usize,
    /// Jobs whose key is not in the folder.
    pub missing: Vec<JobResult>,
    pub mismatches: Vec<Mismatch>,
    /// The numerics version recorded in the folder's spec.toml, if any.
    pub folder_numerics: Option<i64>,
    /// The folder's jobs tables that were compared (`jobs.parquet`,
    /// `jobs.csv` or both).
    pub tables: Vec<&'static str>,
    /// Whether per-epoch curves were compared too (the folder had them).
    pub curves_compared: bool,
    /// best.json's `complete`, where the folder has one: false for a run
    /// that was stopped before all its jobs had finished.
    pub folder_complete: Option<bool>,
    /// Keys that a jobs table holds in more than one row: (file, key).
    pub repeated: Vec<(&'static str, String)>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.missing.is_empty() && self.mismatches.is_empty() && self.repeated.is_empty()
    }

    /// Whether the folder says it is a partial run.
    pub fn partial(&self) -> bool {
        self.folder_complete == Some(false)
    }
}

/// The job numbers to check: all of them, or `k` drawn by a fixed stream.
pub fn sample_jobs(total: u64, k: Option<u64>) -> Vec<u64> {
    match k {
        Some(k) if k < total => {
            let mut rng = data::rng(0x5eed, Stream::Shuffle);
            let mut jobs: Vec<u64> = index::sample(&mut rng, total as usize, k as usize)
                .into_iter()
                .map(|j| j as u64)
                .collect();
            jobs.sort_unstable();
            jobs
        }
        _ => (0..total).collect(),
    }
}

/// Reruns the spec's jobs and compares them with `opts.against`.
pub fn verify(opts: &VerifyOptions) -> Result<VerifyReport> {
    let spec = Spec::from_file(&opts.spec, opts.max_jobs)?;
    let dir = &opts.against;
    let tables = read_jobs(dir)?;
    let curves_path = dir.join("curves.parquet");
    let curves = if curves_path.exists() {
        Some(store::read_parquet(&curves_path)?)
    } else {
        None
    };

    let jobs = sample_jobs(spec.grid.len(), opts.sample);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    // Without stored curves only the final metrics can be compared, and
    // the jobs need not record theirs.
    let results =
        pool.install(|| sweep::run_jobs(&spec, &jobs, &Progress::new(0, true), curves.is_some()));
    let mut report = compare(&tables, curves.as_ref(), &results)?;
    report.folder_numerics = std::fs::read_to_string(dir.join("spec.toml"))
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
        .and_then(|t| t.get("provenance")?.get("numerics_version")?.as_integer());
    report.folder_complete = std::fs::read_to_string(dir.join("best.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("complete")?.as_bool());
    Ok(report)
}

/// One of a folder's jobs tables and the file it was read from.
pub struct JobsTable {
    pub file: &'static str,
    pub frame: DataFrame,
}

/// A folder's jobs tables: `jobs.parquet` and `jobs.csv`, each that exists.
fn read_jobs(dir: &Path) -> Result<Vec<JobsTable>> {
    type Reader = fn(&Path) -> Result<DataFrame>;
    let readers: [(&'static str, Reader); 2] = [
        ("jobs.parquet", store::read_parquet),
        ("jobs.csv", store::read_jobs_csv),
    ];
    let mut tables = Vec::new();
    for (file, read) in readers {
        let path = dir.join(file);
        if path.exists() {
            tables.push(JobsTable {
                file,
                frame: read(&path)?,
            });
        }
    }
    if tables.is_empty() {
        return Err(crate::run::UsageError(format!(
            "{} holds no jobs.parquet or jobs.csv; point --against at a results folder",
            dir.display()
        ))
        .into());
    }
    Ok(tables)
}

fn f64_column(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let ca = df
        .column(name)
        .with_context(|| format!("no column {name}"))?
        .f64()?;
    Ok((0..ca.len()).map(|i| ca.get(i)).collect())
}

fn u64_column(df: &DataFrame, name: &str) -> Result<Vec<Option<u64>>> {
    let column = df
        .column(name)
        .with_context(|| format!("no column {name}"))?;
    let column = column.cast(&polars::prelude::DataType::UInt64)?;
    let ca = column.u64()?;
    Ok((0..ca.len()).map(|i| ca.get(i)).collect())
}

fn str_column(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let ca = df
        .column(name)
        .with_context(|| format!("no column {name}"))?
        .str()?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).unwrap_or("").to_string())
        .collect())
}

/// A stored epoch's (train_loss, val_loss).
type EpochPair = (Option<f64>, Option<f64>);

/// The float columns of a jobs table that are compared, in this order.
const FLOAT_COLUMNS: [&str; 5] = ["lambda", "lr", "train_loss", "val_loss", "l2_penalty"];

/// A jobs table's columns, with its rows found by key.
struct Expected {
    file: &'static str,
    row_of: HashMap<String, usize>,
    /// Keys found in more than one row, in the order met.
    repeated: Vec<String>,
    job: Vec<Option<u64>>,
    seed: Vec<Option<u64>>,
    status: Vec<String>,
    floats: Vec<Vec<Option<f64>>>,
}

impl Expected {
    fn new(table: &JobsTable) -> Result<Expected> {
        let df = &table.frame;
        let mut row_of = HashMap::new();
        let mut repeated = Vec::new();
        for (i, k) in str_column(df, "key")?.into_iter().enumerate() {
            match row_of.entry(k) {
                std::collections::hash_map::Entry::Occupied(seen) => {
                    repeated.push(seen.key().clone());
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        Ok(Expected {
            file: table.file,
            row_of,
            repeated,
            job: u64_column(df, "job")?,
            seed: u64_column(df, "seed")?,
            status: str_column(df, "status")?,
            floats: FLOAT_COLUMNS
                .iter()
                .map(|c| f64_column(df, c))
                .collect::<Result<_>>()?,
        })
    }
}

/// A difference found in job `r`, in `file`.
fn mismatch(
    r: &JobResult,
    file: &'static str,
    column: String,
    expected: String,
    got: String,
    abs_diff: Option<f64>,
) -> Mismatch {
    Mismatch {
        job: r.index.job,
        lambda: r.lambda,
        lr: r.lr,
        seed: r.seed,
        file,
        column,
        expected,
        got,
        abs_diff,
    }
}

/// The difference between two floats, unless they have the same bits.
fn float_mismatch(
    r: &JobResult,
    file: &'static str,
    column: String,
    expected: Option<f64>,
    got: Option<f64>,
) -> Option<Mismatch> {
    if expected.map(f64::to_bits) == got.map(f64::to_bits) {
        return None;
    }
    let abs_diff = expected.zip(got).map(|(e, g)| (g - e).abs());
    let show = |v: Option<f64>| v.map_or("(empty)".to_string(), short);
    Some(mismatch(
        r,
        file,
        column,
        show(expected),
        show(got),
        abs_diff,
    ))
}

/// Compares fresh results with a folder's jobs tables (each one in full)
/// and its curves, if given.
///
/// A job is missing when no table has its key; a job that one table has and
/// another lacks is a difference in the table that lacks it.
pub fn compare(
    tables: &[JobsTable],
    curves: Option<&DataFrame>,
    results: &[JobResult],
) -> Result<VerifyReport> {
    let expected: Vec<Expected> = tables.iter().map(Expected::new).collect::<Result<_>>()?;

    // The folder's curves by its own job numbers.
    let mut curve_of: HashMap<u64, Vec<EpochPair>> = HashMap::new();
    if let Some(c) = curves {
        let (job, train, val) = (
            u64_column(c, "job")?,
            f64_column(c, "train_loss")?,
            f64_column(c, "val_loss")?,
        );
        for i in 0..c.height() {
            curve_of
                .entry(job[i].unwrap_or(u64::MAX))
                .or_default()
                .push((train[i], val[i]));
        }
    }

    let mut report = VerifyReport {
        tables: tables.iter().map(|t| t.file).collect(),
        curves_compared: curves.is_some(),
        repeated: expected
            .iter()
            .flat_map(|t| t.repeated.iter().map(|k| (t.file, k.clone())))
            .collect(),
        ..VerifyReport::default()
    };
    for r in results {
        let rows: Vec<Option<usize>> = expected
            .iter()
            .map(|t| t.row_of.get(&r.key).copied())
            .collect();
        if rows.iter().all(Option::is_none) {
            report.missing.push(r.clone());
            continue;
        }
        report.checked += 1;
        let o = &r.outcome;
        let found = &mut report.mismatches;
        for (t, row) in expected.iter().zip(&rows) {
            let Some(row) = *row else {
                found.push(mismatch(
                    r,
                    t.file,
                    "status".into(),
                    "(no row)".into(),
                    o.status.as_str().into(),
                    None,
                ));
                continue;
            };
            let got = [
                Some(r.lambda),
                Some(r.lr),
                o.train_loss,
                o.val_loss,
                o.l2_penalty,
            ];
            for ((name, values), got) in FLOAT_COLUMNS.iter().zip(&t.floats).zip(got) {
                found.extend(float_mismatch(
                    r,
                    t.file,
                    name.to_string(),
                    values[row],
                    got,
                ));
            }
            if t.seed[row] != Some(r.seed) {
                found.push(mismatch(
                    r,
                    t.file,
                    "seed".into(),
                    t.seed[row].map_or("(empty)".into(), |s| s.to_string()),
                    r.seed.to_string(),
                    None,
                ));
            }
            if t.status[row] != o.status.as_str() {
                found.push(mismatch(
                    r,
                    t.file,
                    "status".into(),
                    t.status[row].clone(),
                    o.status.as_str().into(),
                    None,
                ));
            }
        }
        if curves.is_some() {
            // By the job number of the first table that has the job.
            let job = expected
                .iter()
                .zip(&rows)
                .find_map(|(t, row)| row.map(|i| t.job[i]))
                .flatten();
            let theirs = job
                .and_then(|j| curve_of.get(&j))
                .cloned()
                .unwrap_or_default();
            let epochs = theirs.len().max(o.curve.len());
            for e in 0..epochs {
                let (t, v) = theirs.get(e).copied().unwrap_or((None, None));
                let ours = o.curve.get(e);
                let file = "curves.parquet";
                found.extend(float_mismatch(
                    r,
                    file,
                    format!("train_loss @ epoch {e}"),
                    t,
                    ours.and_then(|x| x.train),
                ));
                found.extend(float_mismatch(
                    r,
                    file,
                    format!("val_loss @ epoch {e}"),
                    v,
                    ours.and_then(|x| x.val),
                ));
            }
        }
    }
    Ok(report)
}

/// The report as text for the terminal.
pub fn render(report: &VerifyReport, against: &Path) -> String {
    const SHOWN: usize = 20;
    let mut out = String::new();
    let dir = against.display();
    if report.partial() {
        let _ = writeln!(
            out,
            "{dir} is a partial run: its best.json says \"complete\": false (not every job of \
             its sweep had finished when it was written)."
        );
    }
    if !report.missing.is_empty() {
        let missing = report.missing.len();
        let total = (missing + report.checked) as u64;
        let (is, their) = if missing == 1 {
            ("is", "its")
        } else {
            ("are", "their")
        };
        let _ = writeln!(
            out,
            "{missing} of {total} {} {is} not in {dir} (no result with {their} key).",
            plural(total, "job")
        );
        match report.folder_numerics {
            Some(v) if v != i64::from(NUMERICS_VERSION) => {
                let _ = writeln!(
                    out,
                    "  {dir} was written with numerics version {v}; this build is version \
                     {NUMERICS_VERSION}, so every key differs. Regenerate the folder if the change \
                     of numerics is intended."
                );
            }
            _ => {
                for r in report.missing.iter().take(5) {
                    let _ = writeln!(
                        out,
                        "  job {} (λ = {}, lr = {}, seed {})",
                        r.index.job,
                        short(r.lambda),
                        short(r.lr),
                        r.seed
                    );
                }
                if report.partial() {
                    let _ = writeln!(
                        out,
                        "  They were never run there: finish the run by rerunning the command \
                         that wrote {dir} (its finished jobs are kept), then verify again."
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "  Is {dir} a run of this spec (same data and training settings)?"
                    );
                }
            }
        }
    }
    if !report.mismatches.is_empty() {
        let jobs: std::collections::BTreeSet<u64> =
            report.mismatches.iter().map(|m| m.job).collect();
        let _ = writeln!(
            out,
            "{} {} in {} of {} {} checked:",
            report.mismatches.len(),
            if report.mismatches.len() == 1 {
                "value differs"
            } else {
                "values differ"
            },
            jobs.len(),
            report.checked,
            plural(report.checked as u64, "job")
        );
        let _ = writeln!(
            out,
            "  {:>6}  {:>8}  {:>7}  {:>5}  {:<14}  {:<22}  {:>22}  {:>22}  {:>9}",
            "job", "λ", "lr", "seed", "file", "column", "expected", "got", "|diff|"
        );
        for m in report.mismatches.iter().take(SHOWN) {
            let _ = writeln!(
                out,
                "  {:>6}  {:>8}  {:>7}  {:>5}  {:<14}  {:<22}  {:>22}  {:>22}  {:>9}",
                m.job,
                short(m.lambda),
                short(m.lr),
                m.seed,
                m.file,
                m.column,
                m.expected,
                m.got,
                m.abs_diff.map_or("—".to_string(), |d| format!("{d:.2e}"))
            );
        }
        if report.mismatches.len() > SHOWN {
            let _ = writeln!(out, "  … and {} more", report.mismatches.len() - SHOWN);
        }
        // Only where some difference is between two numbers.
        let worst = report
            .mismatches
            .iter()
            .filter_map(|m| m.abs_diff)
            .reduce(f64::max);
        if let Some(worst) = worst {
            let _ = writeln!(out, "  largest difference: {worst:.3e}");
        }
    }
    for file in ["jobs.parquet", "jobs.csv"] {
        let keys: Vec<&str> = report
            .repeated
            .iter()
            .filter(|(f, _)| *f == file)
            .map(|(_, k)| k.as_str())
            .collect();
        if let Some(first) = keys.first() {
            let _ = writeln!(
                out,
                "{dir}/{file} holds {} {} in more than one row (the first: {first}); a jobs \
                 table has one row per job.",
                keys.len(),
                plural(keys.len() as u64, "key")
            );
        }
    }
    if report.passed() {
        let tables = report.tables.join(" and ");
        let what = if report.curves_compared {
            format!("final metrics in {tables}, and every epoch's losses in curves.parquet")
        } else {
            format!(
                "final metrics in {tables} (the folder has no curves.parquet, so the per-epoch \
                 losses were not compared; a run keeps them with --curves on)"
            )
        };
        let partial = if report.partial() {
            format!(" {dir} is a partial run: the jobs it has not run yet are not checked.")
        } else {
            String::new()
        };
        let checked = report.checked as u64;
        let _ = writeln!(
            out,
            "verified: {checked} {} {} {dir} bit for bit: {what}.{partial}",
            plural(checked, "job"),
            if checked == 1 { "matches" } else { "match" }
        );
    } else if report.partial() {
        let _ = writeln!(out, "verification FAILED against {dir}, a partial run.");
    } else {
        let _ = writeln!(out, "verification FAILED against {dir}.");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::JobIndex;
    use crate::train::{Outcome, Status};

    fn job(n: u64) -> JobResult {
        JobResult {
            index: JobIndex {
                job: n,
                lambda: 0,
                lr: 0,
                seed: n as usize,
            },
            key: format!("key{n}"),
            lambda: 0.3,
            lr: 0.01,
            seed: n,
            outcome: Outcome {
                status: Status::Ok,
                train_loss: Some(1.0),
                val_loss: Some(2.0),
                l2_penalty: Some(3.0),
                curve: Vec::new(),
            },
        }
    }

    fn report(checked: usize) -> VerifyReport {
        VerifyReport {
            checked,
            tables: vec!["jobs.csv"],
            ..VerifyReport::default()
        }
    }

    #[test]
    fn verify_counts_one_job_in_the_singular() {
        let dir = Path::new("results/x");
        let text = render(&report(1), dir);
        assert!(text.contains("verified: 1 job matches results/x"), "{text}");
        let text = render(&report(2), dir);
        assert!(text.contains("verified: 2 jobs match results/x"), "{text}");

        let mut one_missing = report(0);
        one_missing.missing.push(job(0));
        let text = render(&one_missing, dir);
        assert!(
            text.contains("1 of 1 job is not in results/x (no result with its key)"),
            "{text}"
        );
        let mut two_missing = report(1);
        two_missing.missing.extend([job(0), job(2)]);
        let text = render(&two_missing, dir);
        assert!(
            text.contains("2 of 3 jobs are not in results/x (no result with their key)"),
            "{text}"
        );

        let mut differs = report(1);
        differs.mismatches.push(mismatch(
            &job(1),
            "jobs.csv",
            "val_loss".into(),
            "2".into(),
            "2.5".into(),
            Some(0.5),
        ));
        let text = render(&differs, dir);
        assert!(
            text.contains("1 value differs in 1 of 1 job checked:"),
            "{text}"
        );
    }

    #[test]
    fn verify_finds_an_edit_in_one_table_and_names_that_table() {
        use polars::prelude::{Column, DataFrame};
        let frame = |val_loss: f64| {
            DataFrame::new_infer_height(vec![
                Column::new("job".into(), [0u64]),
                Column::new("key".into(), ["key0"]),
                Column::new("lambda".into(), [0.3]),
                Column::new("lr".into(), [0.01]),
                Column::new("seed".into(), [0u64]),
                Column::new("status".into(), ["ok"]),
                Column::new("train_loss".into(), [1.0]),
                Column::new("val_loss".into(), [val_loss]),
                Column::new("l2_penalty".into(), [3.0]),
            ])
            .unwrap()
        };
        let tables = [
            JobsTable {
                file: "jobs.parquet",
                frame: frame(2.0),
            },
            JobsTable {
                file: "jobs.csv",
                frame: frame(2.5),
            },
        ];
        let found = compare(&tables, None, &[job(0)]).unwrap();
        assert_eq!(found.checked, 1);
        let [m] = found.mismatches.as_slice() else {
            panic!("{found:?}");
        };
        assert_eq!((m.file, m.column.as_str()), ("jobs.csv", "val_loss"));
        assert_eq!((m.expected.as_str(), m.got.as_str()), ("2.5", "2"));
    }
}
