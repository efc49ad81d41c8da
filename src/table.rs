//! A user's own data: a CSV or Parquet file, read once per run into a
//! [`Table`], and each seed's split and standardisation of it.
//!
//! Reading checks every cell the sweep will use — the target and the
//! feature columns — so that a run either starts with clean numbers or
//! refuses with the file, the row and the column of the first bad cell.
//! The table is immutable afterwards and shared by every seed.
//!
//! A seed's rows (DESIGN.md §3): with `val_fraction = f`, a permutation of
//! all rows is drawn from the seed's [`Stream::Split`]; its first
//! max(1, round(n·f)) rows validate and the rest train. With
//! `train_rows = N` the first N rows train for every seed. Either way both
//! parts keep the file's row order (the minibatch order comes from the
//! shuffle stream), and the split depends on the seed alone, so every λ and
//! lr of a seed sees the same rows. Features are then standardised with the
//! training rows' mean and population standard deviation, as scikit-learn's
//! `StandardScaler` does; the target stays in its own units.

use std::fmt;
use std::io::Cursor;
use std::path::PathBuf;

use ndarray::{Array1, Array2};
use ndarray_rand::rand::seq::SliceRandom;
use polars::prelude::{Column, DataFrame, DataType};
use polars_io::prelude::{CsvReadOptions, ParquetReader, SerReader};
use rayon::prelude::*;

use crate::data::{self, Dataset, Stream};
use crate::grid::{self, SeedAxis};
use crate::numfmt::short;
use crate::spec::{Format, Split, TableSettings};

/// A data file's target and feature columns as numbers, with its settings.
pub struct Table {
    /// The file as resolved against the spec's folder.
    pub path: PathBuf,
    /// `[data] path` as the spec wrote it.
    pub written: String,
    pub format: Format,
    pub target: String,
    /// The feature columns, in the order of `x`'s columns.
    pub features: Vec<String>,
    pub split: Split,
    pub standardize: bool,
    /// One row per data row of the file, one column per feature.
    pub x: Array2<f64>,
    pub y: Array1<f64>,
    /// BLAKE3 of the file's bytes: the file's identity in job keys.
    pub hash: blake3::Hash,
    num_val: usize,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("target", &self.target)
            .field("features", &self.features)
            .field("split", &self.split)
            .field("standardize", &self.standardize)
            .field("rows", &self.x.nrows())
            .field("hash", &self.hash.to_hex().as_str())
            .finish()
    }
}

/// What is wrong with a cell.
#[derive(Debug, Clone, PartialEq)]
enum Bad {
    Empty,
    Text(String),
    NotFinite(f64),
    TooLarge(f64),
}

/// The largest magnitude a cell may hold: losses square the data's values
/// (and standardising squares the features), and past about 1.3e154 a
/// square overflows to infinity, which would look like divergence.
const MAX_MAGNITUDE: f64 = 1e150;

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bad::Empty => f.write_str("the cell is empty"),
            Bad::Text(s) => write!(f, "{s:?} is not a number"),
            Bad::NotFinite(x) => write!(f, "the value is {x}, not a finite number"),
            Bad::TooLarge(x) => write!(
                f,
                "the value {} is too large to square (every loss squares it) without overflow",
                short(*x)
            ),
        }
    }
}

/// A feature column that cannot be standardised on some training rows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Flat {
    column: usize,
    /// The value every training row holds, when they all hold one.
    value: Option<f64>,
}

