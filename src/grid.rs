//! Grid axes, their expansion into exact values, and job numbering.
//!
//! Axes expand in a fixed order — λ, then lr, then seed varying fastest —
//! and job `i` (from 0) is the i-th point of that product (DESIGN.md §4).
//! Range ends are exactly the values written, and linear ranges are computed
//! in decimal arithmetic, so `{ linear = [0.8, 1.0], step = 0.1 }` gives
//! 0.8, 0.9 and 1.0 and not 0.9000000000000001. Seed ranges are never
//! materialised, so the size of a grid is known, and checked, before
//! anything proportional to it is allocated.

use crate::numfmt::short;

/// A float axis as written in the spec.
#[derive(Debug, Clone, PartialEq)]
pub enum FloatAxis {
    List(Vec<f64>),
    Log {
        start: f64,
        end: f64,
        num: u64,
        zero: bool,
    },
    LinearNum {
        start: f64,
        end: f64,
        num: u64,
        zero: bool,
    },
    LinearStep {
        start: f64,
        end: f64,
        step: f64,
        zero: bool,
    },
}

/// The seed axis as written in the spec.
#[derive(Debug, Clone, PartialEq)]
pub enum SeedAxis {
    List(Vec<u64>),
    Range { start: u64, count: u64 },
}

/// Which values an axis admits.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    /// λ: zero or more.
    NonNegative,
    /// lr: more than zero.
    Positive,
}

/// The expanded grid. Seeds stay compact (a range is two numbers).
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub lambdas: Vec<f64>,
    pub lrs: Vec<f64>,
    pub seeds: SeedAxis,
}

/// One point of the grid, by its position on each axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobIndex {
    pub job: u64,
    pub lambda: usize,
    pub lr: usize,
    pub seed: usize,
}

