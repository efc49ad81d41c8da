//! The data a job trains and validates on.
//!
//! The built-in data set is the book's (DESIGN.md §2): X ~ N(0, 1),
//! y = X·w* + b* + ε with w* = true_weight·1 and ε ~ N(0, noise_std²). It is a pure
//! function of the data settings and the seed, generated once per seed and
//! shared by every job of that seed, so all λ's and lr's of a seed are
//! compared on the same rows (common random numbers, DESIGN.md §3). A
//! user's file is read once per run instead, and each seed takes its own
//! split of it ([`crate::table`]).

use ndarray::{Array1, Array2, s};
use ndarray_rand::RandomExt;
use ndarray_rand::rand::SeedableRng;
use ndarray_rand::rand_distr::StandardNormal;
use rand_chacha::ChaCha8Rng;

use crate::spec::{DataSettings, DataSource};

/// What a ChaCha stream of a seed is used for. Each purpose has its own
/// stream, so drawing more of one never shifts another.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    Data = 1,
    InitialWeights = 2,
    Shuffle = 3,
    /// Which rows of a data file validate.
    Split = 4,
}

/// The random stream `purpose` of seed `seed`.
pub fn rng(seed: u64, purpose: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose as u64);
    rng
}

/// Training and validation rows, each matrix row-major and contiguous.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub x_train: Array2<f64>,
    pub y_train: Array1<f64>,
    pub x_val: Array2<f64>,
    pub y_val: Array1<f64>,
}

impl Dataset {
    pub fn num_inputs(&self) -> usize {
        self.x_train.ncols()
    }

    pub fn num_train(&self) -> usize {
        self.x_train.nrows()
    }
}

/// The book's synthetic data set for one seed: the first `num_train` rows
/// train, the remaining `num_val` validate.
pub fn synthetic(settings: &DataSettings, seed: u64) -> Dataset {
    let n = settings.num_train + settings.num_val;
    let d = settings.num_inputs;
    let mut rng = rng(seed, Stream::Data);

    let x: Array2<f64> = Array2::random_using((n, d), StandardNormal, &mut rng);
    let noise: Array1<f64> = Array1::random_using(n, StandardNormal, &mut rng);
    let w_true = Array1::from_elem(d, settings.true_weight);
    let y = x.dot(&w_true) + settings.true_bias + noise * settings.noise_std;

    let t = settings.num_train;
    Dataset {
        x_train: x.slice(s![..t, ..]).to_owned(),
        y_train: y.slice(s![..t]).to_owned(),
        x_val: x.slice(s![t.., ..]).to_owned(),
        y_val: y.slice(s![t..]).to_owned(),
    }
}

/// The data set of a seed, from either source. A data file's seeds are
/// checked when the spec is read, so this fails only for a seed outside
/// the spec's grid.
pub fn for_seed(source: &DataSource, seed: u64) -> Result<Dataset, String> {
    match source {
        DataSource::Book(settings) => Ok(synthetic(settings, seed)),
        DataSource::Table(table) => table.dataset(seed),
    }
}

/// The initial weights of every job of a seed: N(0, init_std²) per input.
pub fn initial_weights(num_inputs: usize, init_std: f64, seed: u64) -> Array1<f64> {
    let mut rng = rng(seed, Stream::InitialWeights);
    Array1::<f64>::random_using(num_inputs, StandardNormal, &mut rng) * init_std
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let settings = DataSettings::default();
        assert_eq!(synthetic(&settings, 4), synthetic(&settings, 4));
        assert_ne!(synthetic(&settings, 4), synthetic(&settings, 5));
    }

    #[test]
    fn shapes_follow_the_settings() {
        let settings = DataSettings {
            num_train: 3,
            num_val: 4,
            num_inputs: 5,
            ..Default::default()
        };
        let data = synthetic(&settings, 0);
        assert_eq!(data.x_train.dim(), (3, 5));
        assert_eq!(data.x_val.dim(), (4, 5));
        assert_eq!((data.y_train.len(), data.y_val.len()), (3, 4));
        assert!(data.x_train.is_standard_layout() && data.x_val.is_standard_layout());
    }

    #[test]
    fn targets_follow_the_true_model() {
        // With no noise, y is exactly X·w* + b*.
        let settings = DataSettings {
            noise_std: 0.0,
            num_inputs: 3,
            ..Default::default()
        };
        let data = synthetic(&settings, 1);
        for (row, y) in data.x_train.rows().into_iter().zip(&data.y_train) {
            let expected = row.sum() * 0.01 + 0.05;
            assert!((y - expected).abs() < 1e-15);
        }
    }

    #[test]
    fn streams_are_independent() {
        let settings = DataSettings::default();
        let w = initial_weights(200, 0.01, 3);
        let data = synthetic(&settings, 3);
        // Different purposes never share draws.
        assert_ne!(w[0] / 0.01, data.x_train[[0, 0]]);
        assert!((w.std(0.0) - 0.01).abs() < 0.003);
    }
}