impl Table {
    /// Reads and checks the file of `settings`; `spec` names the spec in
    /// messages. Every refusal names the file and the fix.
    pub fn load(settings: TableSettings, spec: &str) -> Result<Table, String> {
        let shown = settings.path.display().to_string();
        let bytes = std::fs::read(&settings.path).map_err(|e| {
            format!(
                "{spec}: [data] path = {:?}: cannot read {shown}: {e} (a relative path is \
                 taken from the spec's folder)",
                settings.written
            )
        })?;
        let hash = blake3::hash(&bytes);
        let unreadable = |e: polars::prelude::PolarsError| {
            // The reader's first sentence; what follows is advice about
            // options of its own (infer_schema_length, ignore_errors, …)
            // that a spec cannot set.
            let text = e.to_string();
            let first = text
                .split("You might want to try")
                .next()
                .unwrap_or(&text)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_string();
            format!(
                "{shown}: cannot be read as {}: {first} (if it is not {0}, set [data] format in \
                 {spec})",
                settings.format
            )
        };
        // The reader would replace bytes that are not UTF-8 (a Latin-1
        // "é" in a header, say) without a word.
        if settings.format == Format::Csv
            && let Err(e) = std::str::from_utf8(&bytes)
        {
            let at = e.valid_up_to();
            let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
            return Err(format!(
                "{shown}: line {line} holds bytes that are not UTF-8 text (byte {at}); save the \
                 file as UTF-8 (a spreadsheet's \"CSV UTF-8\"), or convert it with iconv"
            ));
        }
        // Every column of the file, for messages: a Parquet file's frame
        // holds only the columns the spec uses.
        let mut all_columns = None;
        let frame = match settings.format {
            Format::Csv => read_csv(&bytes).map_err(|e| {
                if let Some(long) = longer_row(&bytes) {
                    return format!(
                        "{shown}: row {} (line {} of the file) has {} cells, but the header names \
                         {} columns; remove the extra cells (a stray comma?), or quote a cell \
                         that holds a comma",
                        long.row, long.line, long.cells, long.header
                    );
                }
                if let Some(line) = unclosed_quote(&bytes) {
                    return format!(
                        "{shown}: line {line} opens a quoted cell that is never closed; add the \
                         closing \" (a \" inside a quoted cell is written \"\")"
                    );
                }
                unreadable(e)
            })?,
            Format::Parquet => {
                let (frame, all) =
                    read_parquet(&bytes, &settings, &shown, spec).map_err(|e| match e {
                        ParquetError::Polars(e) => unreadable(e),
                        ParquetError::Message(m) => m,
                    })?;
                all_columns = Some(all);
                frame
            }
        };
        let names: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        // The CSV reader renames a repeated header name NAME to
        // NAME_duplicated_0, …; a header must name each column once.
        if let Some(twice) = names.iter().find_map(|c| {
            let (base, tail) = c.rsplit_once("_duplicated_")?;
            let numbered = !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit());
            (numbered && names.iter().any(|o| o == base)).then_some(base)
        }) {
            return Err(format!(
                "{shown}: the header names the column {twice:?} more than once; give every \
                 column a name of its own"
            ));
        }
        let all_columns = all_columns.unwrap_or_else(|| names.clone());
        let find = |name: &str, key: &str| -> Result<usize, String> {
            names.iter().position(|c| c == name).ok_or_else(|| {
                let near = all_columns
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(name))
                    .map(|c| format!("; did you mean '{c}'?"))
                    .unwrap_or_else(|| {
                        let known: Vec<&str> = all_columns.iter().map(String::as_str).collect();
                        grid::suggest(name, &known)
                    });
                format!(
                    "{shown} has no column {name:?} ({key} in {spec}){near} (its columns are {})",
                    all_columns.join(", ")
                )
            })
        };
        let target_at = find(&settings.target, "[data] target")?;
        let feature_at: Vec<usize> = match &settings.features {
            Some(list) => list
                .iter()
                .map(|f| find(f, "[data] features"))
                .collect::<Result<_, _>>()?,
            None => (0..names.len()).filter(|&i| i != target_at).collect(),
        };
        // An unnamed column could be neither listed in [data] features nor
        // told apart in the results.
        if let Some(&blank) = feature_at.iter().find(|&&i| names[i].trim().is_empty()) {
            return Err(format!(
                "{shown}: column {} of the header has no name; name it, or list the columns to \
                 use in [data] features ({spec})",
                blank + 1
            ));
        }
        if feature_at.is_empty() {
            return Err(format!(
                "{shown} has no column besides the target {:?}, so the model would have no \
                 input; add feature columns to the file",
                settings.target
            ));
        }
        let n = frame.height();
        let num_val = validation_rows(n, settings.split, &shown, spec)?;

        // Every used column as numbers; the first bad cell in the file's
        // order (by row, then by column) is the one reported.
        let columns = frame.columns();
        let mut worst: Option<(usize, usize, Bad)> = None;
        let mut values: Vec<Vec<f64>> = Vec::with_capacity(feature_at.len() + 1);
        for &at in feature_at.iter().chain([&target_at]) {
            match numbers(&columns[at]) {
                Ok(v) => values.push(v),
                Err((row, bad)) => {
                    if worst.as_ref().is_none_or(|w| (row, at) < (w.0, w.1)) {
                        worst = Some((row, at, bad));
                    }
                }
            }
        }
        if let Some((row, at, bad)) = worst {
            // Lines only where they can be counted as the reader counted
            // rows (text, in CSV).
            let record = match settings.format {
                Format::Csv => records(&bytes)
                    .filter(|found| found.len() == n)
                    .map(|found| found[row]),
                Format::Parquet => None,
            };
            if let Some(Record {
                line, blank: true, ..
            }) = record
            {
                return Err(format!(
                    "{shown}: row {} (line {line} of the file) is a blank line, which reads as \
                     a row of empty cells; remove the line",
                    row + 1
                ));
            }
            // A short row reads as empty cells at its end: say what it is.
            let header = lines(&bytes).and_then(|l| l.first().map(|h| h.cells));
            if let (Some(r), Some(header), Bad::Empty) = (record, header, &bad)
                && r.cells < header
            {
                return Err(format!(
                    "{shown}: row {} (line {} of the file) has {} cells, but the header names {} \
                     columns; add the missing cells, or remove the row",
                    row + 1,
                    r.line,
                    r.cells,
                    header
                ));
            }
            let line = record
                .map(|r| format!(" (line {} of the file)", r.line))
                .unwrap_or_default();
            let drop = if at == target_at {
                String::new()
            } else {
                ", or leave the column out of [data] features".to_string()
            };
            return Err(format!(
                "{shown}: row {}{line}, column {:?}: {bad}; every cell of the target and the \
                 feature columns must hold a finite number within ±1e150: fix the cell (or \
                 rescale the column), remove the row{drop}",
                row + 1,
                names[at]
            ));
        }

        let y = Array1::from(values.pop().expect("the target column was read"));
        let d = values.len();
        let x = Array2::from_shape_fn((n, d), |(r, j)| values[j][r]);
        Ok(Table {
            path: settings.path,
            written: settings.written,
            format: settings.format,
            target: settings.target,
            features: feature_at.iter().map(|&i| names[i].clone()).collect(),
            split: settings.split,
            standardize: settings.standardize,
            x,
            y,
            hash,
            num_val,
        })
    }

    /// Data rows in the file.
    pub fn num_rows(&self) -> usize {
        self.x.nrows()
    }

    /// Training rows of every seed.
    pub fn num_train(&self) -> usize {
        self.num_rows() - self.num_val
    }

    /// Validation rows of every seed.
    pub fn num_val(&self) -> usize {
        self.num_val
    }

    /// Checks what depends on the run as well as on the file: the batch fits
    /// in the training rows, and no seed of `seeds` leaves a feature that
    /// cannot be standardised. It costs about one epoch per seed, and means
    /// a run never fails half-way. `spec` names the spec in messages.
    pub fn check_run(&self, batch_size: usize, seeds: &SeedAxis, spec: &str) -> Result<(), String> {
        let shown = self.path.display();
        if batch_size > self.num_train() {
            return Err(format!(
                "{spec}: [train] batch_size = {batch_size} is larger than the {} training rows \
                 of {shown} ({}); use a batch_size from 1 to {}",
                self.num_train(),
                self.describe_split(),
                self.num_train()
            ));
        }
        if !self.standardize {
            return Ok(());
        }
        let count = match self.split {
            // The same rows for every seed: one check covers them all.
            Split::TrainRows(_) => 1,
            Split::ValFraction(_) => seeds.len() as usize,
        };
        let first_failure = (0..count).into_par_iter().find_map_first(|i| {
            let seed = seeds.get(i);
            let (train, _) = self.rows(seed);
            self.scales(&train).err().map(|flat| (seed, flat))
        });
        match first_failure {
            Some((seed, flat)) => Err(self.flat_message(flat, seed)),
            None => Ok(()),
        }
    }

    /// The training and validation rows of a seed, each in the file's
    /// order.
    pub fn rows(&self, seed: u64) -> (Vec<usize>, Vec<usize>) {
        let n = self.num_rows();
        match self.split {
            Split::TrainRows(t) => ((0..t).collect(), (t..n).collect()),
            Split::ValFraction(_) => {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut data::rng(seed, Stream::Split));
                let (val, train) = order.split_at_mut(self.num_val);
                val.sort_unstable();
                train.sort_unstable();
                (train.to_vec(), val.to_vec())
            }
        }
    }

    /// The data set of a seed: its split, with the features standardised
    /// on its training rows when the spec asks for it. It fails only where
    /// [`Table::check_run`] would have.
    pub fn dataset(&self, seed: u64) -> Result<Dataset, String> {
        let (train, val) = self.rows(seed);
        let scales = if self.standardize {
            Some(
                self.scales(&train)
                    .map_err(|flat| self.flat_message(flat, seed))?,
            )
        } else {
            None
        };
        let take = |rows: &[usize]| {
            let x = Array2::from_shape_fn((rows.len(), self.x.ncols()), |(i, j)| {
                let v = self.x[[rows[i], j]];
                match &scales {
                    Some(s) => (v - s[j].0) / s[j].1,
                    None => v,
                }
            });
            let y: Array1<f64> = rows.iter().map(|&r| self.y[r]).collect();
            (x, y)
        };
        let (x_train, y_train) = take(&train);
        let (x_val, y_val) = take(&val);
        Ok(Dataset {
            x_train,
            y_train,
            x_val,
            y_val,
        })
    }

    /// The mean and population standard deviation of every feature over
    /// `train`, summed in row order; a column without spread is refused.
    fn scales(&self, train: &[usize]) -> Result<Vec<(f64, f64)>, Flat> {
        let m = train.len() as f64;
        (0..self.x.ncols())
            .map(|j| {
                let column = || train.iter().map(|&r| self.x[[r, j]]);
                let first = self.x[[train[0], j]];
                if column().all(|v| v == first) {
                    return Err(Flat {
                        column: j,
                        value: Some(first),
                    });
                }
                let mean = column().sum::<f64>() / m;
                let var = column().map(|v| (v - mean) * (v - mean)).sum::<f64>() / m;
                let std = var.sqrt();
                if std > 0.0 && std.is_finite() && mean.is_finite() {
                    Ok((mean, std))
                } else {
                    Err(Flat {
                        column: j,
                        value: None,
                    })
                }
            })
            .collect()
    }

    fn flat_message(&self, flat: Flat, seed: u64) -> String {
        let what = match flat.value {
            Some(v) => format!("holds the same value, {}, in every", short(v)),
            None => "has a spread too small or too large to compute over its".to_string(),
        };
        let whose = match self.split {
            Split::TrainRows(t) => format!("(the first {t} rows)"),
            Split::ValFraction(_) => format!("of seed {seed}'s split ({})", self.describe_split()),
        };
        format!(
            "{}: column {:?} {what} training row {whose}, so it cannot be standardised; \
             leave it out of [data] features, or set standardize = false",
            self.path.display(),
            self.features[flat.column]
        )
    }

    /// "354 train, 88 validate, drawn by each seed".
    pub fn describe_split(&self) -> String {
        let how = match self.split {
            Split::ValFraction(f) => format!("val_fraction = {}, drawn by each seed", short(f)),
            Split::TrainRows(t) => format!("train_rows = {t}, the first rows train"),
        };
        format!(
            "{} train, {} validate: {how}",
            self.num_train(),
            self.num_val()
        )
    }
}

