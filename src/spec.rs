//! The sweep spec: the TOML a user writes, and the checked form the rest of
//! the program trusts.
//!
//! Parsing happens in two steps. Serde reads the file into `Raw*` structs
//! that mirror the TOML exactly (every key optional, unknown keys refused),
//! so a typo is reported with its line and column. [`Spec::from_toml`] then
//! fills in the book's defaults, expands the grid axes and checks every
//! value once; nothing downstream re-validates. Every refusal is a
//! [`SpecError`] naming the file, the key and what would be valid.
//!
//! A spec whose `[data]` names a file ends by reading it
//! ([`crate::table`]): the file's bad cells and rows are refused the same
//! way, so a [`Spec`] in hand always has clean data.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::grid::{self, FloatAxis, Grid, SeedAxis};
use crate::table::Table;

/// A spec that cannot be run as written. The message is complete: it names
/// the file, the place and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// How the L2 penalty enters training (DESIGN.md §2). Both give the same SGD
/// trajectory up to rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Penalty {
    /// (λ/2)·‖w‖² is part of the minibatch objective and its gradient λ·w is
    /// added to the weight gradient.
    Loss,
    /// The objective has no penalty; the optimizer shrinks the weights,
    /// w ← (1 − lr·λ)·w − lr·∇, as MXNet's `wd` does.
    Optimizer,
}

impl fmt::Display for Penalty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Penalty::Loss => "loss",
            Penalty::Optimizer => "optimizer",
        })
    }
}

/// The book's synthetic data set (DESIGN.md §2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSettings {
    pub num_train: usize,
    pub num_val: usize,
    pub num_inputs: usize,
    pub noise_std: f64,
    pub true_weight: f64,
    pub true_bias: f64,
}

impl Default for DataSettings {
    fn default() -> Self {
        DataSettings {
            num_train: 20,
            num_val: 100,
            num_inputs: 200,
            noise_std: 0.01,
            true_weight: 0.01,
            true_bias: 0.05,
        }
    }
}

/// How a data file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    /// The format a file name's extension names (`.csv`, `.parquet`, `.pq`,
    /// in any case), if it names one.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        })
    }
}

/// Which rows of a data file train and which validate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Split {
    /// round(n·fraction) rows (at least one) validate, drawn afresh by each
    /// seed; the rest train. Seeds resample the split (repeated hold-out).
    ValFraction(f64),
    /// The first N rows train and the rest validate, for every seed.
    TrainRows(usize),
}

/// `[data]` for a user's file, as written in the spec; the file itself is
/// read into a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub struct TableSettings {
    /// The file, resolved against the spec's folder.
    pub path: PathBuf,
    /// `[data] path` as written, for messages.
    pub written: String,
    pub format: Format,
    pub target: String,
    /// The feature columns in order; `None` means every column but the
    /// target, in the file's order.
    pub features: Option<Vec<String>>,
    pub split: Split,
    /// Whether features are standardised with the training rows' mean and
    /// population standard deviation.
    pub standardize: bool,
}

/// Where a sweep's rows come from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// The book's synthetic data, drawn per seed.
    Book(DataSettings),
    /// A user's CSV or Parquet file, read once when the spec is read and
    /// shared by every seed.
    Table(Arc<Table>),
}

impl DataSource {
    /// The book's settings, when the data are the book's.
    pub fn book(&self) -> Option<&DataSettings> {
        match self {
            DataSource::Book(d) => Some(d),
            DataSource::Table(_) => None,
        }
    }

    /// The loaded file, when the data come from one.
    pub fn table(&self) -> Option<&Table> {
        match self {
            DataSource::Book(_) => None,
            DataSource::Table(t) => Some(t),
        }
    }

    /// The number of features, the length of w.
    pub fn num_inputs(&self) -> usize {
        match self {
            DataSource::Book(d) => d.num_inputs,
            DataSource::Table(t) => t.features.len(),
        }
    }

    /// The number of training rows of every seed.
    pub fn num_train(&self) -> usize {
        match self {
            DataSource::Book(d) => d.num_train,
            DataSource::Table(t) => t.num_train(),
        }
    }
}

