//! Aggregation over seeds and the choice of λ (DESIGN.md §2).
//!
//! Statistics use the `ok` jobs of each (λ, lr) cell only: `n_ok` of them,
//! the sample standard deviation (divisor n_ok − 1) and SEM = std/√n_ok,
//! both null when n_ok < 2. A cell with any diverged job is never chosen;
//! among the rest the lowest mean validation loss wins, a tie going to the
//! larger λ (the simpler model) and then to the smaller lr.

use anyhow::Result;
use polars::prelude::*;

/// The columns of `summary.csv`, in order.
pub const SUMMARY_COLUMNS: [&str; 10] = [
    "lambda",
    "lr",
    "n",
    "n_ok",
    "n_diverged",
    "val_loss_mean",
    "val_loss_std",
    "val_loss_sem",
    "train_loss_mean",
    "l2_penalty_mean",
];

/// One row of the summary, read back from the polars frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub lambda: f64,
    pub lr: f64,
    pub n: u64,
    pub n_ok: u64,
    pub n_diverged: u64,
    pub val_loss_mean: Option<f64>,
    pub val_loss_std: Option<f64>,
    pub val_loss_sem: Option<f64>,
    pub train_loss_mean: Option<f64>,
    pub l2_penalty_mean: Option<f64>,
}

/// The chosen cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub lambda: f64,
    pub lr: f64,
    pub val_loss_mean: f64,
    pub val_loss_sem: Option<f64>,
    pub n_ok: u64,
}

/// Groups a jobs frame (the columns of `jobs.parquet`) by (λ, lr), sorted by
/// λ then lr.
pub fn summarize(jobs: &DataFrame) -> Result<DataFrame> {
    let ok = || col("status").eq(lit("ok"));
    let mean_ok = |name: &str| col(name).filter(ok()).mean().alias(format!("{name}_mean"));
    let enough = || col("n_ok").gt_eq(lit(2u64));
    let df = jobs
        .clone()
        .lazy()
        .group_by([col("lambda"), col("lr")])
        .agg([
            len().cast(DataType::UInt64).alias("n"),
            ok().sum().cast(DataType::UInt64).alias("n_ok"),
            ok().not().sum().cast(DataType::UInt64).alias("n_diverged"),
            mean_ok("val_loss"),
            col("val_loss").filter(ok()).std(1).alias("val_loss_std"),
            mean_ok("train_loss"),
            mean_ok("l2_penalty"),
        ])
        .with_column(
            when(enough())
                .then(col("val_loss_std"))
                .otherwise(lit(NULL))
                .alias("val_loss_std"),
        )
        .with_column(
            when(enough())
                .then(col("val_loss_std") / col("n_ok").cast(DataType::Float64).sqrt())
                .otherwise(lit(NULL))
                .alias("val_loss_sem"),
        )
        // A statistic that overflowed (values near f64::MAX) is absent,
        // never written as inf.
        .with_columns(
            SUMMARY_COLUMNS[5..]
                .iter()
                .map(|&name| {
                    when(col(name).is_finite())
                        .then(col(name))
                        .otherwise(lit(NULL))
                        .alias(name)
                })
                .collect::<Vec<_>>(),
        )
        .select(SUMMARY_COLUMNS.map(col))
        .sort(["lambda", "lr"], SortMultipleOptions::default())
        .collect()?;
    Ok(df)
}

/// The summary frame as rows.
pub fn cells(summary: &DataFrame) -> Result<Vec<Cell>> {
    let f = |name: &str| -> Result<Vec<Option<f64>>> {
        let ca = summary.column(name)?.f64()?;
        Ok((0..ca.len()).map(|i| ca.get(i)).collect())
    };
    let u = |name: &str| -> Result<Vec<u64>> {
        let ca = summary.column(name)?.u64()?;
        Ok((0..ca.len()).map(|i| ca.get(i).unwrap_or(0)).collect())
    };
    let (lambda, lr) = (f("lambda")?, f("lr")?);
    let (n, n_ok, n_div) = (u("n")?, u("n_ok")?, u("n_diverged")?);
    let (mean, std, sem) = (f("val_loss_mean")?, f("val_loss_std")?, f("val_loss_sem")?);
    let (train, l2) = (f("train_loss_mean")?, f("l2_penalty_mean")?);
    Ok((0..summary.height())
        .map(|i| Cell {
            lambda: lambda[i].unwrap_or(f64::NAN),
            lr: lr[i].unwrap_or(f64::NAN),
            n: n[i],
            n_ok: n_ok[i],
            n_diverged: n_div[i],
            val_loss_mean: mean[i],
            val_loss_std: std[i],
            val_loss_sem: sem[i],
            train_loss_mean: train[i],
            l2_penalty_mean: l2[i],
        })
        .collect())
}