/// How many of `n` rows validate (the rest train), or why `n` rows are too
/// few.
fn validation_rows(n: usize, split: Split, shown: &str, spec: &str) -> Result<usize, String> {
    if n == 0 {
        return Err(format!(
            "{shown} has no data rows (only a header); a sweep needs at least 3 rows: 2 to \
             train and 1 to validate"
        ));
    }
    match split {
        Split::ValFraction(f) => {
            let val = ((n as f64 * f).round() as usize).max(1);
            let train = n.saturating_sub(val);
            if train < 2 {
                let fits = if n >= 3 {
                    format!(
                        ", or train_rows = {} (the first rows train)",
                        (n - 1).max(2)
                    )
                } else {
                    String::new()
                };
                return Err(format!(
                    "{shown} has {n} data {}; [data] val_fraction = {} in {spec} leaves {val} \
                     to validate and {train} to train, but training needs at least 2 rows and \
                     validation 1: use a file with more rows, a smaller val_fraction{fits}",
                    crate::numfmt::plural(n as u64, "row"),
                    short(f),
                ));
            }
            Ok(val)
        }
        Split::TrainRows(t) => {
            if t >= n {
                let fix = if n >= 3 {
                    format!("use train_rows from 2 to {}", n - 1)
                } else {
                    "use a file with at least 3 rows".to_string()
                };
                return Err(format!(
                    "{shown} has {n} data rows, so [data] train_rows = {t} in {spec} leaves no \
                     row to validate; {fix}"
                ));
            }
            Ok(n - t)
        }
    }
}

