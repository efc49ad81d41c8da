//! The data a job trains and validates on.
//!
//! The built-in data set is the book's (DESIGN.md §2): X ~ N(0, 1),
//! y = X·w* + b* + ε with w* = true_weight·1 and ε ~ N(0, noise_std²). It is a pure
//! function of the data settings and the seed, generated once per seed and
//! shared by every job of that seed, so all λ's and lr's of a seed are
//! compared on the same rows (common random numbers, DESIGN.md §3). Its
//! validation rows are drawn only in the directions any loss can see
//! ([`BookDraw`]); [`synthetic`] forms them whole when they are wanted. A
//! user's file is read once per run instead, and each seed takes its own
//! split of it ([`crate::table`]).

use ndarray::{Array1, Array2, s};
use ndarray_rand::RandomExt;
use ndarray_rand::rand::{Rng, SeedableRng};
use ndarray_rand::rand_distr::StandardNormal;
use rand_chacha::ChaCha8Rng;

use crate::linalg::{householder, row_products};
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
    /// The book's validation rows in the directions no loss sees (only
    /// when a full data set is formed, see [`synthetic`]).
    ValidationRest = 5,
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

/// The book's data of one seed, drawn in the form training needs.
///
/// Training touches the validation rows V only through their products with
/// the initial weights, the training rows and w* (for the targets): with
/// B = [z₀ | Xᵀ | w*] (z₀ the initial weights before scaling by init_std),
/// through V·B. For a Householder QR B = U·S (U orthonormal, d × r, with
/// r = min(d, num_train + 2)), V·B = (V·U)·S, and since the rows of V are
/// N(0, I) and U is orthonormal, V·U has independent N(0, 1) entries
/// whatever B is. So the coordinates C = V·U are drawn directly: num_val × r
/// numbers instead of num_val × num_inputs, with no product of V at all.
/// The parts of V orthogonal to U never reach a loss; [`synthetic`] draws
/// them from a stream of their own when a full data set is wanted (the
/// reference trainer, tests).
#[derive(Debug, Clone)]
pub struct BookDraw {
    pub x_train: Array2<f64>,
    pub y_train: Array1<f64>,
    /// z₀: the seed's initial weights are init_std·z₀.
    pub z0: Array1<f64>,
    pub true_weights: Array1<f64>,
    pub true_bias: f64,
    /// C = V·U, num_val × r, row-major.
    pub val_coords: Array2<f64>,
    /// noise_std·ε of the validation rows.
    pub val_noise: Array1<f64>,
}

impl BookDraw {
    /// B = [z₀ | Xᵀ | w*], d × (num_train + 2), row-major.
    pub fn basis_matrix(&self) -> Vec<f64> {
        let (n, d) = self.x_train.dim();
        let p = n + 2;
        let mut b = vec![0.0; d * p];
        for k in 0..d {
            b[k * p] = self.z0[k];
            for i in 0..n {
                b[k * p + 1 + i] = self.x_train[[i, k]];
            }
            b[k * p + n + 1] = self.true_weights[k];
        }
        b
    }

    /// The products every use of the draw starts from, and S.
    ///
    /// `train` is X·B, n × (n + 2) row-major: [X·z₀ | G = X·Xᵀ | X·w*]. S is
    /// r × (n + 2), upper trapezoidal, with SᵀS = BᵀB. When BᵀB is safely
    /// positive definite (r = n + 2 and no column of B lies within 10⁻⁴ of
    /// its norm of the span of the ones before it), S is its Cholesky
    /// factor: BᵀB is made from `train` and three dot products, at a tiny
    /// fraction of a QR's cost. Otherwise (more training rows than inputs,
    /// w* = 0, …) S is the R of a Householder QR of B. Either way the
    /// choice depends on the draw alone.
    pub fn reduce(&self) -> Reduction {
        let (n, d) = self.x_train.dim();
        let p = n + 2;
        let b = self.basis_matrix();
        let x = self.x_train.as_slice().expect("standard layout");
        let train = row_products(x, n, d, &b, p);
        if BookDraw::coords(n, d) == p {
            let dot =
                |u: &Array1<f64>, v: &Array1<f64>| u.iter().zip(v).fold(0.0, |s, (a, b)| s + a * b);
            // BᵀB, row-major p × p; its middle block is G.
            let mut gram = vec![0.0; p * p];
            for i in 0..n {
                for j in 0..p {
                    gram[(1 + i) * p + j] = train[i * p + j];
                    gram[j * p + 1 + i] = train[i * p + j];
                }
            }
            let (z0, w) = (&self.z0, &self.true_weights);
            gram[0] = dot(z0, z0);
            gram[n + 1] = dot(z0, w);
            gram[(n + 1) * p] = gram[n + 1];
            gram[p * p - 1] = dot(w, w);
            if let Some(s) = cholesky(&gram, p) {
                return Reduction {
                    train,
                    s,
                    by_cholesky: true,
                };
            }
        }
        let mut s = b;
        householder(&mut s, d, p, false);
        s.truncate(BookDraw::coords(n, d) * p);
        Reduction {
            train,
            s,
            by_cholesky: false,
        }
    }