/// The cell to recommend, or `None` when every cell has diverged jobs.
pub fn choose(cells: &[Cell]) -> Option<Choice> {
    cells
        .iter()
        .filter(|c| c.n_diverged == 0)
        .filter_map(|c| c.val_loss_mean.map(|m| (m, c)))
        .min_by(|(ma, a), (mb, b)| {
            ma.total_cmp(mb)
                .then(b.lambda.total_cmp(&a.lambda))
                .then(a.lr.total_cmp(&b.lr))
        })
        .map(|(m, c)| Choice {
            lambda: c.lambda,
            lr: c.lr,
            val_loss_mean: m,
            val_loss_sem: c.val_loss_sem,
            n_ok: c.n_ok,
        })
}

/// The ok jobs of one lr and the given λ's: those whose curves the
/// loss-curve figure averages.
fn plotted(jobs: &DataFrame, lr: f64, lambdas: &[f64]) -> LazyFrame {
    let wanted = lambdas
        .iter()
        .fold(lit(false), |any, &l| any.or(col("lambda").eq(lit(l))));
    let ok = col("status").eq(lit("ok"));
    jobs.clone()
        .lazy()
        .filter(ok.and(col("lr").eq(lit(lr))).and(wanted))
}

/// The job numbers of [`plotted`] jobs.
pub fn plotted_jobs(jobs: &DataFrame, lr: f64, lambdas: &[f64]) -> Result<Vec<u64>> {
    let picked = plotted(jobs, lr, lambdas).select([col("job")]).collect()?;
    let ca = picked.column("job")?.u64()?;
    Ok((0..ca.len()).filter_map(|i| ca.get(i)).collect())
}

/// Mean training and validation loss per epoch over the [`plotted`] jobs:
/// columns lambda, epoch, train_loss, val_loss, sorted.
pub fn mean_curves(
    jobs: &DataFrame,
    curves: &DataFrame,
    lr: f64,
    lambdas: &[f64],
) -> Result<DataFrame> {
    let chosen = plotted(jobs, lr, lambdas).select([col("job"), col("lambda")]);
    let df = curves
        .clone()
        .lazy()
        .join(
            chosen,
            [col("job")],
            [col("job")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col("lambda"), col("epoch")])
        .agg([col("train_loss").mean(), col("val_loss").mean()])
        .sort(["lambda", "epoch"], SortMultipleOptions::default())
        .collect()?;
    Ok(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(lambda: f64, lr: f64, mean: Option<f64>, n_diverged: u64) -> Cell {
        Cell {
            lambda,
            lr,
            n: 3,
            n_ok: 3 - n_diverged,
            n_diverged,
            val_loss_mean: mean,
            val_loss_std: None,
            val_loss_sem: None,
            train_loss_mean: None,
            l2_penalty_mean: None,
        }
    }

    #[test]
    fn the_lowest_mean_wins_and_ties_go_to_the_larger_lambda() {
        let cells = [
            cell(0.0, 0.01, Some(0.02), 0),
            cell(1.0, 0.01, Some(0.01), 0),
            cell(3.0, 0.01, Some(0.01), 0),
            cell(3.0, 0.03, Some(0.01), 0),
        ];
        let c = choose(&cells).unwrap();
        assert_eq!((c.lambda, c.lr), (3.0, 0.01));
    }

    #[test]
    fn a_cell_with_a_diverged_job_is_never_chosen() {
        let cells = [
            cell(0.0, 0.01, Some(0.02), 0),
            cell(1.0, 10.0, Some(0.001), 1),
        ];
        assert_eq!(choose(&cells).unwrap().lambda, 0.0);
        assert_eq!(choose(&[cell(1.0, 10.0, None, 3)]), None);
    }

    fn jobs(status: &[&str], val: &[Option<f64>]) -> DataFrame {
        let n = status.len();
        DataFrame::new_infer_height(vec![
            Column::new("lambda".into(), vec![1.0; n]),
            Column::new("lr".into(), vec![0.1; n]),
            Column::new("status".into(), status.to_vec()),
            Column::new("train_loss".into(), val.to_vec()),
            Column::new("val_loss".into(), val.to_vec()),
            Column::new("l2_penalty".into(), val.to_vec()),
        ])
        .unwrap()
    }

    #[test]
    fn one_seed_has_no_spread() {
        let cells = cells(&summarize(&jobs(&["ok"], &[Some(2.0)])).unwrap()).unwrap();
        assert_eq!(cells[0].val_loss_mean, Some(2.0));
        assert_eq!((cells[0].val_loss_std, cells[0].val_loss_sem), (None, None));
    }

    #[test]
    fn diverged_jobs_are_counted_and_left_out() {
        let frame = jobs(
            &["ok", "diverged", "ok", "ok"],
            &[Some(1.0), None, Some(2.0), Some(3.0)],
        );
        let c = &cells(&summarize(&frame).unwrap()).unwrap()[0];
        assert_eq!((c.n, c.n_ok, c.n_diverged), (4, 3, 1));
        assert_eq!(c.val_loss_mean, Some(2.0));
        assert_eq!(c.val_loss_std, Some(1.0));
        assert!((c.val_loss_sem.unwrap() - 1.0 / 3f64.sqrt()).abs() < 1e-15);
    }
}