/// Reads CSV with a header, inferring each column's type from all of its
/// cells, so that a column is numeric unless some cell is not a number.
fn read_csv(bytes: &[u8]) -> polars::prelude::PolarsResult<DataFrame> {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
}

/// A CSV row with more cells than the header has names.
#[derive(Debug, PartialEq)]
struct LongerRow {
    /// The data row, from 1 (the header is row 0).
    row: usize,
    /// The line of the file where the row starts, from 1.
    line: usize,
    cells: usize,
    header: usize,
}

/// The line on which a CSV file's last quoted cell opens, if that cell
/// never closes.
fn unclosed_quote(bytes: &[u8]) -> Option<usize> {
    let (mut line, mut opened, mut quoted) = (1, 1, false);
    for &b in bytes {
        match b {
            b'"' => {
                quoted = !quoted;
                if quoted {
                    opened = line;
                }
            }
            b'\n' => line += 1,
            _ => {}
        }
    }
    quoted.then_some(opened)
}

/// The first row of a CSV file with more cells than its header, for the
/// message that replaces the reader's, which names no row.
fn longer_row(bytes: &[u8]) -> Option<LongerRow> {
    let lines = lines(bytes)?;
    let header = lines.first()?.cells;
    let (i, long) = lines[1..]
        .iter()
        .enumerate()
        .find(|(_, r)| r.cells > header)?;
    Some(LongerRow {
        row: i + 1,
        line: long.line,
        cells: long.cells,
        header,
    })
}

