//! The human- and machine-readable reports of a sweep: `summary.md`,
//! `best.json`, `spec.toml` and the table printed on the terminal.
//!
//! Every number goes through [`crate::numfmt`], so what is printed reads back
//! to the value that was computed, and absent values (a single seed's
//! spread, a diverged cell's mean) are empty, never `NaN`.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::grid::SeedAxis;
use crate::key::{NUMERICS_VERSION, experiment_hash};
use crate::numfmt::{short, short_opt, sig};
use crate::spec::{DataSettings, DataSource, Format, Spec, Split, TrainSettings};
use crate::summary::{Cell, Choice};

/// The tool's version, as recorded in result files.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Serialize)]
struct SpecAsRun<'a> {
    name: &'a str,
    data: DataAsRun<'a>,
    train: &'a TrainSettings,
    grid: GridAsRun<'a>,
    provenance: Provenance,
}

#[derive(Serialize)]
#[serde(untagged)]
enum DataAsRun<'a> {
    Book(&'a DataSettings),
    Table(TableAsRun<'a>),
}

#[derive(Serialize)]
struct TableAsRun<'a> {
    path: String,
    format: Format,
    target: &'a str,
    features: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    val_fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    train_rows: Option<u64>,
    standardize: bool,
}

#[derive(Serialize)]
struct GridAsRun<'a> {
    lambda: &'a [f64],
    lr: &'a [f64],
    seed: SeedsAsRun<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SeedsAsRun<'a> {
    List(&'a [u64]),
    Range { start: u64, count: u64 },
}

#[derive(Serialize)]
struct Provenance {
    tool_version: &'static str,
    numerics_version: u32,
    experiment: String,
    /// `spec::DATA_HASH_KEY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    data_file_blake3: Option<String>,
}

/// `file` as a `spec.toml` in `folder` should name it: relative to the
/// folder when the two share a folder below the root, so that a results
/// folder committed with its data keeps working wherever the repository is
/// cloned; absolute otherwise, and whenever either cannot be resolved.
pub fn path_from(folder: &Path, file: &Path) -> String {
    let absolute = || {
        std::path::absolute(file)
            .unwrap_or_else(|_| file.to_path_buf())
            .display()
            .to_string()
    };
    let (Ok(folder), Ok(target)) = (folder.canonicalize(), file.canonicalize()) else {
        return absolute();
    };
    let (from, to): (Vec<Component>, Vec<Component>) =
        (folder.components().collect(), target.components().collect());
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    // Only the root in common: "../../.." up to it says less than the
    // absolute path.
    if common <= 1 {
        return target.display().to_string();
    }
    let mut relative = PathBuf::new();
    for _ in common..from.len() {
        relative.push("..");
    }
    relative.extend(&to[common..]);
    relative.display().to_string()
}

/// `spec.toml` for the folder `folder`: the spec with every default filled
/// in and the grid expanded, plus the versions that produced the results
/// and a data file's hash. It is itself a valid spec: running it repeats
/// the sweep (a data file's path is written so that it resolves from
/// `folder`).
pub fn spec_as_run(spec: &Spec, folder: &Path) -> String {
    let seed = match &spec.grid.seeds {
        SeedAxis::List(v) => SeedsAsRun::List(v),
        SeedAxis::Range { start, count } => SeedsAsRun::Range {
            start: *start,
            count: *count,
        },
    };
    let data = match &spec.data {
        DataSource::Book(d) => DataAsRun::Book(d),
        DataSource::Table(t) => DataAsRun::Table(TableAsRun {
            path: path_from(folder, &t.path),
            format: t.format,
            target: &t.target,
            features: &t.features,
            val_fraction: match t.split {
                Split::ValFraction(f) => Some(f),
                Split::TrainRows(_) => None,
            },
            train_rows: match t.split {
                Split::ValFraction(_) => None,
                Split::TrainRows(n) => Some(n as u64),
            },
            standardize: t.standardize,
        }),
    };
    let doc = SpecAsRun {
        name: &spec.name,
        data,
        train: &spec.train,
        grid: GridAsRun {
            lambda: &spec.grid.lambdas,
            lr: &spec.grid.lrs,
            seed,
        },
        provenance: Provenance {
            tool_version: TOOL_VERSION,
            numerics_version: NUMERICS_VERSION,
            experiment: experiment_hash(&spec.data, &spec.train),
            data_file_blake3: spec.data.table().map(|t| t.hash.to_hex().to_string()),
        },
    };
    let body = toml::to_string(&doc).expect("the spec serialises to TOML");
    format!(
        "# The sweep as run by wdsweep {TOOL_VERSION}, every default filled in.\n\
         # `wdsweep run` on this file repeats it.\n\n{body}"
    )
}

