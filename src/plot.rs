//! PNG figures that help a person pick the weight-decay strength λ from a sweep.
//!
//! This module owns the two figures `wdsweep` writes next to its summary tables:
//!
//! * [`val_loss_vs_lambda`]: mean validation loss of every (λ, lr) cell against λ, one
//!   line per learning rate, ± SEM error bars, a red × on cells where runs diverged and a
//!   ring on the recommended cell.
//! * [`loss_curves`]: the figure of *Dive into Deep Learning* §3.7 — training and
//!   validation loss per epoch on a log axis, one panel per λ, at one learning rate.
//!
//! It only draws. Every number arrives already aggregated over seeds, so the figures
//! cannot disagree with the tables the rest of the crate prints, and every number written
//! on a figure goes through `crate::numfmt::short` so it reads exactly like the tables
//! (`0.001`, `1e-7`, `30`). Output paths must end in `.png` (the bitmap backend picks the
//! encoder from the extension).
//!
//! Design decisions worth knowing before changing anything:
//!
//! * **λ = 0 on a log axis.** A sweep normally includes the unregularised baseline λ = 0,
//!   which has no position on a logarithmic axis, yet it is the comparison that matters
//!   most, so it must not be dropped. The λ axis is therefore drawn in log10 space with an
//!   extra slot to the left of the smallest positive λ (one decade below its decade for a
//!   typical grid), labelled `0` and separated from the positive decades by an axis break
//!   (`//`) and a dashed divider. Segments that cross the break are dashed because their
//!   slope means nothing.
//! * **Log or linear loss axis.** Validation losses across a sweep often lie within a
//!   factor of a few of each other, where a log axis wastes most of the height; the y axis
//!   of the λ figure is logarithmic only when the means span more than 1.5 decades, and
//!   its label says which scale is used. Loss curves always use a log axis (as in the
//!   book), shared by all panels so they can be compared at a glance.
//! * **Hand-made ticks.** Axes are plotted in transformed coordinates (log10 where
//!   logarithmic) by `Ticks`, a plotters coordinate with explicit tick positions —
//!   decades, or 1-2-5 steps — computed from exact decimals, so labels never show float
//!   noise (`0.30000000000000004`) and the λ = 0 slot can carry its own label.
//! * **Diverged cells.** A red × sits on the mean of every cell with diverged runs. A cell
//!   whose runs diverged and that has no mean at all (no ok seed) gets a × in a lane above
//!   the data, one lane per learning rate, in that rate's colour; the headroom for the
//!   lanes is reserved in the y range so they never cover a point.
//! * **Nothing covers data.** The λ figure keeps its legend in a side panel and places the
//!   "chosen" label at whichever candidate spot around the ring covers the fewest drawn
//!   pixels; the loss-curve figure has a legend strip under the title.
//! * **Bounded output.** At most twelve loss-curve panels (four per row) are drawn, and
//!   the figure says when curves were left out.
//! * **Determinism.** Text is rendered with the DejaVu Sans font embedded in the binary
//!   (through `ab_glyph`: no system font lookup), nothing depends on time or hash order,
//!   and the PNG encoder is deterministic, so identical inputs give byte-identical files.
//! * **Robustness.** Any input is accepted without panicking: empty slices, one point,
//!   missing values (`None`), only λ = 0, extreme magnitudes. Values that cannot be placed
//!   (negative or non-finite λ, non-positive loss on a log axis) are left out, and the
//!   legend counts cells that are not drawn.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontFamily, FontStyle, register_font};

use crate::numfmt::short;

/// One (lambda, lr) cell of the sweep summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Weight-decay strength λ (0 = no weight decay).
    pub lambda: f64,
    /// Learning rate.
    pub lr: f64,
    /// Mean val_loss over ok seeds; `None` if no ok seed.
    pub mean: Option<f64>,
    /// Standard error of the mean; `None` if fewer than 2 ok seeds.
    pub sem: Option<f64>,
    /// Jobs in the cell.
    pub n: usize,
    /// Of which diverged.
    pub n_diverged: usize,
}

/// One line of the loss-curve figure: means over seeds per epoch (index 0 = initial weights).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Weight-decay strength λ of this panel.
    pub lambda: f64,
    /// Mean training loss per epoch; `None` where no seed has a value.
    pub train: Vec<Option<f64>>,
    /// Mean validation loss per epoch; `None` where no seed has a value.
    pub val: Vec<Option<f64>>,
}

/// The recommended cell, marked on the λ figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Recommended weight-decay strength λ.
    pub lambda: f64,
    /// Learning rate of the recommended cell.
    pub lr: f64,
}

/// Size of the validation-loss-vs-λ figure.
const VAL_SIZE: (u32, u32) = (1024, 640);
/// Width of the legend panel at the right of the λ figure.
const LEGEND_W: u32 = 236;
/// Rough height of the λ figure's plotting area, used to turn pixels of headroom into a
/// fraction of the y range before the chart exists.
const VAL_PLOT_H_ESTIMATE: f64 = 470.0;
/// Panels beyond this many are not drawn (the figure says so); keeps the image bounded.
const MAX_PANELS: usize = 12;
/// Learning rates listed individually in the legend before "… and N more".
const MAX_LEGEND_LRS: usize = 14;
/// Width of the y tick-label area of each loss-curve panel.
const PANEL_Y_LABELS: u32 = 80;
/// Epoch markers are drawn only up to this many epochs (beyond, they would merge).
const MAX_MARKED_EPOCHS: usize = 60;

const FONT: FontFamily<'static> = FontFamily::SansSerif;
const TEXT: RGBColor = RGBColor(25, 25, 25);
const MUTED: RGBColor = RGBColor(110, 110, 110);
const AXIS: RGBColor = RGBColor(60, 60, 60);
const GRID_BOLD: RGBColor = RGBColor(208, 208, 208);
const GRID_LIGHT: RGBColor = RGBColor(241, 241, 241);
/// Reserved for "diverged" marks and the PARTIAL RUN warning; absent from [`PALETTE`].
const ALERT: RGBColor = RGBColor(214, 39, 40);
/// Line colours, one per learning rate (the tab10 palette without its red).
const PALETTE: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const TRAIN_COLOR: RGBColor = PALETTE[0];
const VAL_COLOR: RGBColor = PALETTE[1];

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<Ticks, Ticks>>;

