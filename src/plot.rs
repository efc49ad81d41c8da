//! TEMPORARY stand-in until the plotting module lands; draws nothing.
use std::path::Path;
pub struct Cell {
    pub lambda: f64,
    pub lr: f64,
    pub mean: Option<f64>,
    pub sem: Option<f64>,
    pub n: usize,
    pub n_diverged: usize,
}
pub struct Curve {
    pub lambda: f64,
    pub train: Vec<Option<f64>>,
    pub val: Vec<Option<f64>>,
}
pub struct Choice {
    pub lambda: f64,
    pub lr: f64,
}
pub fn val_loss_vs_lambda(
    _: &Path,
    _: &[Cell],
    _: Option<&Choice>,
    _: &str,
    _: bool,
) -> anyhow::Result<()> {
    Ok(())
}
pub fn loss_curves(_: &Path, _: &[Curve], _: f64, _: &str, _: bool) -> anyhow::Result<()> {
    Ok(())
}