    /// r, the number of coordinates drawn for each validation row.
    pub fn coords(num_train: usize, num_inputs: usize) -> usize {
        num_inputs.min(num_train + 2)
    }
}

/// [`BookDraw::reduce`]'s result.
#[derive(Debug, Clone)]
pub struct Reduction {
    /// X·[z₀ | Xᵀ | w*], num_train × (num_train + 2), row-major.
    pub train: Vec<f64>,
    /// S, r × (num_train + 2), row-major, with SᵀS = BᵀB.
    pub s: Vec<f64>,
    pub by_cholesky: bool,
}

/// The upper-triangular S with SᵀS = M for the row-major p × p symmetric
/// `m`, or None when a pivot is not safely positive: each column must keep
/// at least 10⁻⁸ of its squared length after the columns before it are
/// taken out (a condition number below about 10⁴).
fn cholesky(m: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut s = vec![0.0; p * p];
    for j in 0..p {
        let rest = (0..j).fold(m[j * p + j], |acc, i| acc - s[i * p + j] * s[i * p + j]);
        if !(m[j * p + j] > 0.0 && rest > 1e-8 * m[j * p + j]) {
            return None;
        }
        let pivot = rest.sqrt();
        s[j * p + j] = pivot;
        for k in j + 1..p {
            let dot = (0..j).fold(m[j * p + k], |acc, i| acc - s[i * p + j] * s[i * p + k]);
            s[j * p + k] = dot / pivot;
        }
    }
    Some(s)
}

/// Draws the book's data of one seed (DESIGN.md §2) in the reduced form of
/// [`BookDraw`]: from the seed's data stream, the training rows, the noise
/// of every row, then the validation rows' coordinates; from its
/// initial-weights stream, z₀.
pub fn book_draw(settings: &DataSettings, seed: u64) -> BookDraw {
    let (n, nv, d) = (settings.num_train, settings.num_val, settings.num_inputs);
    let mut rng = rng(seed, Stream::Data);
    let x_train: Array2<f64> = Array2::random_using((n, d), StandardNormal, &mut rng);
    let noise: Array1<f64> = Array1::random_using(n + nv, StandardNormal, &mut rng);
    let r = BookDraw::coords(n, d);
    let val_coords: Array2<f64> = Array2::random_using((nv, r), StandardNormal, &mut rng);
    let w_true = Array1::from_elem(d, settings.true_weight);
    let noise = noise * settings.noise_std;
    let y_train = x_train.dot(&w_true) + settings.true_bias + noise.slice(s![..n]);
    BookDraw {
        x_train,
        y_train,
        z0: unit_initial_weights(d, seed),
        true_weights: w_true,
        true_bias: settings.true_bias,
        val_coords,
        val_noise: noise.slice(s![n..]).to_owned(),
    }
}

/// The book's synthetic data set for one seed, every row formed: the first
/// `num_train` rows train, the remaining `num_val` validate. Training uses
/// [`book_draw`] directly; this full form, whose losses are the same up to
/// rounding, serves the reference trainer and the tests.
pub fn synthetic(settings: &DataSettings, seed: u64) -> Dataset {
    let draw = book_draw(settings, seed);
    let (n, d) = draw.x_train.dim();
    let (nv, r) = draw.val_coords.dim();
    // Uᵀ, r × d row-major: an orthonormal basis of B's columns with
    // B = U·S for the S that training uses.
    let p = n + 2;
    let reduction = draw.reduce();
    let ut = if reduction.by_cholesky {
        // U = B·S⁻¹, row by row of B: u·S = b by forward substitution.
        let (b, s) = (draw.basis_matrix(), &reduction.s);
        let mut ut = vec![0.0; r * d];
        for k in 0..d {
            let mut u = vec![0.0; p];
            for j in 0..p {
                let known = (0..j).fold(b[k * p + j], |acc, i| acc - u[i] * s[i * p + j]);
                u[j] = known / s[j * p + j];
            }
            for (j, &uj) in u.iter().enumerate() {
                ut[j * d + k] = uj;
            }
        }
        ut
    } else {
        let mut b = draw.basis_matrix();
        let reflectors = householder(&mut b, d, p, true);
        // basis() is column-major d × r, so read row-major it is Uᵀ.
        crate::linalg::basis(&reflectors, d, r)
    };
    let coords = draw.val_coords.as_slice().expect("standard layout");
    // V = C·Uᵀ + (I − U·Uᵀ)·H: the drawn coordinates, plus N(0, 1) noise in
    // the directions no loss sees.
    let mut v = row_products(coords, nv, r, &ut, d);
    if r < d {
        let mut rest = rng(seed, Stream::ValidationRest);
        let h: Vec<f64> = (0..nv * d).map(|_| rest.sample(StandardNormal)).collect();
        let mut u = vec![0.0; d * r];
        for c in 0..r {
            for k in 0..d {
                u[k * r + c] = ut[c * d + k];
            }
        }
        let hu = row_products(&h, nv, d, &u, r);
        let huut = row_products(&hu, nv, r, &ut, d);
        for ((v, h), p) in v.iter_mut().zip(&h).zip(&huut) {
            *v += h - p;
        }
    }
    let x_val = Array2::from_shape_vec((nv, d), v).expect("num_val rows of num_inputs numbers");
    let y_val = x_val.dot(&draw.true_weights) + draw.true_bias + &draw.val_noise;
    Dataset {
        x_train: draw.x_train,
        y_train: draw.y_train,
        x_val,
        y_val,
    }
}