/// Draws the mean validation loss of every (λ, lr) cell against λ (about 1024×640).
///
/// `title` is e.g. "grid: validation loss vs λ"; when `partial` is true the title also
/// says "(PARTIAL RUN)" in red. `path` must end in `.png`.
pub fn val_loss_vs_lambda(
    path: &Path,
    cells: &[Cell],
    choice: Option<&Choice>,
    title: &str,
    partial: bool,
) -> Result<()> {
    render(path, VAL_SIZE, |root| {
        draw_val_loss(root, cells, choice, title, partial)
    })
}

/// The book's figure (Dive into Deep Learning §3.7): training and validation loss per
/// epoch on a log y axis, one panel per curve (side by side, wrapping after four), at
/// learning rate `lr`, which the title states. `path` must end in `.png`.
pub fn loss_curves(
    path: &Path,
    curves: &[Curve],
    lr: f64,
    title: &str,
    partial: bool,
) -> Result<()> {
    let layout = PanelLayout::new(curves.len());
    render(path, layout.size(), |root| {
        draw_loss_curves(root, &layout, curves, lr, title, partial)
    })
}

// ---------------------------------------------------------------------------------------
// Rendering plumbing

/// Registers the embedded font once per process; plotters' `ab_glyph` backend looks fonts
/// up by family name and has no fallback.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        // The error type implements neither Debug nor Error, so only success is kept.
        let regular = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        // Bold is optional: without it plotters falls back to the regular face.
        let _ = register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
        regular.is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("cannot load the embedded DejaVu Sans font"))
    }
}

/// The bitmap backend picks the image format from the file extension, so anything but
/// `.png` would silently produce another format or fail late.
fn check_png_path(path: &Path) -> Result<()> {
    let is_png = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png {
        Ok(())
    } else {
        bail!("the file name must end in .png")
    }
}

fn render<F>(path: &Path, size: (u32, u32), draw: F) -> Result<()>
where
    F: FnOnce(&Area<'_>) -> Result<()>,
{
    let result = (|| -> Result<()> {
        ensure_font()?;
        check_png_path(path)?;
        let root = BitMapBackend::new(path, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
        Ok(())
    })();
    result.with_context(|| format!("cannot write plot {}", path.display()))
}

fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FONT, size, FontStyle::Normal)
}

fn bold(size: f64) -> FontDesc<'static> {
    FontDesc::new(FONT, size, FontStyle::Bold)
}

fn anchored(f: FontDesc<'static>, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    f.color(&color).pos(Pos::new(h, v))
}

fn put_text(area: &Area<'_>, s: &str, at: (i32, i32), style: &TextStyle<'_>) -> Result<()> {
    if !s.is_empty() {
        area.draw(&Text::new(s, at, style.clone()))?;
    }
    Ok(())
}

/// `name = x` then `after`, with `x` exactly as [`short`] writes it if that
/// fits in `width` pixels, else `name ≈ x` rounded to fewer significant
/// digits (a point inside a log range has 17 of them). The tables and
/// best.json keep the exact value.
fn number_label(
    area: &Area<'_>,
    style: &TextStyle<'_>,
    width: i32,
    (name, x, after): (&str, f64, &str),
) -> Result<String> {
    let exact = format!("{name} = {}{after}", short(x));
    if text_size(area, &exact, style)?.0 <= width {
        return Ok(exact);
    }
    let mut label = exact;
    for digits in [6, 4, 3, 2] {
        label = format!("{name} ≈ {}{after}", crate::numfmt::sig(x, digits));
        if text_size(area, &label, style)?.0 <= width {
            break;
        }
    }
    Ok(label)
}