/// Minibatch SGD settings shared by every job of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainSettings {
    pub epochs: usize,
    pub batch_size: usize,
    pub init_std: f64,
    pub penalty: Penalty,
    /// A job diverges when its training loss exceeds this multiple of its
    /// initial training loss.
    pub diverge_above: f64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            epochs: 10,
            batch_size: 5,
            init_std: 0.01,
            penalty: Penalty::Loss,
            diverge_above: 1e6,
        }
    }
}

/// A checked spec: every default filled in, every axis expanded.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub data: DataSource,
    pub train: TrainSettings,
    pub grid: Grid,
    /// The numerics version recorded by a `spec.toml` that wdsweep wrote,
    /// when the spec is one; results of another version will differ.
    pub recorded_numerics: Option<i64>,
    /// The data file's BLAKE3 hash recorded by a `spec.toml` that wdsweep
    /// wrote, when the spec is one and reads a file.
    pub recorded_data_hash: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Option<String>,
    #[serde(default)]
    data: RawData,
    #[serde(default)]
    train: RawTrain,
    #[serde(default)]
    grid: RawGrid,
    /// Written by wdsweep into `spec.toml` (versions, experiment hash) and
    /// ignored on input, so a results folder's spec can be run again.
    #[serde(default, rename = "provenance")]
    _provenance: Option<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    num_train: Option<Count>,
    num_val: Option<Count>,
    num_inputs: Option<Count>,
    noise_std: Option<Finite>,
    true_weight: Option<Finite>,
    true_bias: Option<Finite>,
    path: Option<String>,
    format: Option<Format>,
    target: Option<String>,
    features: Option<Vec<String>>,
    val_fraction: Option<Finite>,
    train_rows: Option<Count>,
    standardize: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrain {
    epochs: Option<Count>,
    batch_size: Option<Count>,
    init_std: Option<Finite>,
    penalty: Option<Penalty>,
    diverge_above: Option<Finite>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    lambda: Option<FloatAxis>,
    lr: Option<FloatAxis>,
    seed: Option<SeedAxis>,
}

/// A number read from the spec that must be finite (`nan` and `inf` are
/// valid TOML but never a valid setting). Integers are accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Finite(pub f64);

impl<'de> Deserialize<'de> for Finite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let x = f64::deserialize(d)?;
        if x.is_finite() {
            Ok(Finite(x))
        } else {
            Err(de::Error::custom(format!(
                "{x} is not a usable number; write a finite value"
            )))
        }
    }
}

/// A non-negative whole number (a count of rows, epochs, …).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number (for example 10)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                u64::try_from(v)
                    .map(Count)
                    .map_err(|_| E::custom(format!("{v} is negative; expected a whole number")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count(v))
            }
        }
        d.deserialize_u64(V)
    }
}

impl<'de> Deserialize<'de> for FloatAxis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FloatAxisVisitor)
    }
}

struct FloatAxisVisitor;

const FLOAT_AXIS_FORMS: &str = "a list of numbers ([0, 0.1, 3]), \
    { log = [1e-3, 30], num = 12 } (optionally zero = true), \
    or { linear = [0.01, 0.05], num = 5 } (or step = 0.01 instead of num)";