impl SeedAxis {
    pub fn len(&self) -> u64 {
        match self {
            SeedAxis::List(v) => v.len() as u64,
            SeedAxis::Range { count, .. } => *count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th seed; `i` must be below [`SeedAxis::len`].
    pub fn get(&self, i: usize) -> u64 {
        match self {
            SeedAxis::List(v) => v[i],
            SeedAxis::Range { start, .. } => start + i as u64,
        }
    }
}

impl Grid {
    /// Checks the axes (non-empty, no duplicates) and the total job count
    /// (no overflow, at most `max_jobs`).
    pub fn new(lambdas: Vec<f64>, lrs: Vec<f64>, seeds: SeedAxis) -> Result<Grid, String> {
        if seeds.is_empty() {
            return Err("[grid] seed is empty; give at least one seed (for example \
                        seed = { count = 5 })"
                .into());
        }
        if let SeedAxis::List(list) = &seeds {
            let mut sorted = list.clone();
            sorted.sort_unstable();
            if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                return Err(format!(
                    "[grid] seed lists {} twice; each seed may appear once",
                    w[0]
                ));
            }
        }
        Ok(Grid {
            lambdas,
            lrs,
            seeds,
        })
    }

    /// The number of jobs, or `None` if it does not fit in a u64.
    pub fn checked_len(&self) -> Option<u64> {
        (self.lambdas.len() as u64)
            .checked_mul(self.lrs.len() as u64)?
            .checked_mul(self.seeds.len())
    }

    /// The number of jobs. Only call on a grid whose size was checked.
    pub fn len(&self) -> u64 {
        self.checked_len()
            .expect("grid size checked when the spec was read")
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The axis positions of job `job` (seed fastest, then lr, then λ).
    pub fn index(&self, job: u64) -> JobIndex {
        let ns = self.seeds.len();
        let nlr = self.lrs.len() as u64;
        JobIndex {
            job,
            seed: (job % ns) as usize,
            lr: ((job / ns) % nlr) as usize,
            lambda: (job / ns / nlr) as usize,
        }
    }

    /// Job `job`'s position and values: (position, λ, lr, seed).
    pub fn point(&self, job: u64) -> (JobIndex, f64, f64, u64) {
        let index = self.index(job);
        (
            index,
            self.lambdas[index.lambda],
            self.lrs[index.lr],
            self.seeds.get(index.seed),
        )
    }

    /// The job number of a point of the grid.
    pub fn job(&self, lambda: usize, lr: usize, seed: usize) -> u64 {
        ((lambda as u64) * (self.lrs.len() as u64) + lr as u64) * self.seeds.len() + seed as u64
    }
}

/// The most values one float axis may expand to.
pub const MAX_AXIS: u64 = 100_000_000;

/// How many values an axis will expand to, without expanding it.
pub fn float_axis_len(axis: &FloatAxis) -> u64 {
    match axis {
        FloatAxis::List(v) => v.len() as u64,
        FloatAxis::Log { num, zero, .. } | FloatAxis::LinearNum { num, zero, .. } => {
            num.saturating_add(*zero as u64)
        }
        FloatAxis::LinearStep {
            start,
            end,
            step,
            zero,
        } => {
            let steps = if *step > 0.0 && end >= start {
                ((end - start) / step).round()
            } else {
                0.0
            };
            // A float estimate is enough to refuse a huge grid early; the exact
            // count comes from decimal arithmetic in `expand_float`.
            (steps.min(u64::MAX as f64) as u64).saturating_add(1 + *zero as u64)
        }
    }
}

/// Expands a float axis into its values, checking them against `bound`.
/// `key` names the axis in messages (`[grid] lambda`).
pub fn expand_float(axis: &FloatAxis, key: &str, bound: Bound) -> Result<Vec<f64>, String> {
    let len = float_axis_len(axis);
    if len > MAX_AXIS {
        return Err(format!(
            "{key} would have {len} values, more than the {MAX_AXIS} one axis may hold"
        ));
    }
    let mut values = match axis {
        FloatAxis::List(v) => v.clone(),
        FloatAxis::Log {
            start,
            end,
            num,
            zero,
        } => {
            let (a, b, n) = (*start, *end, *num);
            if a <= 0.0 || b <= 0.0 {
                let hint = match bound {
                    Bound::NonNegative => "; to include λ = 0, add zero = true to the range",
                    Bound::Positive => "",
                };
                return Err(format!(
                    "{key}: a log range needs both ends above 0, got [{}, {}]{hint}",
                    short(a),
                    short(b)
                ));
            }
            check_range_shape(key, a, b, n)?;
            let mut v = log_points(a, b, n);
            if *zero {
                v.insert(0, 0.0);
            }
            v
        }
        FloatAxis::LinearNum {
            start,
            end,
            num,
            zero,
        } => {
            check_range_shape(key, *start, *end, *num)?;
            let mut v = linear_num(*start, *end, *num).map_err(|m| format!("{key}: {m}"))?;
            if *zero {
                v.insert(0, 0.0);
            }
            v
        }
        FloatAxis::LinearStep {
            start,
            end,
            step,
            zero,
        } => {
            if *step <= 0.0 {
                return Err(format!("{key}: step = {} must be above 0", short(*step)));
            }
            if start > end {
                return Err(format!(
                    "{key}: the range starts at {} and ends at {}; write the smaller end first",
                    short(*start),
                    short(*end)
                ));
            }
            let mut v = linear_step(*start, *end, *step).map_err(|m| format!("{key}: {m}"))?;
            if *zero {
                v.insert(0, 0.0);
            }
            v
        }
    };

    if values.is_empty() {
        return Err(format!("{key} is empty; give at least one value"));
    }
    for v in &mut values {
        // -0.0 and 0.0 are the same setting; keep one bit pattern for keys.
        if *v == 0.0 {
            *v = 0.0;
        }
        let ok = match bound {
            Bound::NonNegative => *v >= 0.0,
            Bound::Positive => *v > 0.0,
        };
        if !ok {
            let what = match bound {
                Bound::NonNegative => "0 or more",
                Bound::Positive => "above 0",
            };
            return Err(format!(
                "{key} holds {}; every value must be {what}",
                short(*v)
            ));
        }
    }
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        // A list repeats what was written; a range repeats only when its
        // points are closer than floats can tell apart.
        let fix = match axis {
            FloatAxis::List(_) => "each value may appear once (a repeat would be counted twice \
                                   in the averages)"
                .to_string(),
            _ => format!(
                "the range is too narrow for {} distinct floats; widen it or ask for fewer points",
                values.len()
            ),
        };
        return Err(format!("{key} holds {} twice; {fix}", short(w[0])));
    }
    Ok(values)
}

fn check_range_shape(key: &str, a: f64, b: f64, n: u64) -> Result<(), String> {
    if n == 0 {
        return Err(format!("{key}: num = 0; a range needs at least one point"));
    }
    if a > b {
        return Err(format!(
            "{key}: the range starts at {} and ends at {}; write the smaller end first",
            short(a),
            short(b)
        ));
    }
    if n == 1 && a != b {
        return Err(format!(
            "{key}: num = 1 but the ends differ ({} and {}); use num = 2 or more, or a list",
            short(a),
            short(b)
        ));
    }
    if n > 1 && a == b {
        return Err(format!(
            "{key}: both ends are {} so all {n} points would be the same; use num = 1 or a list",
            short(a)
        ));
    }
    Ok(())
}

/// `n` points evenly spaced in log10 from `a` to `b`; the ends are exactly
/// `a` and `b`.
fn log_points(a: f64, b: f64, n: u64) -> Vec<f64> {
    if n == 1 {
        return vec![a];
    }
    let (la, lb) = (a.log10(), b.log10());
    let last = n - 1;
    (0..n)
        .map(|i| match i {
            0 => a,
            i if i == last => b,
            i => 10f64.powf(la + (lb - la) * (i as f64) / (last as f64)),
        })
        .collect()
}

/// A finite float as an exact decimal: `mantissa · 10^exponent`.
fn to_decimal(x: f64) -> (i128, i32) {
    // `{:e}` prints the shortest digits that read back to `x`, which is the
    // decimal the user wrote whenever the user wrote at most 17 digits.
    let text = format!("{x:e}");
    let (digits, exp) = text.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("integer exponent");
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let mantissa: i128 = format!("{int_part}{frac_part}")
        .parse()
        .expect("decimal digits");
    (mantissa, exp - frac_part.len() as i32)
}

/// Brings decimals to a common exponent; `None` if that overflows.
fn common_scale(values: &[(i128, i32)]) -> Option<(Vec<i128>, i32)> {
    let exp = values.iter().map(|v| v.1).min()?;
    let scaled = values
        .iter()
        .map(|&(m, e)| {
            10i128
                .checked_pow((e - exp) as u32)
                .and_then(|p| m.checked_mul(p))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((scaled, exp))
}

/// The float nearest to `num / den · 10^exp`, by long division to 40
/// significant digits and Rust's correctly rounded parser.
fn rational_to_f64(num: i128, den: i128, exp: i32) -> f64 {
    let negative = (num < 0) != (den < 0) && num != 0;
    let (num, den) = (num.unsigned_abs(), den.unsigned_abs());
    let mut text = String::with_capacity(48);
    if negative {
        text.push('-');
    }
    text.push_str(&(num / den).to_string());
    text.push('.');
    let mut rem = num % den;
    for _ in 0..40 {
        rem *= 10;
        text.push(char::from(b'0' + (rem / den) as u8));
        rem %= den;
    }
    text.push_str(&format!("e{exp}"));
    text.parse().expect("decimal text")
}

const TOO_WIDE: &str = "the range's ends and step differ too much in magnitude to be \
    computed exactly; list the values instead";

fn linear_num(a: f64, b: f64, n: u64) -> Result<Vec<f64>, String> {
    if n == 1 {
        return Ok(vec![a]);
    }
    let (s, exp) = common_scale(&[to_decimal(a), to_decimal(b)]).ok_or(TOO_WIDE)?;
    let (start, end) = (s[0], s[1]);
    let last = i128::from(n - 1);
    (0..n)
        .map(|i| {
            let i = i128::from(i);
            // value_i = start + (end - start)·i / last, as one fraction.
            let num = start
                .checked_mul(last)
                .and_then(|x| (end - start).checked_mul(i).and_then(|y| x.checked_add(y)))
                .ok_or(TOO_WIDE)?;
            Ok(match i {
                0 => a,
                i if i == last => b,
                _ => rational_to_f64(num, last, exp),
            })
        })
        .collect()
}

fn linear_step(a: f64, b: f64, step: f64) -> Result<Vec<f64>, String> {
    let (s, exp) =
        common_scale(&[to_decimal(a), to_decimal(b), to_decimal(step)]).ok_or(TOO_WIDE)?;
    let (start, end, st) = (s[0], s[1], s[2]);
    let span = end - start;
    if span % st != 0 {
        return Err(format!(
            "step = {} does not divide the range from {} to {} into whole steps; choose a step \
             that does, or use num = N",
            short(step),
            short(a),
            short(b)
        ));
    }
    let steps = span / st;
    if steps >= 10_000_000 {
        return Err(format!(
            "step = {} gives {} points; that is more than a sweep axis should hold",
            short(step),
            steps + 1
        ));
    }
    Ok((0..=steps)
        .map(|i| rational_to_f64(start + i * st, 1, exp))
        .collect())
}

/// Expands the seed axis, refusing duplicates and overflow. Ranges stay
/// compact.
pub fn expand_seeds(axis: &SeedAxis) -> Result<SeedAxis, String> {
    match axis {
        SeedAxis::Range { start, count } => {
            if *count == 0 {
                return Err("[grid] seed: count = 0; give at least one seed".into());
            }
            if start.checked_add(count - 1).is_none() {
                return Err(format!(
                    "[grid] seed: start = {start} with count = {count} runs past the largest \
                     seed, {}",
                    u64::MAX
                ));
            }
            Ok(axis.clone())
        }
        SeedAxis::List(v) if v.is_empty() => {
            Err("[grid] seed is empty; give at least one seed".into())
        }
        SeedAxis::List(_) => Ok(axis.clone()),
    }
}

/// "; did you mean 'x'?" when `word` is a small edit away from a known
/// name, else an empty string.
pub fn suggest(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| format!("; did you mean '{k}'?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(axis: FloatAxis) -> Vec<f64> {
        expand_float(&axis, "[grid] lambda", Bound::NonNegative).unwrap()
    }

    #[test]
    fn a_list_is_kept_in_order() {
        assert_eq!(
            expand(FloatAxis::List(vec![3.0, 0.0, 0.1])),
            vec![3.0, 0.0, 0.1]
        );
    }

    #[test]
    fn log_range_ends_are_exactly_as_written() {
        let v = expand(FloatAxis::Log {
            start: 1e-3,
            end: 30.0,
            num: 12,
            zero: false,
        });
        assert_eq!(v.len(), 12);
        assert_eq!(v[0].to_bits(), 1e-3f64.to_bits());
        assert_eq!(v[11].to_bits(), 30f64.to_bits());
        assert!(v.windows(2).all(|w| w[0] < w[1]));
        let ratio = v[1] / v[0];
        assert!(
            v.windows(2)
                .all(|w| (w[1] / w[0] / ratio - 1.0).abs() < 1e-12)
        );
    }

    #[test]
    fn log_range_decades_are_round() {
        let v = expand(FloatAxis::Log {
            start: 1e-3,
            end: 1e3,
            num: 7,
            zero: true,
        });
        assert_eq!(v, vec![0.0, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3]);
    }

    #[test]
    fn linear_step_is_decimal_exact() {
        let v = expand(FloatAxis::LinearStep {
            start: 0.8,
            end: 1.0,
            step: 0.1,
            zero: false,
        });
        assert_eq!(v, vec![0.8, 0.9, 1.0]);
        let v = expand(FloatAxis::LinearStep {
            start: 0.0,
            end: 0.3,
            step: 0.1,
            zero: false,
        });
        assert_eq!(v, vec![0.0, 0.1, 0.2, 0.3]);
    }

    #[test]
    fn linear_num_hits_round_values() {
        let v = expand(FloatAxis::LinearNum {
            start: 0.01,
            end: 0.05,
            num: 5,
            zero: false,
        });
        assert_eq!(v, vec![0.01, 0.02, 0.03, 0.04, 0.05]);
        let v = expand(FloatAxis::LinearNum {
            start: 0.0,
            end: 1.0,
            num: 4,
            zero: false,
        });
        assert_eq!(v, vec![0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]);
    }

    #[test]
    fn a_step_that_does_not_divide_is_refused() {
        let err = expand_float(
            &FloatAxis::LinearStep {
                start: 0.0,
                end: 1.0,
                step: 0.3,
                zero: false,
            },
            "[grid] lr",
            Bound::NonNegative,
        )
        .unwrap_err();
        assert!(err.contains("does not divide"), "{err}");
    }

    #[test]
    fn log_range_through_zero_suggests_zero_true() {
        let err = expand_float(
            &FloatAxis::Log {
                start: 0.0,
                end: 1.0,
                num: 3,
                zero: false,
            },
            "[grid] lambda",
            Bound::NonNegative,
        )
        .unwrap_err();
        assert!(err.contains("zero = true"), "{err}");
    }

    #[test]
    fn jobs_vary_seed_fastest() {
        let grid = Grid::new(
            vec![0.0, 1.0],
            vec![0.1, 0.2, 0.3],
            SeedAxis::Range { start: 7, count: 2 },
        )
        .unwrap();
        assert_eq!(grid.len(), 12);
        let order: Vec<(usize, usize, usize)> = (0..12)
            .map(|j| grid.index(j))
            .map(|i| (i.lambda, i.lr, i.seed))
            .collect();
        assert_eq!(order[0], (0, 0, 0));
        assert_eq!(order[1], (0, 0, 1));
        assert_eq!(order[2], (0, 1, 0));
        assert_eq!(order[6], (1, 0, 0));
        assert_eq!(order[11], (1, 2, 1));
        for j in 0..12 {
            let i = grid.index(j);
            assert_eq!(grid.job(i.lambda, i.lr, i.seed), j);
        }
        assert_eq!(grid.seeds.get(1), 8);
    }

    #[test]
    fn suggestions_catch_small_typos() {
        assert_eq!(
            suggest("lamda", &["lambda", "lr", "seed"]),
            "; did you mean 'lambda'?"
        );
        assert_eq!(suggest("zzzzzz", &["lambda", "lr", "seed"]), "");
    }
}