/// z₀ of a seed: its initial weights before scaling, N(0, 1) per input.
fn unit_initial_weights(num_inputs: usize, seed: u64) -> Array1<f64> {
    let mut rng = rng(seed, Stream::InitialWeights);
    Array1::<f64>::random_using(num_inputs, StandardNormal, &mut rng)
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
    unit_initial_weights(num_inputs, seed) * init_std
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
    fn the_formed_validation_rows_are_standard_normal_and_match_the_draw() {
        let settings = DataSettings::default();
        let data = synthetic(&settings, 6);
        let v = &data.x_val;
        let n = v.len() as f64;
        let mean = v.sum() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        // 20 000 draws: the mean's standard error is 0.007, the variance's 0.01.
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        // Independent of the training rows: their products are N(0, 200)
        // per pair, so the mean product is near 0 on the scale of 14.
        let k = v.dot(&data.x_train.t());
        let k_mean = k.sum() / k.len() as f64;
        assert!(k_mean.abs() < 0.5, "{k_mean}");

        // The formed rows' products with B = [z₀ | Xᵀ | w*] are C·S.
        let draw = book_draw(&settings, 6);
        let (nt, d) = draw.x_train.dim();
        let b = draw.reduce().s;
        let b_full = Array2::from_shape_vec((d, nt + 2), draw.basis_matrix()).unwrap();
        let direct = v.dot(&b_full);
        for row in 0..settings.num_val {
            for col in 0..nt + 2 {
                let via_coords: f64 = (0..=col.min(BookDraw::coords(nt, d) - 1))
                    .map(|i| draw.val_coords[[row, i]] * b[i * (nt + 2) + col])
                    .sum();
                let want = direct[[row, col]];
                assert!(
                    (via_coords - want).abs() < 1e-12 * (1.0 + want.abs()),
                    "({row}, {col}): {via_coords} vs {want}"
                );
            }
        }
        // And the targets follow the true model on them.
        let y = v.dot(&draw.true_weights) + settings.true_bias + &draw.val_noise;
        assert_eq!(y, data.y_val);
    }

    #[test]
    fn s_is_cholesky_when_safe_and_householder_otherwise_and_both_factor_btb() {
        let book = DataSettings::default();
        let cases = [
            (book.clone(), true),
            // More coordinates than inputs: BᵀB is singular.
            (
                DataSettings {
                    num_train: 20,
                    num_inputs: 5,
                    ..book.clone()
                },
                false,
            ),
            // w* = 0: a zero column.
            (
                DataSettings {
                    true_weight: 0.0,
                    ..book.clone()
                },
                false,
            ),
        ];
        for (settings, cholesky) in cases {
            let draw = book_draw(&settings, 2);
            let red = draw.reduce();
            assert_eq!(red.by_cholesky, cholesky, "{settings:?}");
            let (n, d) = draw.x_train.dim();
            let (p, r) = (n + 2, BookDraw::coords(n, d));
            let b = Array2::from_shape_vec((d, p), draw.basis_matrix()).unwrap();
            let s = Array2::from_shape_vec((r, p), red.s).unwrap();
            let (btb, sts) = (b.t().dot(&b), s.t().dot(&s));
            let scale = btb.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for (x, y) in btb.iter().zip(&sts) {
                assert!((x - y).abs() <= 1e-12 * scale, "{settings:?}: {x} vs {y}");
            }
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