impl<'de> Visitor<'de> for FloatAxisVisitor {
    type Value = FloatAxis;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(FLOAT_AXIS_FORMS)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FloatAxis, A::Error> {
        let mut values = Vec::new();
        while let Some(Finite(x)) = seq.next_element()? {
            values.push(x);
        }
        Ok(FloatAxis::List(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FloatAxis, A::Error> {
        let mut log: Option<[Finite; 2]> = None;
        let mut linear: Option<[Finite; 2]> = None;
        // Exactly two ends; a third number is a mistake, not something to drop.
        let ends = |name: &str, v: Vec<Finite>| -> Result<[Finite; 2], A::Error> {
            <[Finite; 2]>::try_from(v.as_slice()).map_err(|_| {
                de::Error::custom(format!(
                    "{name} = [..] takes exactly two numbers, the first and the last value \
                     (got {})",
                    v.len()
                ))
            })
        };
        let mut num: Option<Count> = None;
        let mut step: Option<Finite> = None;
        let mut zero: Option<bool> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "log" => log = Some(ends("log", map.next_value()?)?),
                "linear" => linear = Some(ends("linear", map.next_value()?)?),
                "num" => num = Some(map.next_value()?),
                "step" => step = Some(map.next_value()?),
                "zero" => zero = Some(map.next_value()?),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown key '{other}' in a range{} (a range takes log or linear, \
                         num or step, and zero)",
                        grid::suggest(other, &["log", "linear", "num", "step", "zero"])
                    )));
                }
            }
        }
        let zero = zero.unwrap_or(false);
        match (log, linear) {
            (Some([a, b]), None) => {
                if step.is_some() {
                    return Err(de::Error::custom(
                        "a log range takes num = N, not step (its points are evenly spaced \
                         in the logarithm)",
                    ));
                }
                let num = num.ok_or_else(|| {
                    de::Error::custom("a log range needs num = N (the number of points)")
                })?;
                Ok(FloatAxis::Log {
                    start: a.0,
                    end: b.0,
                    num: num.0,
                    zero,
                })
            }
            (None, Some([a, b])) => match (num, step) {
                (Some(n), None) => Ok(FloatAxis::LinearNum {
                    start: a.0,
                    end: b.0,
                    num: n.0,
                    zero,
                }),
                (None, Some(s)) => Ok(FloatAxis::LinearStep {
                    start: a.0,
                    end: b.0,
                    step: s.0,
                    zero,
                }),
                _ => Err(de::Error::custom(
                    "a linear range needs exactly one of num = N or step = S",
                )),
            },
            (Some(_), Some(_)) => Err(de::Error::custom(
                "a range is either log = [..] or linear = [..], not both",
            )),
            (None, None) => Err(de::Error::custom(format!("expected {FLOAT_AXIS_FORMS}"))),
        }
    }
}

impl<'de> Deserialize<'de> for SeedAxis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SeedAxisVisitor)
    }
}

struct SeedAxisVisitor;

impl<'de> Visitor<'de> for SeedAxisVisitor {
    type Value = SeedAxis;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a list of whole numbers ([0, 1, 2]), { count = 50 } or { start = 100, count = 50 }",
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SeedAxis, A::Error> {
        let mut seeds = Vec::new();
        while let Some(Count(s)) = seq.next_element()? {
            seeds.push(s);
        }
        Ok(SeedAxis::List(seeds))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SeedAxis, A::Error> {
        let mut start = None;
        let mut count = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "start" => start = Some(map.next_value::<Count>()?.0),
                "count" => count = Some(map.next_value::<Count>()?.0),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown key '{other}' in the seed axis{} (it takes count and start)",
                        grid::suggest(other, &["count", "start"])
                    )));
                }
            }
        }
        let count = count.ok_or_else(|| {
            de::Error::custom("the seed axis needs count = N (seeds start to start + N - 1)")
        })?;
        Ok(SeedAxis::Range {
            start: start.unwrap_or(0),
            count,
        })
    }
}

/// The place of a TOML error and its message, rewritten for people: an
/// unknown key names its table and the nearest valid key, and a wrong value
/// names the key it was given for.
fn describe_toml_error(text: &str, file: &str, e: &toml::de::Error) -> String {
    // Serde names Rust types; say what the spec should hold instead.
    let message = e
        .message()
        .trim_end()
        .replace("expected struct RawData", "expected a table such as [data]")
        .replace(
            "expected struct RawTrain",
            "expected a table such as [train]",
        )
        .replace("expected struct RawGrid", "expected a table such as [grid]")
        .replace("expected f64", "expected a number")
        .replace("expected a string", "expected text in quotes");
    let message = message.as_str();
    let Some(span) = e.span() else {
        return format!("{file}: {message}");
    };
    let (line, col) = line_col(text, span.start);
    let (table, key) = key_at(text, span.start);
    let place = format!("{file}:{line}:{col}");

    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (unknown, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|k| *k != "provenance")
            .collect();
        let table = match table.as_deref() {
            Some(t) => format!("[{t}]"),
            None => "the top level".to_string(),
        };
        return format!(
            "{place}: unknown key '{unknown}' in {table}{} (the keys there are {})",
            grid::suggest(unknown, &known),
            known.join(", ")
        );
    }
    match (table, key) {
        (Some(t), Some(k)) => format!("{place}: [{t}] {k}: {message}"),
        (None, Some(k)) => format!("{place}: {k}: {message}"),
        _ => format!("{place}: {message}"),
    }
}

