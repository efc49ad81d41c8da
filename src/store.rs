//! Result files on disk.
//!
//! Tables go through polars (Parquet, CSV); every file is written to a
//! temporary name in the same folder, flushed, and renamed into place, so a
//! reader never sees half a file and an interrupted write leaves the old file
//! intact (DESIGN.md §5).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use std::sync::Arc;

use polars::prelude::{Column, DataFrame, DataType, Field, Schema};
use polars_io::prelude::{
    CsvReadOptions, CsvWriter, ParquetReader, ParquetWriter, SerReader, SerWriter,
};

use crate::sweep::JobResult;

/// The columns of `jobs.parquet` and `jobs.csv`, in order.
pub const JOB_COLUMNS: [&str; 9] = [
    "job",
    "key",
    "lambda",
    "lr",
    "seed",
    "status",
    "train_loss",
    "val_loss",
    "l2_penalty",
];

/// Writes `path` atomically: `fill` writes the content to a temporary file
/// beside it, which is synced and renamed over `path`.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&File>) -> Result<()>,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        {
            let mut w = BufWriter::new(&file);
            fill(&mut w)?;
            w.flush()?;
        }
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Writes text atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |w| Ok(w.write_all(text.as_bytes())?))
}

/// One row per job, in job order.
pub fn jobs_frame(results: &[JobResult]) -> Result<DataFrame> {
    let col_f64 = |name: &str, f: &dyn Fn(&JobResult) -> Option<f64>| {
        Column::new(name.into(), results.iter().map(f).collect::<Vec<_>>())
    };
    let df = DataFrame::new_infer_height(vec![
        Column::new(
            "job".into(),
            results.iter().map(|r| r.index.job).collect::<Vec<u64>>(),
        ),
        Column::new(
            "key".into(),
            results.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ),
        col_f64("lambda", &|r| Some(r.lambda)),
        col_f64("lr", &|r| Some(r.lr)),
        Column::new(
            "seed".into(),
            results.iter().map(|r| r.seed).collect::<Vec<u64>>(),
        ),
        Column::new(
            "status".into(),
            results
                .iter()
                .map(|r| r.outcome.status.as_str())
                .collect::<Vec<_>>(),
        ),
        col_f64("train_loss", &|r| r.outcome.train_loss),
        col_f64("val_loss", &|r| r.outcome.val_loss),
        col_f64("l2_penalty", &|r| r.outcome.l2_penalty),
    ])?;
    Ok(df)
}

/// One row per job and epoch, epoch 0 (the initial weights) first.
pub fn curves_frame(results: &[JobResult]) -> Result<DataFrame> {
    let rows: usize = results.iter().map(|r| r.outcome.curve.len()).sum();
    let mut job = Vec::with_capacity(rows);
    let mut epoch = Vec::with_capacity(rows);
    let mut train = Vec::with_capacity(rows);
    let mut val = Vec::with_capacity(rows);
    for r in results {
        for (e, loss) in r.outcome.curve.iter().enumerate() {
            job.push(r.index.job);
            epoch.push(e as u32);
            train.push(loss.train);
            val.push(loss.val);
        }
    }
    Ok(DataFrame::new_infer_height(vec![
        Column::new("job".into(), job),
        Column::new("epoch".into(), epoch),
        Column::new("train_loss".into(), train),
        Column::new("val_loss".into(), val),
    ])?)
}

pub fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    write_atomic(path, |w| {
        ParquetWriter::new(w).finish(df)?;
        Ok(())
    })
}

pub fn write_csv(path: &Path, df: &mut DataFrame) -> Result<()> {
    write_atomic(path, |w| {
        CsvWriter::new(w).include_header(true).finish(df)?;
        Ok(())
    })
}

pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a `jobs.csv` with its column types fixed (a key of only digits
/// must stay text, and a column of empty cells must stay a float column).
pub fn read_jobs_csv(path: &Path) -> Result<DataFrame> {
    let schema: Schema = JOB_COLUMNS
        .iter()
        .map(|&name| {
            let dtype = match name {
                "job" | "seed" => DataType::UInt64,
                "key" | "status" => DataType::String,
                _ => DataType::Float64,
            };
            Field::new(name.into(), dtype)
        })
        .collect();
    CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .with_context(|| format!("cannot read {}", path.display()))
}