fn text_size(area: &Area<'_>, s: &str, style: &TextStyle<'_>) -> Result<(i32, i32)> {
    if s.is_empty() {
        return Ok((0, 0));
    }
    let (w, h) = area.estimate_text_size(s, style)?;
    Ok((to_i32(w), to_i32(h)))
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Title centred in `area`, shrunk to fit; "(PARTIAL RUN)" follows in red when `partial`.
fn draw_title(area: &Area<'_>, title: &str, partial: bool) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    let (w, mid) = (to_i32(w), to_i32(h) / 2);
    let suffix = match (partial, title.is_empty()) {
        (false, _) => "",
        (true, true) => "(PARTIAL RUN)",
        (true, false) => "  (PARTIAL RUN)",
    };
    let mut size = 24.0;
    loop {
        let main = anchored(bold(size), TEXT, HPos::Left, VPos::Center);
        let warn = anchored(bold(size), ALERT, HPos::Left, VPos::Center);
        let (wa, _) = text_size(area, title, &main)?;
        let (wb, _) = text_size(area, suffix, &warn)?;
        let total = wa.saturating_add(wb);
        if total <= w - 24 || size <= 11.0 {
            let x = ((w - total) / 2).max(8);
            put_text(area, title, (x, mid), &main)?;
            return put_text(area, suffix, (x.saturating_add(wa), mid), &warn);
        }
        size -= 1.0;
    }
}

/// Text centred in the plotting area of a chart (used for "nothing to plot" notes).
fn centre_note(chart: &Chart<'_, '_>, root: &Area<'_>, lines: &[&str]) -> Result<()> {
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let x = xs.start + (xs.end - xs.start) / 2;
    let y = ys.start + (ys.end - ys.start) / 2;
    let style = anchored(font(16.0), MUTED, HPos::Center, VPos::Center);
    let n = i32::try_from(lines.len()).unwrap_or(0);
    let mut w = 0;
    for line in lines {
        w = w.max(text_size(root, line, &style)?.0);
    }
    let (half_w, half_h) = (w / 2 + 10, 11 * n + 6);
    let backdrop = [(x - half_w, y - half_h), (x + half_w, y + half_h)];
    root.draw(&Rectangle::new(backdrop, WHITE.mix(0.9).filled()))?;
    for (i, line) in (0..).zip(lines) {
        put_text(root, line, (x, y + 22 * i - 11 * (n - 1)), &style)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Ticks and axes

/// An axis in plot coordinates (log10 of the value on log axes) with explicit ticks; it is
/// its own plotters coordinate so the mesh draws exactly these ticks.
#[derive(Clone)]
struct Ticks {
    lo: f64,
    hi: f64,
    /// Labelled tick positions with their labels.
    major: Vec<(f64, String)>,
    /// Unlabelled light grid lines.
    minor: Vec<f64>,
}

impl Ticks {
    /// Label of the tick at `v` (plotters hands back exactly the positions it was given).
    fn label(&self, v: f64) -> String {
        self.major
            .iter()
            .find(|t| t.0 == v)
            .map(|t| t.1.clone())
            .unwrap_or_default()
    }

    fn sort(&mut self) {
        self.major.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
}

impl Ranged for Ticks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if !is_range(self.lo, self.hi) || !span.is_finite() {
            return limit.0 + (limit.1 - limit.0) / 2;
        }
        let frac = (value - self.lo) / span;
        // `as` saturates, so values far outside the range cannot overflow.
        limit
            .0
            .saturating_add((frac * f64::from(limit.1 - limit.0)).round() as i32)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.major.iter().map(|t| t.0).collect()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// `mantissa × 10^exp` as the float nearest to that exact decimal (unlike `powi`), so
/// tick labels print as e.g. `0.001` rather than `0.0010000000000000002`.
fn decimal(mantissa: i64, exp: i64) -> f64 {
    format!("{mantissa}e{exp}").parse().unwrap_or(0.0)
}

/// Whether `lo..hi` is a usable, non-empty finite range.
fn is_range(lo: f64, hi: f64) -> bool {
    lo.is_finite() && hi.is_finite() && lo < hi
}

fn min_max(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Ticks for a log10-space range: decades (thinned to at most about ten labels), plus
/// labelled 2 and 5 multiples when `sub` is set and at most two decades are visible.
/// Positions at or left of `left_limit` get no tick (that is where the λ = 0 slot lives).
fn log_ticks(lo: f64, hi: f64, left_limit: Option<f64>, sub: bool) -> Ticks {
    let mut t = Ticks {
        lo,
        hi,
        major: Vec::new(),
        minor: Vec::new(),
    };
    if !is_range(lo, hi) {
        return t;
    }
    let allowed = |u: f64| u >= lo && u <= hi && left_limit.is_none_or(|l| u > l);
    let (first, last) = (lo.ceil() as i64, hi.floor() as i64);
    let decades = (last - first + 1).max(0);
    let stride = ((decades + 9) / 10).max(1);
    for k in first..=last {
        let v = decimal(1, k);
        // Decades beyond the f64 range (only reachable through absurd inputs) get no tick.
        if k.rem_euclid(stride) == 0 && allowed(k as f64) && v.is_normal() {
            t.major.push((k as f64, short(v)));
        }
    }
    let label_sub = sub && decades <= 2;
    if stride == 1 && hi - lo < 16.0 {
        for k in (lo.floor() as i64)..=(hi.ceil() as i64) {
            for m in 2..=9 {
                let v = decimal(m, k);
                let u = v.log10();
                if !allowed(u) {
                    continue;
                }
                if label_sub && (m == 2 || m == 5) {
                    t.major.push((u, short(v)));
                } else {
                    t.minor.push(u);
                }
            }
        }
    }
    t.sort();
    t
}

/// Ticks at 1-2-5 multiples of a power of ten, about six of them across `[lo, hi]`.
fn linear_ticks(lo: f64, hi: f64) -> Ticks {
    let mut t = Ticks {
        lo,
        hi,
        major: Vec::new(),
        minor: Vec::new(),
    };
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return t;
    }
    let raw = span / 6.0;
    let mut exp = raw.log10().floor() as i64;
    let frac = raw / decimal(1, exp);
    let mantissa = if frac <= 1.0 {
        1
    } else if frac <= 2.0 {
        2
    } else if frac <= 5.0 {
        5
    } else {
        exp += 1;
        1
    };
    let step = decimal(mantissa, exp);
    if !(step.is_finite() && step > 0.0) {
        return t;
    }
    let (k0, k1) = ((lo / step).ceil(), (hi / step).floor());
    if !(k0.is_finite() && k1.is_finite()) || k1 - k0 > 40.0 || k0.abs().max(k1.abs()) > 1e15 {
        return t;
    }
    for k in (k0 as i64)..=(k1 as i64) {
        let v = decimal(k * mantissa, exp);
        t.major.push((v, short(v)));
    }
    t
}

/// Value axis (y) of a chart: logarithmic (plot coordinate = log10 of the value) or linear.
struct ValueAxis {
    log: bool,
    ticks: Ticks,
}

impl ValueAxis {
    /// Log axis over the positive finite `values`, at least `min_decades` tall;
    /// `headroom` is the fraction of the final height kept empty at the top.
    fn log(values: &[f64], min_decades: f64, headroom: f64) -> Self {
        let logs = values
            .iter()
            .filter(|v| v.is_finite() && **v > 0.0)
            .map(|v| v.log10());
        let range = min_max(logs);
        let (mut lo, mut hi) = range.unwrap_or((-3.0, 0.0));
        if hi - lo < min_decades {
            let mid = lo + (hi - lo) / 2.0;
            (lo, hi) = (mid - min_decades / 2.0, mid + min_decades / 2.0);
        }
        let pad = ((hi - lo) * 0.05).max(0.02);
        (lo, hi) = (lo - pad, hi + pad);
        hi += (hi - lo) * headroom / (1.0 - headroom);
        let mut ticks = log_ticks(lo, hi, None, true);
        if range.is_none() {
            ticks.major.clear();
            ticks.minor.clear();
        }
        Self { log: true, ticks }
    }

    /// Linear axis over the finite `values` (clamped to ±1e300 so spans stay finite).
    fn linear(values: &[f64], headroom: f64) -> Self {
        let clamped = values
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| v.clamp(-1e300, 1e300));
        let range = min_max(clamped);
        let (a, b) = range.unwrap_or((0.0, 1.0));
        let span = b - a;
        let pad = if span.is_normal() {
            span * 0.08
        } else if a.abs().is_normal() {
            a.abs() * 0.1
        } else {
            1.0
        };
        let (mut lo, mut hi) = (a - pad, b + pad);
        if !is_range(lo, hi) {
            (lo, hi) = (a - 1.0, a + 1.0);
        }
        if !is_range(lo, hi) {
            (lo, hi) = (0.0, 1.0);
        }
        hi += (hi - lo) * headroom / (1.0 - headroom);
        let mut ticks = linear_ticks(lo, hi);
        if range.is_none() {
            ticks.major.clear(); // nothing to read off: no numbers on the axis
        }
        Self { log: false, ticks }
    }

    /// Plot coordinate of a value, `None` if it cannot be placed on this axis.
    fn at(&self, v: f64) -> Option<f64> {
        if !v.is_finite() {
            None
        } else if self.log {
            (v > 0.0).then(|| v.log10())
        } else {
            Some(v)
        }
    }

    /// Plot coordinate of a value, clamped into the visible range (for error-bar ends).
    fn clamped(&self, v: f64) -> f64 {
        let u = if self.log && v <= 0.0 {
            self.ticks.lo
        } else {
            self.at(v).unwrap_or(self.ticks.hi)
        };
        u.clamp(self.ticks.lo, self.ticks.hi)
    }
}

/// The λ axis: log10 λ for positive λ, plus a separate slot for λ = 0.
struct LambdaAxis {
    ticks: Ticks,
    /// Plot position of λ = 0, if the sweep has it.
    zero: Option<f64>,
    /// Position of the axis break between the λ = 0 slot and the positive decades.
    gap: Option<f64>,
}

impl LambdaAxis {
    fn new(lambdas: &[f64]) -> Self {
        let has_zero = lambdas.contains(&0.0);
        let mut positive: Vec<f64> = lambdas
            .iter()
            .copied()
            .filter(|l| l.is_finite() && *l > 0.0)
            .collect();
        positive.sort_by(f64::total_cmp);
        positive.dedup();
        let Some((umin, umax)) = min_max(positive.iter().map(|l| l.log10())) else {
            // Only λ = 0 (or nothing): a single centred slot.
            let major = if has_zero {
                vec![(0.0, short(0.0))]
            } else {
                Vec::new()
            };
            let ticks = Ticks {
                lo: -1.0,
                hi: 1.0,
                major,
                minor: Vec::new(),
            };
            return Self {
                ticks,
                zero: has_zero.then_some(0.0),
                gap: None,
            };
        };
        // The λ = 0 slot sits one decade below the decade of the smallest λ (further out
        // for very wide grids, so it stays visibly apart).
        let offset = ((umax - umin) * 0.1).ceil().max(1.0);
        let zero = has_zero.then(|| umin.floor() - offset);
        let gap = zero.map(|z| z + offset / 2.0);
        let left = zero.unwrap_or(umin);
        let pad = ((umax - left) * 0.06).max(0.3);
        let (lo, hi) = (left - pad, umax + pad);
        let mut ticks = log_ticks(lo, hi, gap, false);
        if ticks.major.len() < 2 {
            if positive.len() <= 3 {
                // A narrow grid: label the λ values themselves.
                for &l in &positive {
                    let u = l.log10();
                    if !ticks.major.iter().any(|t| (t.0 - u).abs() < 0.1) {
                        ticks.major.push((u, short(l)));
                    }
                }
            } else {
                ticks = log_ticks(lo, hi, gap, true);
            }
        }
        if let Some(z) = zero {
            ticks.major.push((z, short(0.0)));
        }
        ticks.sort();
        Self { ticks, zero, gap }
    }

    fn at(&self, lambda: f64) -> Option<f64> {
        if lambda == 0.0 {
            self.zero
        } else if lambda.is_finite() && lambda > 0.0 {
            Some(lambda.log10())
        } else {
            None
        }
    }
}

fn draw_mesh(
    chart: &mut Chart<'_, '_>,
    x: &Ticks,
    y: &Ticks,
    x_desc: &str,
    y_desc: &str,
) -> Result<()> {
    let x_fmt = |v: &f64| x.label(*v);
    let y_fmt = |v: &f64| y.label(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .bold_line_style(GRID_BOLD.stroke_width(1))
        .light_line_style(GRID_LIGHT.stroke_width(1))
        .axis_style(AXIS.stroke_width(1))
        .label_style(font(14.0).color(&TEXT))
        .axis_desc_style(font(16.0).color(&TEXT))
        .x_desc(x_desc);
    if !y_desc.is_empty() {
        mesh.y_desc(y_desc);
    }
    mesh.draw()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Validation loss against λ

/// Equal up to float noise (a choice and its cell may come from different arithmetic).
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_finite() && b.is_finite() && (a - b).abs() <= 1e-12 * a.abs().max(b.abs()))
}

/// Where a cell is drawn, in plot coordinates.
enum Spot {
    /// At its mean.
    Mean(f64, f64),
    /// Above the data, in the lane of its learning rate (no mean to show).
    Top(f64, i32),
}

fn lane_offset(lane: usize) -> i32 {
    12 + 14 * i32::try_from(lane).unwrap_or(0)
}

fn draw_val_loss(
    root: &Area<'_>,
    cells: &[Cell],
    choice: Option<&Choice>,
    title: &str,
    partial: bool,
) -> Result<()> {
    let (header, body) = root.split_vertically(48);
    draw_title(&header, title, partial)?;
    let (body_w, _) = body.dim_in_pixel();
    let (plot_area, side) = body.split_horizontally(body_w.saturating_sub(LEGEND_W));

    let usable: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.lambda.is_finite() && c.lambda >= 0.0)
        .collect();
    let mut lrs: Vec<f64> = usable.iter().map(|c| c.lr).collect();
    lrs.sort_by(f64::total_cmp);
    lrs.dedup_by(|a, b| same(*a, *b));
    let lr_index = |lr: f64| lrs.iter().position(|&l| same(l, lr)).unwrap_or(0);
    let lambdas: Vec<f64> = usable.iter().map(|c| c.lambda).collect();
    let x_axis = LambdaAxis::new(&lambdas);

    // y axis: log only when the means span more than 1.5 decades.
    let means: Vec<f64> = usable
        .iter()
        .filter_map(|c| c.mean)
        .filter(|m| m.is_finite())
        .collect();
    let log_y = match min_max(means.iter().copied()) {
        Some((a, b)) => a > 0.0 && b / a > 10f64.powf(1.5),
        None => false,
    };
    let mut extents = means.clone();
    for c in &usable {
        if let (Some(m), Some(s)) = (c.mean, c.sem) {
            extents.extend([m - s, m + s].into_iter().filter(|v| !log_y || *v > 0.0));
        }
    }
    // Lanes above the data hold × for cells that have diverged runs but no mean.
    let lane_less = |c: &Cell| c.mean.is_none_or(|m| !m.is_finite());
    let mut lane_of: Vec<Option<usize>> = vec![None; lrs.len()];
    let mut lanes = 0;
    for (i, lr) in lrs.iter().enumerate() {
        if usable
            .iter()
            .any(|c| same(c.lr, *lr) && c.n_diverged > 0 && lane_less(c))
        {
            lane_of[i] = Some(lanes);
            lanes += 1;
        }
    }
    let headroom_px = if lanes > 0 {
        f64::from(lane_offset(lanes) + 4)
    } else {
        0.0
    };
    let headroom = (headroom_px / VAL_PLOT_H_ESTIMATE).min(0.5);
    let y_axis = if log_y {
        ValueAxis::log(&extents, 1.0, headroom)
    } else {
        ValueAxis::linear(&extents, headroom)
    };

    let mut chart = ChartBuilder::on(&plot_area)
        .margin_top(14)
        .margin_right(18)
        .margin_left(10)
        .margin_bottom(8)
        .x_label_area_size(54)
        .y_label_area_size(86)
        .build_cartesian_2d(x_axis.ticks.clone(), y_axis.ticks.clone())?;
    let scale = if log_y { "log scale" } else { "linear scale" };
    draw_mesh(
        &mut chart,
        &x_axis.ticks,
        &y_axis.ticks,
        "weight decay λ (log scale)",
        &format!("validation loss (mean ± SEM over seeds), {scale}"),
    )?;
    let (y_lo, y_hi) = (y_axis.ticks.lo, y_axis.ticks.hi);
    let (x_lo, x_hi) = (x_axis.ticks.lo, x_axis.ticks.hi);

    if let Some(g) = x_axis.gap {
        let divider = GRID_BOLD.stroke_width(1);
        chart.draw_series(std::iter::once(DashedPathElement::new(
            vec![(g, y_lo), (g, y_hi)],
            6,
            5,
            divider,
        )))?;
        // Axis break on the x axis: a white gap with two slanted strokes.
        let (px, py) = chart.backend_coord(&(g, y_lo));
        root.draw(&Rectangle::new(
            [(px - 5, py - 4), (px + 5, py + 4)],
            WHITE.filled(),
        ))?;
        for dx in [-4, 3] {
            let stroke = vec![(px + dx - 3, py + 5), (px + dx + 3, py - 5)];
            root.draw(&PathElement::new(stroke, AXIS.stroke_width(1)))?;
        }
    }

    let n_lrs = lrs.len();
    // Lines of different lrs are shifted apart slightly so their error bars do not overlap;
    // the whole spread stays within 4% of the axis.
    let dodge_step = (x_hi - x_lo) * (0.04 / n_lrs.saturating_sub(1).max(1) as f64).min(0.006);
    let dodge = |i: usize| (i as f64 - (n_lrs.saturating_sub(1)) as f64 / 2.0) * dodge_step;
    let spot = |c: &Cell| -> Option<Spot> {
        let i = lr_index(c.lr);
        let x = x_axis.at(c.lambda)? + dodge(i);
        match c.mean.and_then(|m| y_axis.at(m)) {
            Some(y) => Some(Spot::Mean(x, y.clamp(y_lo, y_hi))),
            None if c.n_diverged > 0 => lane_of
                .get(i)
                .copied()
                .flatten()
                .map(|lane| Spot::Top(x, lane_offset(lane))),
            None => None,
        }
    };

    let mut any_sem = false;
    let mut any_diverged_mean = false;
    // Everything drawn in the plot, in plot coordinates, so the "chosen" label can avoid it.
    let mut ink: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut ink_px: Vec<(i32, i32)> = Vec::new();
    let mut not_drawn = 0usize;
    for (i, &lr) in lrs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mut pts: Vec<(f64, f64, &Cell)> = Vec::new();
        for c in usable.iter().copied().filter(|c| same(c.lr, lr)) {
            match spot(c) {
                Some(Spot::Mean(x, y)) => pts.push((x, y, c)),
                Some(Spot::Top(..)) => {}
                None if !lane_less(c) => not_drawn += 1,
                None => {} // counted below
            }
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let is_zero = |c: &Cell| c.lambda == 0.0;
        let line: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| !is_zero(p.2))
            .map(|p| (p.0, p.1))
            .collect();
        chart.draw_series(segments(&line, color.stroke_width(2)))?;
        if let (Some(z), Some(first)) = (pts.iter().find(|p| is_zero(p.2)), line.first()) {
            let bridge = vec![(z.0, z.1), *first];
            ink.push(bridge.clone());
            chart.draw_series(std::iter::once(DashedPathElement::new(
                bridge,
                5,
                5,
                color.stroke_width(2),
            )))?;
        }
        ink.push(line);
        for &(x, _, c) in &pts {
            let (Some(m), Some(s)) = (c.mean, c.sem) else {
                continue;
            };
            if !(s.is_finite() && s > 0.0) {
                continue;
            }
            any_sem = true;
            let (bot, top) = (y_axis.clamped(m - s), y_axis.clamped(m + s));
            let bar = color.stroke_width(1);
            chart.draw_series([
                EmptyElement::at((x, top)) + PathElement::new(vec![(-4, 0), (4, 0)], bar),
                EmptyElement::at((x, bot)) + PathElement::new(vec![(-4, 0), (4, 0)], bar),
            ])?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, bot), (x, top)],
                bar,
            )))?;
            ink.push(vec![(x, bot), (x, top)]);
        }
        ink.extend(pts.iter().map(|p| vec![(p.0, p.1)]));
        chart.draw_series(
            pts.iter()
                .map(|p| Circle::new((p.0, p.1), 4, color.filled())),
        )?;
        for &(x, y, c) in &pts {
            if c.n_diverged > 0 {
                any_diverged_mean = true;
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x, y)) + Cross::new((0, 0), 7, ALERT.stroke_width(3)),
                ))?;
            }
        }
    }
    // Cells with no mean: × in their lane if runs diverged, otherwise counted as not drawn.
    for c in usable.iter().copied() {
        if !lane_less(c) {
            continue;
        }
        match spot(c) {
            Some(Spot::Top(x, dy)) => {
                let color = PALETTE[lr_index(c.lr) % PALETTE.len()];
                let (px, py) = chart.backend_coord(&(x, y_hi));
                ink_px.push((px, py + dy));
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x, y_hi)) + Cross::new((0, dy), 5, color.stroke_width(3)),
                ))?;
            }
            Some(Spot::Mean(..)) => {}
            None => not_drawn += 1,
        }
    }
    not_drawn += cells.len() - usable.len();

    let find_chosen = |ch: &Choice| {
        usable
            .iter()
            .copied()
            .find(|c| same(c.lambda, ch.lambda) && same(c.lr, ch.lr))
    };
    if let Some(ch) = choice {
        let chosen = find_chosen(ch);
        let mut text = format!("chosen: λ = {}, lr = {}", short(ch.lambda), short(ch.lr));
        if chosen.is_none() {
            text.push_str(" (not in grid)");
        }
        let at = match chosen.and_then(spot) {
            Some(Spot::Mean(x, y)) => Some(((x, y), 0)),
            Some(Spot::Top(x, dy)) => Some(((x, y_hi), dy)),
            None => x_axis.at(ch.lambda).map(|x| ((x, y_hi), lane_offset(0))),
        };
        if let Some((pos, dy)) = at.filter(|(p, _)| p.0 >= x_lo && p.0 <= x_hi) {
            let ring = EmptyElement::at(pos) + Circle::new((0, dy), 11, BLACK.stroke_width(2));
            chart.draw_series(std::iter::once(ring))?;
            let (px, py) = chart.backend_coord(&pos);
            let bar = chosen.and_then(|c| Some((c.mean?, c.sem?))).map(|(m, s)| {
                let bot = chart.backend_coord(&(pos.0, y_axis.clamped(m - s))).1;
                let top = chart.backend_coord(&(pos.0, y_axis.clamped(m + s))).1;
                (top, bot)
            });
            ink_px.extend(sample_ink(&chart, &ink));
            draw_choice_label(root, &chart, &text, (px, py + dy), bar, &ink_px)?;
        }
    }

    if usable.iter().all(|c| lane_less(c)) {
        let lines: &[&str] = if cells.is_empty() {
            &["no cells to plot"]
        } else {
            &["no cell has a mean validation loss", "(every job diverged)"]
        };
        centre_note(&chart, root, lines)?;
    }

    let legend = Legend {
        lrs: &lrs,
        any_sem,
        any_diverged_mean,
        lanes: lanes > 0,
        choice: choice.map(|ch| (ch.lambda, ch.lr, find_chosen(ch).is_some())),
        not_drawn,
    };
    legend.draw(&side)
}