/// The table (`grid`) and key (`lambda`) of the line holding byte `offset`,
/// as far as a line-by-line reading can tell; good enough for messages.
fn key_at(text: &str, offset: usize) -> (Option<String>, Option<String>) {
    let mut table = None;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        let trimmed = line.trim();
        let header = trimmed.strip_prefix('[').and_then(|h| h.split(']').next());
        if offset < end || end == text.len() {
            // On a header line the key is the table's own name, and it
            // belongs to its parent table.
            let (table, key) = match header {
                Some(h) => match h.trim().rsplit_once('.') {
                    Some((parent, last)) => (Some(parent.to_string()), Some(last.to_string())),
                    None => (None, Some(h.trim().to_string())),
                },
                None => (
                    table,
                    trimmed.split_once('=').map(|(k, _)| k.trim().to_string()),
                ),
            };
            return (table, key.filter(|k| !k.is_empty()));
        }
        if let Some(h) = header {
            table = Some(h.trim().to_string());
        }
        start = end;
    }
    (table, None)
}

/// Line and column (both from 1) of a byte offset in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // A span always starts on a character boundary; `get` keeps even a
    // wrong one from panicking.
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn check_usize(
    file: &str,
    key: &str,
    value: Option<Count>,
    default: usize,
) -> Result<usize, SpecError> {
    let Some(Count(v)) = value else {
        return Ok(default);
    };
    match usize::try_from(v) {
        Ok(v) if v > 0 => Ok(v),
        Ok(_) => Err(SpecError(format!(
            "{file}: {key} = 0; it must be at least 1"
        ))),
        Err(_) => Err(SpecError(format!(
            "{file}: {key} = {v} is too large for this machine"
        ))),
    }
}