enum ParquetError {
    Polars(polars::prelude::PolarsError),
    Message(String),
}

/// Reads the columns of a Parquet file that the spec uses (the target and
/// the features; every column when the features are not listed), after
/// checking from the file's schema that each is stored in a type this
/// build reads: integers, floats and decimals, and booleans and text (which
/// then fail cell by cell with their row). Columns the spec does not
/// use are never read, whatever their type. Also returns the names of all
/// the file's columns, for messages.
fn read_parquet(
    bytes: &[u8],
    settings: &TableSettings,
    shown: &str,
    spec: &str,
) -> Result<(DataFrame, Vec<String>), ParquetError> {
    use polars::prelude::ArrowDataType as A;
    let mut reader = ParquetReader::new(Cursor::new(bytes));
    let schema = reader.schema().map_err(ParquetError::Polars)?;
    let all: Vec<String> = schema.iter_values().map(|f| f.name.to_string()).collect();
    let wanted = |name: &str| {
        name == settings.target
            || settings
                .features
                .as_ref()
                .is_none_or(|list| list.iter().any(|f| f == name))
    };
    let mut keep = Vec::new();
    for field in schema.iter_values().filter(|f| wanted(f.name.as_str())) {
        let readable = matches!(
            field.dtype,
            A::Null
                | A::Boolean
                | A::Int8
                | A::Int16
                | A::Int32
                | A::Int64
                | A::UInt8
                | A::UInt16
                | A::UInt32
                | A::UInt64
                | A::Decimal(..)
                | A::Decimal32(..)
                | A::Decimal64(..)
                | A::Float32
                | A::Float64
                | A::Utf8
                | A::LargeUtf8
                | A::Utf8View
        );
        if !readable {
            let leave_out = match settings.features {
                Some(_) if field.name.as_str() != settings.target => {
                    ", or leave it out of [data] features"
                }
                Some(_) => "",
                None => ", or list the columns to use in [data] features",
            };
            return Err(ParquetError::Message(format!(
                "{shown}: column {:?} is stored as {:?}, which wdsweep does not read; store it \
                 as integers, floats or decimals{leave_out} ({spec})",
                field.name.as_str(),
                field.dtype
            )));
        }
        keep.push(field.name.to_string());
    }
    let frame = reader
        .with_columns(Some(keep))
        .finish()
        .map_err(ParquetError::Polars)?;
    Ok((frame, all))
}

/// A column as finite numbers, or the first bad cell: its row (from 0) and
/// what is wrong. Integers and decimals become the nearest floats; text is
/// parsed, so a column that polars left as text because of one bad cell
/// names that cell.
fn numbers(column: &Column) -> Result<Vec<f64>, (usize, Bad)> {
    let check = |row: usize, x: Option<f64>| match x {
        None => Err((row, Bad::Empty)),
        Some(x) if !x.is_finite() => Err((row, Bad::NotFinite(x))),
        Some(x) if x.abs() > MAX_MAGNITUDE => Err((row, Bad::TooLarge(x))),
        Some(x) => Ok(x),
    };
    if column.dtype().is_primitive_numeric() || column.dtype().is_decimal() {
        let floats = column
            .cast(&DataType::Float64)
            .map_err(|e| (0, Bad::Text(e.to_string())))?;
        let floats = floats.f64().map_err(|e| (0, Bad::Text(e.to_string())))?;
        return floats
            .iter()
            .enumerate()
            .map(|(row, x)| check(row, x))
            .collect();
    }
    // Booleans, dates and the rest are read as their text, which then
    // fails to parse at the first cell that holds one.
    let text = column
        .cast(&DataType::String)
        .map_err(|_| (0, Bad::Text(format!("a value of type {}", column.dtype()))))?;
    let text = text.str().map_err(|e| (0, Bad::Text(e.to_string())))?;
    text.iter()
        .enumerate()
        .map(|(row, cell)| match cell.map(str::trim) {
            None | Some("") => Err((row, Bad::Empty)),
            Some(s) => match s.parse::<f64>() {
                Ok(x) => check(row, Some(x)),
                Err(_) => Err((row, Bad::Text(s.to_string()))),
            },
        })
        .collect()
}