#[derive(Serialize)]
struct Best {
    lambda: Option<f64>,
    lr: Option<f64>,
    val_loss_mean: Option<f64>,
    val_loss_sem: Option<f64>,
    n_ok: Option<u64>,
    complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// `best.json`: the choice, or nulls and a reason when nothing can be chosen.
pub fn best_json(choice: Option<&Choice>, cells: &[Cell], complete: bool) -> String {
    let best = match choice {
        Some(c) => Best {
            lambda: Some(c.lambda),
            lr: Some(c.lr),
            val_loss_mean: Some(c.val_loss_mean),
            val_loss_sem: c.val_loss_sem,
            n_ok: Some(c.n_ok),
            complete,
            reason: None,
        },
        None => Best {
            lambda: None,
            lr: None,
            val_loss_mean: None,
            val_loss_sem: None,
            n_ok: None,
            complete,
            reason: Some(if cells.is_empty() {
                "no job has finished"
            } else {
                "every (lambda, lr) cell has diverged jobs"
            }),
        },
    };
    let mut text = serde_json::to_string_pretty(&best).expect("plain data serialises");
    text.push('\n');
    text
}

/// The sentence that states the choice.
pub fn choice_line(choice: Option<&Choice>, cells: &[Cell]) -> String {
    match choice {
        Some(c) => {
            let seeds = format!("{} {}", c.n_ok, crate::numfmt::plural(c.n_ok, "seed"));
            let spread = match c.val_loss_sem {
                Some(s) => format!(" ± {} (mean ± SEM over {seeds})", sig(s, 2)),
                // One ok seed has no spread to show.
                None => format!(" (mean over {seeds}; no SEM)"),
            };
            format!(
                "λ = {}, lr = {}: val_loss {}{spread}",
                short(c.lambda),
                short(c.lr),
                sig(c.val_loss_mean, 4),
            )
        }
        None if cells.is_empty() => "no λ can be chosen: no job has finished".to_string(),
        None => "no λ can be chosen: every (λ, lr) cell has diverged jobs; try smaller \
                 learning rates"
            .to_string(),
    }
}

/// `summary.md`: the full table, the choice and whether the run is complete.
pub fn summary_markdown(
    name: &str,
    cells: &[Cell],
    choice: Option<&Choice>,
    complete: bool,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Sweep `{name}`\n");
    if !complete {
        md.push_str("**Partial run: some jobs are missing; these numbers are not final.**\n\n");
    }
    let _ = writeln!(md, "Choice: {}\n", choice_line(choice, cells));
    md.push_str(
        "| lambda | lr | n | n_ok | n_diverged | val_loss_mean | val_loss_std | val_loss_sem \
         | train_loss_mean | l2_penalty_mean |\n",
    );
    md.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for c in cells {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            short(c.lambda),
            short(c.lr),
            c.n,
            c.n_ok,
            c.n_diverged,
            short_opt(c.val_loss_mean),
            short_opt(c.val_loss_std),
            short_opt(c.val_loss_sem),
            short_opt(c.train_loss_mean),
            short_opt(c.l2_penalty_mean),
        );
    }
    md
}

/// The compact table for the terminal; large grids show the best rows only.
pub fn terminal_table(cells: &[Cell], choice: Option<&Choice>) -> String {
    const MAX_ROWS: usize = 40;
    let mut rows: Vec<&Cell> = cells.iter().collect();
    let hidden = rows.len().saturating_sub(MAX_ROWS);
    if hidden > 0 {
        rows.sort_by(|a, b| {
            let key = |c: &Cell| c.val_loss_mean.unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b))
        });
        rows.truncate(MAX_ROWS);
    }
    let is_choice = |c: &Cell| choice.is_some_and(|ch| ch.lambda == c.lambda && ch.lr == c.lr);
    // Values are shown exactly, so a point inside a log range
    // (0.0025527660955237236) widens its column.
    let width = |value: fn(&Cell) -> f64, least: usize| {
        rows.iter()
            .map(|c| short(value(c)).chars().count())
            .fold(least, usize::max)
    };
    let (wl, wr) = (width(|c| c.lambda, 8), width(|c| c.lr, 7));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:>wl$}  {:>wr$}  {:>7}  {:>22}  {:>10}",
        "λ", "lr", "ok/n", "val_loss mean ± SEM", "½‖w‖²"
    );
    for c in rows {
        let val = match (c.val_loss_mean, c.val_loss_sem) {
            (Some(m), Some(s)) => format!("{} ± {}", sig(m, 4), sig(s, 2)),
            (Some(m), None) => sig(m, 4),
            (None, _) => "—".to_string(),
        };
        let l2 = c
            .l2_penalty_mean
            .map(|x| sig(x, 3))
            .unwrap_or_else(|| "—".into());
        let mark = if is_choice(c) {
            " ← chosen"
        } else if c.n_diverged > 0 {
            " (diverged)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:>wl$}  {:>wr$}  {:>7}  {:>22}  {:>10}{mark}",
            short(c.lambda),
            short(c.lr),
            format!("{}/{}", c.n_ok, c.n),
            val,
            l2
        );
    }
    if hidden > 0 {
        let _ = writeln!(
            out,
            "  … {hidden} more rows (the best {MAX_ROWS} are shown) in summary.md"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(n_ok: u64, sem: Option<f64>) -> Choice {
        Choice {
            lambda: 3.0,
            lr: 0.03,
            val_loss_mean: 0.0102,
            val_loss_sem: sem,
            n_ok,
        }
    }

    #[test]
    fn the_choice_line_shows_a_sem_only_where_there_is_one() {
        assert_eq!(
            choice_line(Some(&choice(5, Some(0.00067))), &[]),
            "λ = 3, lr = 0.03: val_loss 0.0102 ± 0.00067 (mean ± SEM over 5 seeds)"
        );
        assert_eq!(
            choice_line(Some(&choice(1, None)), &[]),
            "λ = 3, lr = 0.03: val_loss 0.0102 (mean over 1 seed; no SEM)"
        );
        assert_eq!(
            choice_line(None, &[]),
            "no λ can be chosen: no job has finished"
        );
    }
}