/// A polyline as separate two-point paths: plotters widens a multi-point path as one
/// polygon whose joins break at sharp corners (the segment after the turn comes out 1 px
/// wide); single segments are always drawn at full width.
fn segments(points: &[(f64, f64)], style: ShapeStyle) -> Vec<PathElement<(f64, f64)>> {
    points
        .windows(2)
        .map(|w| PathElement::new(vec![w[0], w[1]], style))
        .collect()
}

/// Pixels along the given plot-coordinate polylines, about every 3 px, clamped to the
/// plotting area.
fn sample_ink(chart: &Chart<'_, '_>, lines: &[Vec<(f64, f64)>]) -> Vec<(i32, i32)> {
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let clamp = |(x, y): (i32, i32)| (x.clamp(xs.start, xs.end), y.clamp(ys.start, ys.end));
    let mut out = Vec::new();
    for line in lines {
        let px: Vec<(i32, i32)> = line.iter().map(|p| clamp(chart.backend_coord(p))).collect();
        out.extend(px.first().copied());
        for w in px.windows(2) {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            let steps = ((x1 - x0).abs().max((y1 - y0).abs()) / 3).max(1);
            for k in 1..=steps {
                let t = f64::from(k) / f64::from(steps);
                let x = f64::from(x0) + t * f64::from(x1 - x0);
                let y = f64::from(y0) + t * f64::from(y1 - y0);
                out.push((x.round() as i32, y.round() as i32));
            }
        }
    }
    out
}