impl Spec {
    /// Reads and checks a spec file, refusing grids of more than `max_jobs`
    /// jobs. The default `name` is the file's stem.
    /// A data file's `path` is taken relative to the spec's folder.
    pub fn from_file(path: &Path, max_jobs: u64) -> Result<Spec, SpecError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SpecError(format!("cannot read the spec {file}: {e}")))?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("sweep")
            .to_string();
        // A spec in the working directory has the empty path as its
        // parent, which joins to a plain "data.csv".
        let base = path.parent().unwrap_or(Path::new(""));
        Spec::parse_in(&text, &file, &stem, max_jobs, base)
    }

    /// [`Spec::parse`] with the default job limit.
    pub fn from_toml(text: &str, file: &str, default_name: &str) -> Result<Spec, SpecError> {
        Spec::parse(text, file, default_name, DEFAULT_MAX_JOBS)
    }

    /// [`Spec::parse_in`] with a data file's `path` taken relative to the
    /// working directory.
    pub fn parse(
        text: &str,
        file: &str,
        default_name: &str,
        max_jobs: u64,
    ) -> Result<Spec, SpecError> {
        Spec::parse_in(text, file, default_name, max_jobs, Path::new(""))
    }

    /// Checks a spec given as text; `file` is only used in messages, and a
    /// data file's `path` is taken relative to the folder `base`. The grid's
    /// size is computed, overflow-checked and held to `max_jobs` before any
    /// axis is expanded; a data file is read, and checked against the grid
    /// and the training settings, once the spec itself is known to be good.
    pub fn parse_in(
        text: &str,
        file: &str,
        default_name: &str,
        max_jobs: u64,
        base: &Path,
    ) -> Result<Spec, SpecError> {
        // [[grid]] makes an array of tables, which serde would read as the
        // fields of [grid] in order, with a baffling message.
        if let Ok(table) = toml::from_str::<toml::Table>(text)
            && let Some(name) = ["data", "train", "grid"]
                .into_iter()
                .find(|name| table.get(*name).is_some_and(toml::Value::is_array))
        {
            return Err(SpecError(format!(
                "{file}: [[{name}]] (or {name} = [...]) makes a list of tables; write the table \
                 once, with single brackets: [{name}]"
            )));
        }
        let raw: RawSpec =
            toml::from_str(text).map_err(|e| SpecError(describe_toml_error(text, file, &e)))?;

        let from_stem = raw.name.is_none();
        let name = raw.name.unwrap_or_else(|| default_name.to_string());
        check_name(file, &name, from_stem)?;

        let data = check_data(file, base, raw.data)?;

        let defaults = TrainSettings::default();
        let t = raw.train;
        let train = TrainSettings {
            epochs: check_usize(file, "[train] epochs", t.epochs, defaults.epochs)?,
            batch_size: check_usize(
                file,
                "[train] batch_size",
                t.batch_size,
                defaults.batch_size,
            )?,
            init_std: t.init_std.map_or(defaults.init_std, |x| x.0),
            penalty: t.penalty.unwrap_or(defaults.penalty),
            diverge_above: t.diverge_above.map_or(defaults.diverge_above, |x| x.0),
        };
        // A data file's rows are counted only once it is read, below.
        if let DataChoice::Book(data) = &data
            && train.batch_size > data.num_train
        {
            return Err(SpecError(format!(
                "{file}: [train] batch_size = {} is larger than [data] num_train = {}; \
                 use a batch_size from 1 to {}",
                train.batch_size, data.num_train, data.num_train
            )));
        }
        if train.init_std < 0.0 {
            return Err(SpecError(format!(
                "{file}: [train] init_std = {} is negative; a standard deviation is 0 or more",
                crate::numfmt::short(train.init_std)
            )));
        }
        if train.diverge_above <= 1.0 {
            return Err(SpecError(format!(
                "{file}: [train] diverge_above = {} must be greater than 1 (it is a factor \
                 over the initial training loss; the default is 1e6)",
                crate::numfmt::short(train.diverge_above)
            )));
        }

        let g = raw.grid;
        let lambda = g.lambda.unwrap_or(FloatAxis::List(vec![0.0]));
        let lr = g.lr.unwrap_or(FloatAxis::List(vec![0.01]));
        let seed = g.seed.unwrap_or(SeedAxis::Range { start: 0, count: 1 });
        check_size(file, &lambda, &lr, &seed, max_jobs)?;
        let grid = Grid::new(
            grid::expand_float(&lambda, "[grid] lambda", grid::Bound::NonNegative)
                .map_err(|m| SpecError(format!("{file}: {m}")))?,
            grid::expand_float(&lr, "[grid] lr", grid::Bound::Positive)
                .map_err(|m| SpecError(format!("{file}: {m}")))?,
            grid::expand_seeds(&seed).map_err(|m| SpecError(format!("{file}: {m}")))?,
        )
        .map_err(|m| SpecError(format!("{file}: {m}")))?;

        // Read last, so that a mistake in the spec is reported before a
        // large file is read.
        let data = match data {
            DataChoice::Book(d) => DataSource::Book(d),
            DataChoice::Table(settings) => {
                let table = Table::load(settings, file).map_err(SpecError)?;
                table
                    .check_run(train.batch_size, &grid.seeds, file)
                    .map_err(SpecError)?;
                DataSource::Table(Arc::new(table))
            }
        };

        let provenance = raw._provenance.as_ref();
        let recorded_numerics = provenance.and_then(|t| t.get("numerics_version")?.as_integer());
        let recorded_data_hash = provenance
            .and_then(|t| t.get(DATA_HASH_KEY)?.as_str())
            .map(str::to_string);
        Ok(Spec {
            name,
            data,
            train,
            grid,
            recorded_numerics,
            recorded_data_hash,
        })
    }
}

/// The key of `[provenance]` in a written `spec.toml` that records the data
/// file's hash.
pub const DATA_HASH_KEY: &str = "data_file_blake3";

/// The validation share of a data file's rows when the spec names no split.
pub const DEFAULT_VAL_FRACTION: f64 = 0.2;

/// `[data]` once checked, before a data file is read.
enum DataChoice {
    Book(DataSettings),
    Table(TableSettings),
}

