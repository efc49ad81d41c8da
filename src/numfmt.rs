//! Printing floats so that what a person reads is what the program used.
//!
//! Every number that wdsweep shows or writes as text (terminal, Markdown,
//! plot labels) goes through [`short`]: the shortest decimal text that parses
//! back to the same `f64`. Rust's `Display` for `f64` already finds the
//! shortest digits, but it never switches to an exponent, so `1e-300` would be
//! printed as three hundred zeros; this module picks the exponent form for
//! very small and very large magnitudes.

/// The shortest text that reads back to exactly `x` (`0.3`, `30`, `1e-7`).
///
/// Non-finite values are spelled `nan`, `inf` and `-inf`; callers that must
/// not show them (tables, CSV) turn them into empty cells before this point.
pub fn short(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let magnitude = x.abs();
    if magnitude != 0.0 && !(1e-5..1e16).contains(&magnitude) {
        // `{:e}` also yields the shortest round-tripping digits.
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// [`short`] for an optional value; `None` is an empty string.
pub fn short_opt(x: Option<f64>) -> String {
    x.map(short).unwrap_or_default()
}

/// A value with a fixed number of significant digits, for tables meant to be
/// read rather than parsed back (the terminal summary). Trailing zeros go.
pub fn sig(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return short(x);
    }
    let text = format!("{:.*e}", digits.saturating_sub(1), x);
    let value: f64 = text.parse().unwrap_or(x);
    short(value)
}

/// `word`, or its plural for any count but one: "1 seed", "2 seeds".
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// A count with its thousands set apart by spaces: `1 950`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_text_round_trips() {
        for x in [
            0.3,
            0.1 + 0.2,
            1.0,
            30.0,
            1e-3,
            3e-7,
            1e300,
            -2.5,
            0.0,
            123456.789,
        ] {
            let text = short(x);
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                x.to_bits(),
                "{text}"
            );
        }
        assert_eq!(short(0.3), "0.3");
        assert_eq!(short(1.0), "1");
        assert_eq!(short(1e-7), "1e-7");
        assert_eq!(short(0.001), "0.001");
        assert_eq!(short(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(950), "950");
        assert_eq!(grouped(1950), "1 950");
        assert_eq!(grouped(1_000_000), "1 000 000");
    }

    #[test]
    fn significant_digits_drop_trailing_zeros() {
        assert_eq!(sig(0.0123456, 3), "0.0123");
        assert_eq!(sig(2.0, 4), "2");
        assert_eq!(sig(1.23456e-8, 2), "1.2e-8");
    }
}