/// "chosen: …" in a box near the ring (at pixel `ring`), at the candidate spot that covers
/// the fewest drawn pixels (`ink`), never on the ring or the chosen cell's error bar.
fn draw_choice_label(
    root: &Area<'_>,
    chart: &Chart<'_, '_>,
    text: &str,
    ring: (i32, i32),
    bar: Option<(i32, i32)>,
    ink: &[(i32, i32)],
) -> Result<()> {
    let style = anchored(bold(14.0), TEXT, HPos::Left, VPos::Top);
    let (tw, th) = text_size(root, text, &style)?;
    let (bw, bh) = (tw + 12, th + 10);
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let (px, py) = ring;
    let r = 13;
    let (bar_top, bar_bot) = bar.map_or((py, py), |(a, b)| (a.min(b), a.max(b)));
    let below = (py + r).max(bar_bot) + 8;
    let above = (py - r).min(bar_top) - 8 - bh;
    let (centre, mid) = (px - bw / 2, py - bh / 2);
    let candidates = [
        (centre, below),
        (centre, above),
        (px + r + 10, mid),
        (px - r - 10 - bw, mid),
        (px + r, py + r + 6),
        (px - r - bw, py + r + 6),
        (px + r, py - r - 6 - bh),
        (px - r - bw, py - r - 6 - bh),
        (centre, below + 2 * bh),
        (centre, above - 2 * bh),
    ];
    let placed = candidates.iter().map(|&(x, y)| {
        let x = x.min(xs.end - bw - 4).max(xs.start + 4);
        let y = y.min(ys.end - bh - 4).max(ys.start + 4);
        let inside = |(qx, qy): (i32, i32), (x0, y0, x1, y1): (i32, i32, i32, i32)| {
            qx >= x0 && qx <= x1 && qy >= y0 && qy <= y1
        };
        let hits = ink
            .iter()
            .filter(|q| inside(**q, (x - 3, y - 3, x + bw + 3, y + bh + 3)))
            .count();
        let on_ring = px + r >= x && px - r <= x + bw && py + r >= y && py - r <= y + bh;
        let on_bar = px >= x && px <= x + bw && bar_bot >= y && bar_top <= y + bh;
        (hits + if on_ring || on_bar { 1_000_000 } else { 0 }, x, y)
    });
    let (_, x, y) = placed.min_by_key(|c| c.0).unwrap_or((0, px, py));
    root.draw(&Rectangle::new(
        [(x, y), (x + bw, y + bh)],
        WHITE.mix(0.85).filled(),
    ))?;
    root.draw(&Rectangle::new(
        [(x, y), (x + bw, y + bh)],
        BLACK.stroke_width(1),
    ))?;
    put_text(root, text, (x + 6, y + 5), &style)
}