/// "a, b and c".
fn and_list(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Splits `[data]` into the book's data set or a data file: the keys of one
/// beside the other are refused, naming them.
fn check_data(file: &str, base: &Path, d: RawData) -> Result<DataChoice, SpecError> {
    // The keys of each kind that the spec gives.
    let given = |keys: &[(&'static str, bool)]| -> Vec<&'static str> {
        keys.iter().filter(|k| k.1).map(|k| k.0).collect()
    };
    let book_keys = given(&[
        ("num_train", d.num_train.is_some()),
        ("num_val", d.num_val.is_some()),
        ("num_inputs", d.num_inputs.is_some()),
        ("noise_std", d.noise_std.is_some()),
        ("true_weight", d.true_weight.is_some()),
        ("true_bias", d.true_bias.is_some()),
    ]);
    let table_keys = given(&[
        ("format", d.format.is_some()),
        ("target", d.target.is_some()),
        ("features", d.features.is_some()),
        ("val_fraction", d.val_fraction.is_some()),
        ("train_rows", d.train_rows.is_some()),
        ("standardize", d.standardize.is_some()),
    ]);
    let them = |keys: &[&str]| if keys.len() == 1 { "it" } else { "them" };
    match &d.path {
        None if !table_keys.is_empty() => Err(SpecError(format!(
            "{file}: [data] {} {} a data file, but [data] has no path; add path = \"FILE.csv\" \
             (relative to the spec's folder), or remove {} to use the built-in data set",
            and_list(&table_keys),
            if table_keys.len() == 1 {
                "describes"
            } else {
                "describe"
            },
            them(&table_keys)
        ))),
        None => check_book(file, d).map(DataChoice::Book),
        Some(path) if !book_keys.is_empty() => Err(SpecError(format!(
            "{file}: [data] {} {} to the built-in synthetic data set and cannot be used with \
             path = {path:?}; remove {} (a data file takes path, format, target, features, \
             val_fraction or train_rows, and standardize)",
            and_list(&book_keys),
            if book_keys.len() == 1 {
                "belongs"
            } else {
                "belong"
            },
            them(&book_keys)
        ))),
        Some(_) => check_table(file, base, d).map(DataChoice::Table),
    }
}

/// The book's data settings, defaults filled in.
fn check_book(file: &str, d: RawData) -> Result<DataSettings, SpecError> {
    let defaults = DataSettings::default();
    let data = DataSettings {
        num_train: check_usize(file, "[data] num_train", d.num_train, defaults.num_train)?,
        num_val: check_usize(file, "[data] num_val", d.num_val, defaults.num_val)?,
        num_inputs: check_usize(file, "[data] num_inputs", d.num_inputs, defaults.num_inputs)?,
        noise_std: d.noise_std.map_or(defaults.noise_std, |x| x.0),
        true_weight: d.true_weight.map_or(defaults.true_weight, |x| x.0),
        true_bias: d.true_bias.map_or(defaults.true_bias, |x| x.0),
    };
    for (what, a, b) in [
        (
            "([data] num_train + num_val) × num_inputs",
            (data.num_train + data.num_val) as u64,
            data.num_inputs as u64,
        ),
        (
            "[data] num_val × num_train",
            data.num_val as u64,
            data.num_train as u64,
        ),
    ] {
        if a.checked_mul(b).is_none_or(|n| n > MAX_MATRIX) {
            return Err(SpecError(format!(
                "{file}: {what} = {a} × {b} numbers per seed, more than the {MAX_MATRIX} \
                 (2 GiB) one seed may hold; use fewer rows or inputs"
            )));
        }
    }
    if data.noise_std < 0.0 {
        return Err(SpecError(format!(
            "{file}: [data] noise_std = {} is negative; a standard deviation is 0 or more",
            crate::numfmt::short(data.noise_std)
        )));
    }
    Ok(data)
}

/// A data file's settings, checked as far as the spec alone allows; the
/// columns and rows are checked when the file is read.
fn check_table(file: &str, base: &Path, d: RawData) -> Result<TableSettings, SpecError> {
    let written = d.path.unwrap_or_default();
    if written.trim().is_empty() {
        return Err(SpecError(format!(
            "{file}: [data] path is empty; name a CSV or Parquet file, relative to the spec's \
             folder (for example path = \"../data/diabetes.csv\")"
        )));
    }
    let format = match d.format {
        Some(f) => f,
        None => Format::from_extension(Path::new(&written)).ok_or_else(|| {
            SpecError(format!(
                "{file}: [data] path = {written:?}: its extension does not say whether it is \
                 CSV or Parquet (.csv, .parquet or .pq); add format = \"csv\" or \
                 format = \"parquet\""
            ))
        })?,
    };
    let target = d.target.ok_or_else(|| {
        SpecError(format!(
            "{file}: [data] path = {written:?} needs target = \"COLUMN\", the column to predict"
        ))
    })?;
    if let Some(features) = &d.features {
        if features.is_empty() {
            return Err(SpecError(format!(
                "{file}: [data] features = [] leaves the model no input; list at least one \
                 column, or leave features out to use every column but the target"
            )));
        }
        if features.contains(&target) {
            return Err(SpecError(format!(
                "{file}: [data] features lists the target column {target:?}; the model cannot \
                 take its own answer as an input: remove it from features"
            )));
        }
        for (i, f) in features.iter().enumerate() {
            if features[..i].contains(f) {
                return Err(SpecError(format!(
                    "{file}: [data] features lists {f:?} twice; list each column once"
                )));
            }
        }
    }
    let split = match (d.val_fraction, d.train_rows) {
        (Some(_), Some(_)) => {
            return Err(SpecError(format!(
                "{file}: [data] val_fraction and train_rows both choose the split; keep one: \
                 val_fraction = F (each seed draws its own validation rows) or train_rows = N \
                 (the first N rows train, the rest validate)"
            )));
        }
        (Some(Finite(f)), None) if f > 0.0 && f < 1.0 => Split::ValFraction(f),
        (Some(Finite(f)), None) => {
            return Err(SpecError(format!(
                "{file}: [data] val_fraction = {} must lie strictly between 0 and 1 (the share \
                 of rows that validate; the default is 0.2)",
                crate::numfmt::short(f)
            )));
        }
        (None, Some(Count(n))) => {
            let rows = usize::try_from(n).ok().filter(|&n| n >= 2).ok_or_else(|| {
                SpecError(format!(
                    "{file}: [data] train_rows = {n}; training needs at least 2 rows (and the \
                     file at least one more, to validate)"
                ))
            })?;
            Split::TrainRows(rows)
        }
        (None, None) => Split::ValFraction(DEFAULT_VAL_FRACTION),
    };
    Ok(TableSettings {
        path: base.join(&written),
        written,
        format,
        target,
        features: d.features,
        split,
        standardize: d.standardize.unwrap_or(true),
    })
}

/// The default refusal threshold for a grid's job count (`--max-jobs`).
pub const DEFAULT_MAX_JOBS: u64 = 10_000_000;

/// No `--max-jobs` goes past this: at a few hundred bytes per job it is
/// about as much as one machine's memory holds.
pub const JOBS_CEILING: u64 = 1_000_000_000;

/// The largest matrix of one seed (data rows × inputs, and the products of
/// rows with rows) that a spec may ask for: 2^28 numbers, 2 GiB.
const MAX_MATRIX: u64 = 1 << 28;

fn check_size(
    file: &str,
    lambda: &FloatAxis,
    lr: &FloatAxis,
    seed: &SeedAxis,
    max_jobs: u64,
) -> Result<(), SpecError> {
    let (nl, nr, ns) = (
        grid::float_axis_len(lambda),
        grid::float_axis_len(lr),
        seed.len(),
    );
    // The length of a range by step is estimated, and saturates for tiny
    // steps: name the axis, not a job count that is not real.
    for (key, axis, len) in [("[grid] lambda", lambda, nl), ("[grid] lr", lr, nr)] {
        if matches!(axis, FloatAxis::LinearStep { .. }) && len > grid::MAX_AXIS {
            return Err(SpecError(format!(
                "{file}: {key} would expand to more than {} values, the most one axis may \
                 hold; use a larger step or fewer points",
                crate::numfmt::grouped(grid::MAX_AXIS)
            )));
        }
    }
    let axes = format!("{nl} λ × {nr} lr × {ns} seeds");
    match nl.checked_mul(nr).and_then(|n| n.checked_mul(ns)) {
        Some(n) if n > JOBS_CEILING => Err(SpecError(format!(
            "{file}: the grid has {n} jobs ({axes}); one run keeps a few hundred bytes per job \
             in memory, so wdsweep takes at most {JOBS_CEILING}: split the sweep into several \
             specs (for example by seed range)"
        ))),
        Some(n) if n <= max_jobs => Ok(()),
        Some(n) => Err(SpecError(format!(
            "{file}: the grid has {n} jobs ({axes}), more than the limit of {max_jobs}; \
             shrink an axis, or pass --max-jobs {n} if you mean it"
        ))),
        None => Err(SpecError(format!(
            "{file}: the grid's job count ({axes}) does not fit in 64 bits; shrink an axis"
        ))),
    }
}

/// The name becomes a folder under `results/`, so it must be one plain
/// path component.
fn check_name(file: &str, name: &str, from_stem: bool) -> Result<(), SpecError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let plain = !name.is_empty()
        && name.len() <= 100
        && name.chars().all(allowed)
        && !name.starts_with(['-', '.']);
    if plain {
        return Ok(());
    }
    let rule = "a name is up to 100 ASCII letters, digits, '-', '_' or '.', not starting with '-' or \
                '.' (for example name = \"grid\")";
    Err(SpecError(if from_stem {
        format!(
            "{file}: the spec has no name, and its file name {name:?} cannot serve as one; add \
             a line name = \"...\" at the top ({rule})"
        )
    } else {
        format!("{file}: name = {name:?} is not a plain folder name; {rule}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::SeedAxis;

    fn parse(text: &str) -> Result<Spec, SpecError> {
        Spec::from_toml(text, "test.toml", "test")
    }

    #[test]
    fn an_empty_spec_is_the_books_single_run() {
        let spec = parse("").unwrap();
        assert_eq!(spec.name, "test");
        assert_eq!(spec.data.book(), Some(&DataSettings::default()));
        assert_eq!(spec.train, TrainSettings::default());
        assert_eq!(spec.grid.lambdas, vec![0.0]);
        assert_eq!(spec.grid.lrs, vec![0.01]);
        assert_eq!(spec.grid.seeds, SeedAxis::Range { start: 0, count: 1 });
    }

    #[test]
    fn every_setting_is_read() {
        let spec = parse(
            "name = \"x\"\n[data]\nnum_train = 10\nnum_val = 7\nnum_inputs = 3\n\
             noise_std = 0.5\ntrue_weight = 2\ntrue_bias = -1\n\
             [train]\nepochs = 4\nbatch_size = 3\ninit_std = 0.1\npenalty = \"optimizer\"\n\
             diverge_above = 100\n[grid]\nlambda = [0, 1]\nlr = [0.1]\nseed = [3, 4]\n",
        )
        .unwrap();
        assert_eq!(spec.name, "x");
        assert_eq!(
            spec.data.book().unwrap(),
            &DataSettings {
                num_train: 10,
                num_val: 7,
                num_inputs: 3,
                noise_std: 0.5,
                true_weight: 2.0,
                true_bias: -1.0
            }
        );
        assert_eq!(
            spec.train,
            TrainSettings {
                epochs: 4,
                batch_size: 3,
                init_std: 0.1,
                penalty: Penalty::Optimizer,
                diverge_above: 100.0
            }
        );
        assert_eq!(spec.grid.seeds, SeedAxis::List(vec![3, 4]));
    }

    #[test]
    fn a_misspelt_key_is_refused_with_its_place() {
        let err = parse("[grid]\nlamda = [0]\n").unwrap_err().to_string();
        assert!(err.starts_with("test.toml:2:1:"), "{err}");
        assert!(err.contains("lamda"), "{err}");
    }

    #[test]
    fn batch_larger_than_training_set_is_refused() {
        let err = parse("[train]\nbatch_size = 21\n").unwrap_err().to_string();
        assert!(
            err.contains("batch_size = 21") && err.contains("1 to 20"),
            "{err}"
        );
    }

    #[test]
    fn nan_is_refused() {
        let err = parse("[data]\nnoise_std = nan\n").unwrap_err().to_string();
        assert!(err.contains("finite"), "{err}");
    }

    #[test]
    fn a_path_as_name_is_refused() {
        for name in ["../x", "a/b", ""] {
            let err = parse(&format!("name = {name:?}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("plain folder name"), "{err}");
        }
    }
}