/// Where a data row of a CSV file is, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    /// The line (from 1) on which the row starts.
    line: usize,
    /// A blank line, which the reader takes for a row of empty cells.
    blank: bool,
    /// Its cells: one more than its commas outside quotes.
    cells: usize,
}

/// The data rows of a CSV file as its reader sees them: every line is a
/// row, a blank one too, except the header, the part of a quoted field
/// that runs onto further lines, and the nothing after the file's last
/// line break. `None` if the bytes are not text.
fn records(bytes: &[u8]) -> Option<Vec<Record>> {
    // The header is not a data row.
    lines(bytes)?.get(1..).map(<[Record]>::to_vec)
}

/// [`records`], with the header first.
fn lines(bytes: &[u8]) -> Option<Vec<Record>> {
    std::str::from_utf8(bytes).ok()?;
    let mut found = Vec::new();
    let mut line = 1;
    let start = |line| Record {
        line,
        blank: true,
        cells: 1,
    };
    let mut current = start(1);
    let mut quoted = false;
    for &b in bytes {
        match b {
            b'\n' if quoted => line += 1,
            b'\n' => {
                found.push(current);
                line += 1;
                current = start(line);
            }
            b'"' => {
                quoted = !quoted;
                current.blank = false;
            }
            b',' if !quoted => {
                current.cells += 1;
                current.blank = false;
            }
            b'\r' => {}
            _ => current.blank = false,
        }
    }
    if !current.blank {
        found.push(current);
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_row_longer_than_the_header_is_found_past_quotes_and_blank_lines() {
        let long = |text: &str| longer_row(text.as_bytes());
        assert_eq!(long("a,b,y\n1,2,3\n4,5\n"), None);
        // A blank line is a row to the reader, and counts.
        assert_eq!(
            long("a,b,y\r\n1,2,3\r\n\r\n4,5,6,7\r\n8,9,1,2,3\r\n"),
            Some(LongerRow {
                row: 3,
                line: 4,
                cells: 4,
                header: 3
            })
        );
        // Commas and line breaks inside quotes are a cell's text; the last
        // line needs no line break.
        assert_eq!(
            long("a,\"b,c\",y\n1,\"x\ny,z\",3\n4,5,6,7"),
            Some(LongerRow {
                row: 2,
                line: 4,
                cells: 4,
                header: 3
            })
        );
    }

    #[test]
    fn a_csv_that_is_not_utf8_is_refused_with_its_line() {
        let Err(err) = table_bytes(b"a,y\n1,2\ncaf\xe9,3\n", Split::TrainRows(1), false) else {
            panic!("a Latin-1 file was read");
        };
        assert!(
            err.contains("line 3 holds bytes that are not UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn an_unnamed_feature_column_is_refused_by_its_position() {
        let Err(err) = table("a,,y\n1,2,3\n4,5,6\n7,8,9\n", Split::TrainRows(2), true) else {
            panic!("a column without a name was read");
        };
        assert!(err.contains("column 2 of the header has no name"), "{err}");
    }

    #[test]
    fn a_value_too_large_to_square_is_named_not_left_to_diverge() {
        let Err(err) = table("a,y\n1,2\n3,-4e200\n5,6\n", Split::TrainRows(2), true) else {
            panic!("a target of 4e200 was read");
        };
        assert!(
            err.contains("row 2 (line 3 of the file), column \"y\": the value -4e200 is too large"),
            "{err}"
        );
        // 1e150 itself is fine.
        assert!(table("a,y\n1,2\n3,-1e150\n5,6\n", Split::TrainRows(2), true).is_ok());
    }

    #[test]
    fn a_short_row_and_an_unclosed_quote_are_named_with_their_lines() {
        let Err(err) = table("a,b,y\n1,2,3\n4,5\n7,8,9\n", Split::TrainRows(2), true) else {
            panic!("a short row was read");
        };
        assert!(
            err.contains("row 2 (line 3 of the file) has 2 cells, but the header names 3"),
            "{err}"
        );
        let Err(err) = table("a,b,y\n1,2,3\n\"4,5,6\n7,8,9\n", Split::TrainRows(1), true) else {
            panic!("an unclosed quote was read");
        };
        assert!(
            err.contains("line 3 opens a quoted cell that is never closed"),
            "{err}"
        );
        assert!(err.lines().count() == 1, "{err}");
    }

    #[test]
    fn a_row_longer_than_the_header_is_named_with_its_line() {
        let Err(err) = table("a,b,y\n1,2,3\n4,5,6,7\n7,8,9\n", Split::TrainRows(2), true) else {
            panic!("a row of 4 cells under a header of 3 was read");
        };
        assert!(
            err.contains("row 2 (line 3 of the file) has 4 cells") && err.contains("3 columns"),
            "{err}"
        );
    }

    /// A table read from `csv`, with the given split and standardisation.
    fn table(csv: &str, split: Split, standardize: bool) -> Result<Table, String> {
        table_bytes(csv.as_bytes(), split, standardize)
    }

    /// [`table`] from bytes that need not be text.
    fn table_bytes(bytes: &[u8], split: Split, standardize: bool) -> Result<Table, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, bytes).unwrap();
        Table::load(
            TableSettings {
                path,
                written: "t.csv".into(),
                format: Format::Csv,
                target: "y".into(),
                features: None,
                split,
                standardize,
            },
            "s.toml",
        )
    }

    /// `n` rows of two features that vary and a target.
    fn rows(n: usize) -> String {
        let mut csv = String::from("a,b,y\n");
        for i in 0..n {
            csv.push_str(&format!("{i},{},{}\n", (i * 7) % 5, i as f64 * 0.5));
        }
        csv
    }

    #[test]
    fn columns_are_read_in_order_with_the_target_apart() {
        let t = table("a,y,b\n1,2,3\n4,5,6.5\n7,8,9\n", Split::TrainRows(2), false).unwrap();
        assert_eq!(t.features, ["a", "b"]);
        assert_eq!(t.x, ndarray::array![[1.0, 3.0], [4.0, 6.5], [7.0, 9.0]]);
        assert_eq!(t.y, ndarray::array![2.0, 5.0, 8.0]);
        assert_eq!(t.hash, blake3::hash(b"a,y,b\n1,2,3\n4,5,6.5\n7,8,9\n"));
    }

    #[test]
    fn a_seed_always_draws_the_same_split_and_seeds_differ() {
        let t = table(&rows(50), Split::ValFraction(0.2), true).unwrap();
        let (train, val) = t.rows(7);
        assert_eq!(t.rows(7), (train.clone(), val.clone()));
        assert_eq!(t.dataset(7).unwrap(), t.dataset(7).unwrap());
        assert_ne!(t.rows(8).1, val);
        // Every row lands in exactly one part, each part in file order.
        let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        assert!(train.is_sorted() && val.is_sorted());
    }

    #[test]
    fn the_validation_rows_number_round_n_f_and_at_least_one() {
        for (n, f, val) in [(50, 0.2, 10), (442, 0.2, 88), (10, 0.25, 3), (10, 0.01, 1)] {
            let t = table(&rows(n), Split::ValFraction(f), true).unwrap();
            assert_eq!(
                (t.num_val(), t.num_train()),
                (val, n - val),
                "n = {n}, f = {f}"
            );
            let (train, v) = t.rows(0);
            assert_eq!((train.len(), v.len()), (n - val, val));
        }
    }

    #[test]
    fn train_rows_takes_the_first_rows_for_every_seed() {
        let t = table(&rows(10), Split::TrainRows(6), false).unwrap();
        for seed in [0, 1, 99] {
            assert_eq!(
                t.rows(seed),
                ((0..6).collect::<Vec<_>>(), (6..10).collect::<Vec<_>>())
            );
        }
        let d = t.dataset(3).unwrap();
        assert_eq!(d.x_train.row(5), t.x.row(5));
        assert_eq!(d.y_val[0], t.y[6]);
    }

    #[test]
    fn standardised_training_columns_have_mean_0_and_population_std_1() {
        let t = table(&rows(40), Split::ValFraction(0.3), true).unwrap();
        let d = t.dataset(2).unwrap();
        for column in d.x_train.columns() {
            let mean = column.mean().unwrap();
            let std = column.std(0.0);
            assert!(mean.abs() < 1e-12, "mean {mean}");
            assert!((std - 1.0).abs() < 1e-12, "std {std}");
        }
        // Validation rows use the training rows' scale, not their own.
        let (train, val) = t.rows(2);
        let raw: Vec<f64> = train.iter().map(|&r| t.x[[r, 0]]).collect();
        let mean = raw.iter().sum::<f64>() / raw.len() as f64;
        let std = (raw.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / raw.len() as f64).sqrt();
        let expected = (t.x[[val[0], 0]] - mean) / std;
        assert!((d.x_val[[0, 0]] - expected).abs() < 1e-12);
        // The target keeps its units.
        assert_eq!(d.y_val[0], t.y[val[0]]);
    }

    #[test]
    fn a_column_constant_in_one_seeds_training_rows_is_found_before_the_run() {
        // Column c is 0 except in one row: constant on every split that
        // validates that row, and on no other.
        let mut csv = String::from("a,c,y\n");
        for i in 0..10 {
            csv.push_str(&format!("{i},{},{i}\n", u8::from(i == 4)));
        }
        let t = table(&csv, Split::ValFraction(0.5), true).unwrap();
        let flat = (0..100u64).find(|&s| t.rows(s).1.contains(&4)).unwrap();
        let fine = (0..100u64).find(|&s| t.rows(s).0.contains(&4)).unwrap();
        assert!(t.dataset(fine).is_ok());
        let err = t.dataset(flat).unwrap_err();
        assert!(
            err.contains("column \"c\"") && err.contains(&format!("seed {flat}")),
            "{err}"
        );
        assert!(
            t.check_run(1, &SeedAxis::List(vec![fine]), "s.toml")
                .is_ok()
        );
        let err = t
            .check_run(1, &SeedAxis::List(vec![fine, flat]), "s.toml")
            .unwrap_err();
        assert!(err.contains(&format!("seed {flat}")), "{err}");
        // Raw features need no spread.
        let raw = table(&csv, Split::ValFraction(0.5), false).unwrap();
        assert!(
            raw.check_run(1, &SeedAxis::List(vec![flat]), "s.toml")
                .is_ok()
        );
    }

    #[test]
    fn values_equal_but_for_rounding_count_as_constant() {
        // The mean of three 0.1's is not 0.1 in floating point; the check
        // must not be fooled into dividing by a rounding error.
        let t = table(
            "a,b,y\n0.1,1,1\n0.1,2,2\n0.1,3,3\n5,4,4\n",
            Split::TrainRows(3),
            true,
        )
        .unwrap();
        let err = t
            .check_run(1, &SeedAxis::List(vec![0]), "s.toml")
            .unwrap_err();
        assert!(err.contains("column \"a\"") && err.contains("0.1"), "{err}");
    }

    #[test]
    fn the_first_bad_cell_of_the_file_is_named_with_its_row_and_line() {
        let err = table(
            "a,b,y\n1,2,3\n4,,6\n\"7\",x,9\n",
            Split::TrainRows(2),
            false,
        )
        .unwrap_err();
        assert!(
            err.contains("row 2 (line 3 of the file), column \"b\": the cell is empty"),
            "{err}"
        );
        // A quoted line break moves the lines on but not the rows.
        let err = table(
            "a,b,y\n1,\"2\",3\n4,5,6\n7,\"x\ny\",9\n",
            Split::TrainRows(2),
            false,
        )
        .unwrap_err();
        assert!(
            err.contains("row 3 (line 4 of the file), column \"b\""),
            "{err}"
        );
        assert!(err.contains("\"x\\ny\" is not a number"), "{err}");
    }

    #[test]
    fn records_are_lines_but_the_header_and_quoted_line_breaks() {
        let found = records(b"a,b\n1,2\n\n3,4\r\n\r\n5,\"6\n7\"\n8,9").unwrap();
        let lines: Vec<(usize, bool)> = found.iter().map(|r| (r.line, r.blank)).collect();
        assert_eq!(
            lines,
            [
                (2, false),
                (3, true),
                (4, false),
                (5, true),
                (6, false),
                (8, false)
            ]
        );
        // The line break that ends the file starts no row.
        assert_eq!(records(b"a\n1\n").unwrap().len(), 1);
        assert_eq!(records(b"a\n").unwrap(), []);
        assert_eq!(records(b"a\n\xff\n"), None);
    }

    #[test]
    fn a_blank_line_is_named_as_one() {
        for csv in ["a,y\n1,2\n\n3,4\n5,6\n", "a,y\n1,2\n3,4\n5,6\n\n\n"] {
            let err = table(csv, Split::TrainRows(2), false).unwrap_err();
            assert!(
                err.contains("is a blank line") && err.contains("remove the line"),
                "{err}"
            );
        }
        let err = table("a,y\n1,2\n\n3,4\n5,6\n", Split::TrainRows(2), false).unwrap_err();
        assert!(err.contains("row 2 (line 3 of the file)"), "{err}");
    }
}