/// The legend panel at the right of the λ figure.
struct Legend<'a> {
    lrs: &'a [f64],
    any_sem: bool,
    any_diverged_mean: bool,
    lanes: bool,
    /// λ and lr, and whether that cell is in the grid.
    choice: Option<(f64, f64, bool)>,
    not_drawn: usize,
}

impl Legend<'_> {
    fn draw(&self, area: &Area<'_>) -> Result<()> {
        let head = anchored(bold(15.0), TEXT, HPos::Left, VPos::Center);
        let body = anchored(font(14.0), TEXT, HPos::Left, VPos::Center);
        let note = anchored(font(13.0), MUTED, HPos::Left, VPos::Center);
        let (sx, tx) = (16, 50); // symbol centre, text start
        let room = to_i32(area.dim_in_pixel().0) - tx - 6;
        let mut y = 30;
        put_text(area, "learning rate", (12, y), &head)?;
        y += 26;
        if self.lrs.is_empty() {
            put_text(area, "(none)", (tx, y), &note)?;
            y += 22;
        }
        for (i, &lr) in self.lrs.iter().enumerate().take(MAX_LEGEND_LRS) {
            let color = PALETTE[i % PALETTE.len()];
            area.draw(&PathElement::new(
                vec![(sx - 14, y), (sx + 14, y)],
                color.stroke_width(2),
            ))?;
            area.draw(&Circle::new((sx, y), 4, color.filled()))?;
            let label = number_label(area, &body, room, ("lr", lr, ""))?;
            put_text(area, &label, (tx, y), &body)?;
            y += 22;
        }
        if self.lrs.len() > MAX_LEGEND_LRS {
            let more = format!("… and {} more", self.lrs.len() - MAX_LEGEND_LRS);
            put_text(area, &more, (tx, y), &note)?;
            y += 22;
        }
        y += 14;
        if self.any_sem {
            let bar = TEXT.stroke_width(1);
            area.draw(&PathElement::new(vec![(sx, y - 9), (sx, y + 9)], bar))?;
            area.draw(&PathElement::new(
                vec![(sx - 4, y - 9), (sx + 4, y - 9)],
                bar,
            ))?;
            area.draw(&PathElement::new(
                vec![(sx - 4, y + 9), (sx + 4, y + 9)],
                bar,
            ))?;
            area.draw(&Circle::new((sx, y), 4, TEXT.filled()))?;
            put_text(area, "mean ± SEM over seeds", (tx, y), &body)?;
            y += 30;
        }
        if self.any_diverged_mean {
            area.draw(&Cross::new((sx, y), 7, ALERT.stroke_width(3)))?;
            put_text(area, "× = cell with diverged runs", (tx, y), &body)?;
            y += 30;
        }
        if self.lanes {
            area.draw(&Cross::new((sx, y), 5, MUTED.stroke_width(3)))?;
            put_text(area, "no ok seed, runs diverged:", (tx, y), &body)?;
            put_text(area, "× along the top edge,", (tx, y + 18), &note)?;
            put_text(area, "in the colour of the lr", (tx, y + 34), &note)?;
            y += 58;
        }
        if let Some((lambda, lr, in_grid)) = self.choice {
            area.draw(&Circle::new((sx, y + 8), 10, BLACK.stroke_width(2)))?;
            let lambda = number_label(area, &body, room, ("chosen: λ", lambda, ","))?;
            put_text(area, &lambda, (tx, y), &body)?;
            let lr = number_label(area, &body, room, ("lr", lr, ""))?;
            put_text(area, &lr, (tx, y + 18), &body)?;
            y += 46;
            if !in_grid {
                put_text(area, "(not a cell of this grid)", (tx, y - 8), &note)?;
                y += 16;
            }
        }
        if self.not_drawn > 0 {
            let cells = if self.not_drawn == 1 { "cell" } else { "cells" };
            put_text(
                area,
                &format!("{} {cells} not drawn", self.not_drawn),
                (12, y),
                &note,
            )?;
            put_text(area, "(no mean or invalid λ)", (12, y + 16), &note)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Loss curves

/// Panel grid of the loss-curve figure: up to four panels per row.
struct PanelLayout {
    shown: usize,
    total: usize,
    cols: usize,
    rows: usize,
}

impl PanelLayout {
    fn new(total: usize) -> Self {
        let shown = total.min(MAX_PANELS);
        let cols = shown.clamp(1, 4);
        Self {
            shown,
            total,
            cols,
            rows: shown.div_ceil(cols).max(1),
        }
    }

    fn size(&self) -> (u32, u32) {
        let cols = u32::try_from(self.cols).unwrap_or(4);
        let rows = u32::try_from(self.rows).unwrap_or(1);
        (if cols <= 2 { 1024 } else { 380 * cols }, 84 + 400 * rows)
    }
}

/// Epoch axis over `0..len` with integer ticks in 1-2-5 steps, spaced for labels to fit
/// in `width_px` pixels.
fn epoch_ticks(len: usize, width_px: u32) -> Ticks {
    let last = len.saturating_sub(1).max(1) as f64;
    let pad = (last * 0.02).max(0.25);
    let digits = short(last).len() as f64;
    let max_gaps = (f64::from(width_px) / (14.0 + 9.0 * digits)).clamp(2.0, 10.0);
    let mut step = 1.0;
    let mut i = 0;
    while last / step > max_gaps && i < 64 {
        step *= if i % 3 == 1 { 2.5 } else { 2.0 };
        i += 1;
    }
    let mut t = Ticks {
        lo: -pad,
        hi: last + pad,
        major: Vec::new(),
        minor: Vec::new(),
    };
    let mut k = 0.0;
    while k <= last {
        t.major.push((k, short(k)));
        k += step;
    }
    if step > 1.0 && last <= 100.0 {
        t.minor = (0..=len).map(|e| e as f64).filter(|e| *e <= last).collect();
    }
    t
}

/// (epoch, log10 loss) of the values that can be drawn on a log axis.
fn log_points(values: &[Option<f64>]) -> Vec<(f64, f64)> {
    (0..)
        .zip(values)
        .filter_map(|(e, v)| {
            v.filter(|v| v.is_finite() && *v > 0.0)
                .map(|v| (f64::from(e), v.log10()))
        })
        .collect()
}

fn draw_loss_curves(
    root: &Area<'_>,
    layout: &PanelLayout,
    curves: &[Curve],
    lr: f64,
    title: &str,
    partial: bool,
) -> Result<()> {
    let (header, rest) = root.split_vertically(44);
    let full_title = if title.is_empty() {
        format!("lr = {}", short(lr))
    } else {
        format!("{title} (lr = {})", short(lr))
    };
    draw_title(&header, &full_title, partial)?;
    let (strip, grid) = rest.split_vertically(40);
    draw_curve_legend(&strip, layout)?;

    let shown = &curves[..layout.shown];
    if shown.is_empty() {
        let (w, h) = grid.dim_in_pixel();
        let style = anchored(font(16.0), MUTED, HPos::Center, VPos::Center);
        return put_text(
            &grid,
            "no loss curves to plot",
            (to_i32(w) / 2, to_i32(h) / 2),
            &style,
        );
    }
    let values: Vec<f64> = shown
        .iter()
        .flat_map(|c| c.train.iter().chain(&c.val))
        .filter_map(|v| *v)
        .collect();
    let y_axis = ValueAxis::log(&values, 1.0, 0.0);
    let epochs = shown
        .iter()
        .map(|c| c.train.len().max(c.val.len()))
        .max()
        .unwrap_or(0);
    let (grid_w, _) = grid.dim_in_pixel();
    let cols = u32::try_from(layout.cols).unwrap_or(1).max(1);
    let x_ticks = epoch_ticks(epochs, (grid_w / cols).saturating_sub(PANEL_Y_LABELS + 30));

    for (k, (curve, panel)) in shown
        .iter()
        .zip(grid.split_evenly((layout.rows, layout.cols)))
        .enumerate()
    {
        let caption = number_label(
            &panel,
            &font(18.0).into_text_style(&panel),
            to_i32(panel.dim_in_pixel().0) - 20,
            ("λ", curve.lambda, ""),
        )?;
        let mut chart = ChartBuilder::on(&panel)
            .caption(caption, font(18.0))
            .margin(10)
            .margin_right(20)
            .x_label_area_size(48)
            .y_label_area_size(PANEL_Y_LABELS)
            .build_cartesian_2d(x_ticks.clone(), y_axis.ticks.clone())?;
        let y_desc = if k % layout.cols == 0 {
            "loss (mean over seeds, log scale)"
        } else {
            ""
        };
        draw_mesh(&mut chart, &x_ticks, &y_axis.ticks, "epoch", y_desc)?;

        let train = log_points(&curve.train);
        let val = log_points(&curve.val);
        chart.draw_series(segments(&train, TRAIN_COLOR.stroke_width(2)))?;
        chart.draw_series(std::iter::once(DashedPathElement::new(
            val.clone(),
            9,
            6,
            VAL_COLOR.stroke_width(2),
        )))?;
        let mark = |n: usize| epochs <= MAX_MARKED_EPOCHS || n < 2;
        if mark(train.len()) {
            chart.draw_series(
                train
                    .iter()
                    .map(|p| Circle::new(*p, 3, TRAIN_COLOR.filled())),
            )?;
        }
        if mark(val.len()) {
            chart.draw_series(
                val.iter()
                    .map(|p| TriangleMarker::new(*p, 4, VAL_COLOR.filled())),
            )?;
        }
        if train.is_empty() && val.is_empty() {
            centre_note(&chart, root, &["no data (all values missing)"])?;
        }
    }
    Ok(())
}

/// Legend strip under the title of the loss-curve figure.
fn draw_curve_legend(area: &Area<'_>, layout: &PanelLayout) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    let (w, y) = (to_i32(w), to_i32(h) / 2);
    let style = anchored(font(15.0), TEXT, HPos::Left, VPos::Center);
    let (train, val) = ("training loss", "validation loss");
    let (tw, _) = text_size(area, train, &style)?;
    let (vw, _) = text_size(area, val, &style)?;
    let sample = 40;
    let total = sample + 8 + tw + 36 + sample + 8 + vw;
    let mut x = (w - total) / 2;
    area.draw(&PathElement::new(
        vec![(x, y), (x + sample, y)],
        TRAIN_COLOR.stroke_width(2),
    ))?;
    area.draw(&Circle::new((x + sample / 2, y), 3, TRAIN_COLOR.filled()))?;
    put_text(area, train, (x + sample + 8, y), &style)?;
    x += sample + 8 + tw + 36;
    let dashed = DashedPathElement::new(
        vec![(x, y), (x + sample, y)],
        9,
        6,
        VAL_COLOR.stroke_width(2),
    );
    area.draw(&dashed)?;
    area.draw(&TriangleMarker::new(
        (x + sample / 2, y),
        4,
        VAL_COLOR.filled(),
    ))?;
    put_text(area, val, (x + sample + 8, y), &style)?;
    if layout.total > layout.shown {
        let note = anchored(font(13.0), MUTED, HPos::Right, VPos::Center);
        let text = format!(
            "showing the first {} of {} curves",
            layout.shown, layout.total
        );
        put_text(area, &text, (w - 12, y), &note)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_too_long_for_its_room_is_rounded_and_marked() {
        ensure_font().unwrap();
        let mut pixels = vec![0u8; 400 * 40 * 3];
        let area = BitMapBackend::with_buffer(&mut pixels, (400, 40)).into_drawing_area();
        let style = font(14.0).into_text_style(&area);
        let lambda = 4.603617246691895;
        let label = |width| number_label(&area, &style, width, ("λ", lambda, ",")).unwrap();
        assert_eq!(label(400), "λ = 4.603617246691895,");
        for width in [120, 80, 60] {
            let rounded = label(width);
            assert!(rounded.starts_with("λ ≈ 4.6"), "{rounded}");
            assert!(text_size(&area, &rounded, &style).unwrap().0 <= width);
        }
        // Short values are never rounded.
        assert_eq!(
            number_label(&area, &style, 60, ("lr", 0.03, "")).unwrap(),
            "lr = 0.03"
        );
    }
}
