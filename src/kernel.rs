//! The training kernel: minibatch SGD in the span of the training rows, for
//! a block of jobs of one seed at once.
//!
//! Every SGD update shrinks w and adds a combination of training rows, so
//! from w₀ it stays of the form
//!
//! ```text
//!     w = c·w₀ + Xᵀa          (c a number, a one coefficient per training row)
//! ```
//!
//! and every quantity a job needs is a product of X, the validation rows V
//! and w₀ that depends only on the seed: G = XXᵀ, P = Xw₀, K = VXᵀ, Q = Vw₀
//! and ‖w₀‖². With those made once per seed ([`SeedFactors`]), a training
//! prediction is c·P_r + G_r·a + b, a validation prediction c·Q_v + K_v·a + b,
//! and ‖w‖² = c²‖w₀‖² + 2c·aᵀP + aᵀGa: each step and each evaluation works
//! in num_train dimensions instead of num_inputs.
//!
//! The validation loss needs only the length of the residual vector
//! r = c·Q + K·a + b·1 − y_v = A·z, with A = [Q | K | 1 | −y_v] and
//! z = (c, a, b, 1). A Householder QR of A, made once per seed, gives an
//! upper-trapezoidal R with at most num_train + 3 rows and ‖R·z‖ = ‖A·z‖
//! for every z; so each evaluation costs about (num_train + 3)²/2
//! multiplications instead of num_val × num_train. Householder QR is
//! backward stable column by column, so the residual is as accurate as the
//! one computed from A directly; no normal equations, no squared terms that
//! cancel.
//!
//! The jobs of a block (same seed, so same rows and minibatch order; any λ
//! and lr) advance together, their state stored job-fastest so the inner
//! loops run across jobs and vectorise. Each job's arithmetic is the same
//! sequence of IEEE operations whatever the block's size or company — the
//! loops over rows and coefficients run in a fixed order for every lane —
//! so a job gives the same bits alone or in any block. Nothing is chosen at
//! run time by CPU feature. Products of the seed are sums in a fixed order
//! ([`crate::linalg::row_products`]), never a matrix-product kernel that dispatches on the
//! CPU.

// The lane loops (`for j in 0..jobs`) read and write several per-job arrays
// at once; indexing them reads more plainly than zipping five slices.
#![allow(clippy::needless_range_loop)]

use ndarray::ArrayView1;

use crate::data::{BookDraw, Dataset, Reduction};
use crate::linalg::{householder, row_products};
use crate::spec::{Penalty, TrainSettings};
use crate::train::{EpochLoss, Outcome, Shuffler, Status};

/// The products of a seed's rows and initial weights that every job of the
/// seed shares.
#[derive(Debug, Clone)]
pub struct SeedFactors {
    n: usize,
    nv: usize,
    /// G = XXᵀ, n × n, row-major.
    gram: Vec<f64>,
    /// P = Xw₀.
    p: Vec<f64>,
    /// R of the QR of A = [Q | K | 1 | −y_v] (Q = Vw₀, K = VXᵀ): `val_rows`
    /// rows of n + 3 numbers, row-major, zero left of the diagonal.
    val_r: Vec<f64>,
    /// ‖w₀‖².
    w0_sq: f64,
    y: Vec<f64>,
    /// 0..n and 0..val_rows, the row lists of a full evaluation.
    rows_train: Vec<usize>,
    rows_val: Vec<usize>,
}

impl SeedFactors {
    /// The products of a data set whose rows are all formed (a data file's
    /// split, or a test's).
    pub fn new(data: &Dataset, init: ArrayView1<f64>) -> SeedFactors {
        let (n, nv, d) = (data.num_train(), data.x_val.nrows(), data.num_inputs());
        let x = data.x_train.as_standard_layout();
        let v = data.x_val.as_standard_layout();
        let (x, v) = (
            x.as_slice().expect("standard layout"),
            v.as_slice().expect("standard layout"),
        );
        let b = with_initial(init, x, n, d);
        // Row s: [Q_s | K_s].
        let val = row_products(v, nv, d, &b, n + 1);
        SeedFactors::assemble(
            row_products(x, n, d, &b, n + 1),
            val,
            data.y_train.to_vec(),
            data.y_val.as_slice().expect("contiguous"),
            init,
        )
    }

    /// The products of the book's data of one seed, from its reduced draw
    /// (see [`BookDraw`]): V·[w₀ | Xᵀ | w*] = C·S, with S the R of the QR of
    /// B = [z₀ | Xᵀ | w*] and w₀ = init_std·z₀.
    pub fn book(draw: &BookDraw, init_std: f64) -> SeedFactors {
        let (nv, coords) = draw.val_coords.dim();
        let width = draw.x_train.nrows() + 2;
        let init = &draw.z0 * init_std;
        let Reduction { train: xb, s, .. } = draw.reduce();
        // Rows of X·B and of V·B = C·S are [·z₀ | ·Xᵀ | ·w*].
        let vb = row_products(
            draw.val_coords.as_slice().expect("standard layout"),
            nv,
            coords,
            &s,
            width,
        );
        let y_val: Vec<f64> = vb
            .chunks_exact(width)
            .zip(&draw.val_noise)
            .map(|(row, noise)| row[width - 1] + draw.true_bias + noise)
            .collect();
        SeedFactors::assemble(
            with_scaled_initial(&xb, width, init_std),
            with_scaled_initial(&vb, width, init_std),
            draw.y_train.to_vec(),
            &y_val,
            init.view(),
        )
    }

    /// From [P | G] (n × (n + 1)) and [Q | K] (nv × (n + 1)), row-major.
    fn assemble(
        train: Vec<f64>,
        val: Vec<f64>,
        y: Vec<f64>,
        y_val: &[f64],
        init: ArrayView1<f64>,
    ) -> SeedFactors {
        let (n, nv) = (y.len(), y_val.len());
        let p = n + 1;
        // A = [Q | K | 1 | −y_v], row-major, reduced in place to its R.
        let width = n + 3;
        let mut val_r = vec![0.0; width * nv];
        for s in 0..nv {
            let row = &mut val_r[s * width..(s + 1) * width];
            row[..p].copy_from_slice(&val[s * p..(s + 1) * p]);
            row[n + 1] = 1.0;
            row[n + 2] = -y_val[s];
        }
        householder(&mut val_r, nv, width, false);
        let val_rows = nv.min(width);
        val_r.truncate(val_rows * width);
        SeedFactors {
            n,
            nv,
            // Row r of `train` is [P_r | G_r]. G_ri and G_ir are the same
            // products summed in the same order, so G is exactly symmetric.
            gram: (0..n)
                .flat_map(|r| train[r * p + 1..(r + 1) * p].iter().copied())
                .collect(),
            p: (0..n).map(|r| train[r * p]).collect(),
            val_r,
            w0_sq: init.iter().fold(0.0, |s, w| s + w * w),
            y,
            rows_train: (0..n).collect(),
            rows_val: (0..val_rows).collect(),
        }
    }
}

/// [P | G] or [Q | K] (rows of n + 1) from rows [·z₀ | ·Xᵀ | ·w*] of
/// `width` = n + 2 numbers: w₀ = init_std·z₀, so the first column is
/// scaled, and the products with w* are left out.
fn with_scaled_initial(products: &[f64], width: usize, init_std: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(products.len() / width * (width - 1));
    for row in products.chunks_exact(width) {
        out.push(init_std * row[0]);
        out.extend_from_slice(&row[1..width - 1]);
    }
    out
}

/// [w₀ | Xᵀ], d × (n + 1) row-major, for the row-major n × d training rows
/// `x`: a row of X or V times it is that row's products with w₀ and with
/// every training row.
fn with_initial(init: ArrayView1<f64>, x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let p = n + 1;
    let mut b = vec![0.0; d * p];
    for k in 0..d {
        b[k * p] = init[k];
        for i in 0..n {
            b[k * p + 1 + i] = x[i * d + k];
        }
    }
    b
}

/// The state of a block of jobs, job-fastest: z = (c, a₀ … a_{n−1}, b),
/// and number `col` of job `j` is `z[col * jobs + j]`.
struct Block {
    jobs: usize,
    n: usize,
    z: Vec<f64>,
}

impl Block {
    /// c, a and b: c and b one number per job, a one row of jobs per
    /// coefficient.
    fn parts(&self) -> (&[f64], &[f64], &[f64]) {
        let (c, rest) = self.z.split_at(self.jobs);
        let (a, b) = rest.split_at(self.n * self.jobs);
        (c, a, b)
    }

    fn c(&self, j: usize) -> f64 {
        self.z[j]
    }

    fn b(&self, j: usize) -> f64 {
        self.z[(self.n + 1) * self.jobs + j]
    }
}

/// Reusable buffers of one block, so that the training loop allocates
/// nothing.
struct Scratch {
    /// The current minibatch's errors, row-major over the batch.
    err: Vec<f64>,
    /// Products of an evaluation's rows with every job, row-major.
    dots: Vec<f64>,
    err_sum: Vec<f64>,
    train: Vec<f64>,
    val: Vec<f64>,
    a_p: Vec<f64>,
    a_g_a: Vec<f64>,
}

/// Losses and ‖w‖² of every job of the block (all without the penalty);
/// the validation loss only when `with_val`, since without curves only the
/// last epoch's is reported.
fn evaluate(f: &SeedFactors, st: &Block, s: &mut Scratch, with_val: bool) {
    let (n, jn) = (f.n, st.jobs);
    s.train.fill(0.0);
    s.a_p.fill(0.0);
    s.a_g_a.fill(0.0);
    let (c, a, b) = st.parts();
    products(&TRAIN, &f.gram, n, &f.rows_train, st, &mut s.dots);
    // Row by row, so that each job's sums take the rows in order.
    for (r, dots) in s.dots.chunks_exact(jn).take(n).enumerate() {
        let a_r = &a[r * jn..(r + 1) * jn];
        for j in 0..jn {
            let e = c[j] * f.p[r] + dots[j] + b[j] - f.y[r];
            s.train[j] += 0.5 * e * e;
            s.a_p[j] += a_r[j] * f.p[r];
            s.a_g_a[j] += a_r[j] * dots[j];
        }
    }
    s.val.fill(0.0);
    if with_val {
        // Row `row` of R·z: the dot over (c, a, b) plus the constant column.
        let width = n + 3;
        products(&VAL, &f.val_r, width, &f.rows_val, st, &mut s.dots);
        for (row, dots) in s.dots.chunks_exact(jn).take(f.rows_val.len()).enumerate() {
            let constant = f.val_r[row * width + n + 2];
            for j in 0..jn {
                let e = dots[j] + constant;
                s.val[j] += 0.5 * e * e;
            }
        }
    }
    for j in 0..jn {
        s.train[j] /= n as f64;
        s.val[j] = if with_val {
            s.val[j] / f.nv as f64
        } else {
            f64::NAN
        };
    }
}

/// Which part of z a matrix multiplies, and from which of its columns a
/// row's dot product starts.
struct Operand {
    /// z's number for the matrix's column 0.
    z_offset: usize,
    /// The matrix's columns that take part: its row length less this.
    unused_tail: usize,
    /// Rows whose entries left of the diagonal are zero (R) skip them: a
    /// row starts at the first column of its tile of 4 rows, which is the
    /// same column whether the row is computed in a tile or alone.
    trapezoidal: bool,
}

/// G multiplies a, which is z from number 1, and every column counts.
const TRAIN: Operand = Operand {
    z_offset: 1,
    unused_tail: 0,
    trapezoidal: false,
};

/// R multiplies (c, a, b) = z from number 0; its last column is the
/// constant, added by the caller.
const VAL: Operand = Operand {
    z_offset: 0,
    unused_tail: 1,
    trapezoidal: true,
};

/// Tile height in rows, and width in jobs.
const T: usize = 4;

/// Writes dot = M_r·z_j to `out[slot * jobs + j]` for every row r =
/// `rows[slot]` of the row-major matrix `m` (rows of `width` numbers, of
/// which `op` says which multiply which part of z) and every job j of the
/// block. Callers then run along each row's jobs, which vectorises.
///
/// This is nearly all of a job's arithmetic, so it runs in tiles of 4 rows
/// × 4 jobs whose 16 sums stay in registers, and what is left over in
/// strips of 4 rows or 4 jobs, so that independent sums advance side by
/// side. Tiling changes no job's bits: every dot sums its products over the
/// columns in order from 0.0, exactly as a plain loop would.
fn products(op: &Operand, m: &[f64], width: usize, rows: &[usize], st: &Block, out: &mut [f64]) {
    let jn = st.jobs;
    let mut each = |slot: usize, j: usize, dot: f64| out[slot * jn + j] = dot;
    let end = width - op.unused_tail;
    let first = |r: usize| if op.trapezoidal { r - r % T } else { 0 };
    let z = &st.z[op.z_offset * jn..];
    let tiled_jobs = jn - jn % T;
    let plain = |r: usize, j: usize| {
        (first(r)..end).fold(0.0, |sum, i| sum + m[r * width + i] * z[i * jn + j])
    };
    let mut chunks = rows.chunks_exact(T);
    let mut slot = 0;
    for chunk in chunks.by_ref() {
        let start = first(chunk[0]);
        // Callers pass R's rows as 0, 1, 2, …, so a tile's rows share
        // their first column.
        debug_assert!(chunk.iter().all(|&r| first(r) == start));
        for j0 in (0..tiled_jobs).step_by(T) {
            let mut acc = [[0.0f64; T]; T];
            for i in start..end {
                let zi: &[f64; T] = z[i * jn + j0..i * jn + j0 + T]
                    .try_into()
                    .expect("a tile of T jobs");
                for (sums, &r) in acc.iter_mut().zip(chunk) {
                    let k = m[r * width + i];
                    for (sum, &zij) in sums.iter_mut().zip(zi) {
                        *sum += k * zij;
                    }
                }
            }
            for (t, sums) in acc.iter().enumerate() {
                for (l, &dot) in sums.iter().enumerate() {
                    each(slot + t, j0 + l, dot);
                }
            }
        }
        // The jobs left over from the tiles, one at a time, with the four
        // rows' sums side by side.
        for j in tiled_jobs..jn {
            let mut acc = [0.0f64; T];
            for i in start..end {
                let zij = z[i * jn + j];
                for (sum, &r) in acc.iter_mut().zip(chunk) {
                    *sum += m[r * width + i] * zij;
                }
            }
            for (t, &dot) in acc.iter().enumerate() {
                each(slot + t, j, dot);
            }
        }
        slot += T;
    }
    // The rows left over from the tiles (a minibatch of 5 leaves one), one
    // at a time, with four jobs' sums side by side.
    for (t, &r) in chunks.remainder().iter().enumerate() {
        let m_r = &m[r * width..(r + 1) * width];
        for j0 in (0..tiled_jobs).step_by(T) {
            let mut acc = [0.0f64; T];
            for i in first(r)..end {
                let zi = &z[i * jn + j0..i * jn + j0 + T];
                for (sum, &zij) in acc.iter_mut().zip(zi) {
                    *sum += m_r[i] * zij;
                }
            }
            for (l, &dot) in acc.iter().enumerate() {
                each(slot + t, j0 + l, dot);
            }
        }
        for j in tiled_jobs..jn {
            each(slot + t, j, plain(r, j));
        }
    }
}

/// ‖w‖² of job `j` after [`evaluate`].
fn w_sq(f: &SeedFactors, st: &Block, s: &Scratch, j: usize) -> f64 {
    let c = st.c(j);
    c * c * f.w0_sq + 2.0 * c * s.a_p[j] + s.a_g_a[j]
}

/// One minibatch step for every job of the block: all errors at the current
/// weights first, then the shrink of every coefficient and the gradient
/// step on the batch's rows.
#[allow(clippy::too_many_arguments)]
fn step(
    f: &SeedFactors,
    penalty: Penalty,
    st: &mut Block,
    s: &mut Scratch,
    batch: &[usize],
    lambda: &[f64],
    lr: &[f64],
    keep: &[f64],
) {
    let (n, jn) = (f.n, st.jobs);
    let m = batch.len() as f64;
    s.err_sum.fill(0.0);
    let (c, _, b) = st.parts();
    products(&TRAIN, &f.gram, n, batch, st, &mut s.err);
    for (err, &r) in s.err.chunks_exact_mut(jn).zip(batch) {
        for j in 0..jn {
            let e = c[j] * f.p[r] + err[j] + b[j] - f.y[r];
            err[j] = e;
            s.err_sum[j] += e;
        }
    }
    // c and a are z's first n + 1 numbers; both shrink alike.
    let (weights, b) = st.z.split_at_mut((n + 1) * jn);
    match penalty {
        // w ← w − lr·(∇/m + λ·w), coefficient by coefficient.
        Penalty::Loss => {
            for w in weights.chunks_mut(jn) {
                for j in 0..jn {
                    w[j] -= lr[j] * (lambda[j] * w[j]);
                }
            }
        }
        // w ← (1 − lr·λ)·w − lr·∇/m.
        Penalty::Optimizer => {
            for w in weights.chunks_mut(jn) {
                for j in 0..jn {
                    w[j] *= keep[j];
                }
            }
        }
    }
    for (slot, &r) in batch.iter().enumerate() {
        let err = &s.err[slot * jn..(slot + 1) * jn];
        let a_r = &mut weights[(1 + r) * jn..(2 + r) * jn];
        for j in 0..jn {
            a_r[j] -= lr[j] * (err[j] / m);
        }
    }
    for j in 0..jn {
        b[j] -= lr[j] * (s.err_sum[j] / m);
    }
}

/// Trains every `(λ, lr)` of `jobs` on one seed; the outcomes come back in
/// the same order. `seed` fixes the minibatch order, shared by all of them.
/// With `curves` the losses of every epoch are recorded; without, the
/// curves are empty and the validation loss is computed at the end only.
/// Either way the final metrics are the same bits: a job diverges on its
/// training loss and weights, checked every epoch, and on its final
/// validation loss.
pub fn fit_block(
    f: &SeedFactors,
    settings: &TrainSettings,
    jobs: &[(f64, f64)],
    seed: u64,
    curves: bool,
) -> Vec<Outcome> {
    fit_block_until(f, settings, jobs, seed, curves, &|| false)
        .expect("a block that never gives up ends")
}

/// [`fit_block`], asking `give_up` before every epoch: once it answers
/// true, the block is abandoned and `None` returned, so that a stop request
/// does not wait for long jobs to end. Asking changes no arithmetic.
pub fn fit_block_until(
    f: &SeedFactors,
    settings: &TrainSettings,
    jobs: &[(f64, f64)],
    seed: u64,
    curves: bool,
    give_up: &dyn Fn() -> bool,
) -> Option<Vec<Outcome>> {
    let (n, jn) = (f.n, jobs.len());
    let mut st = Block {
        jobs: jn,
        n,
        z: vec![0.0; (n + 2) * jn],
    };
    // w = 1·w₀ + Xᵀ0, b = 0.
    st.z[..jn].fill(1.0);
    let mut s = Scratch {
        err: vec![0.0; settings.batch_size * jn],
        dots: vec![0.0; n.max(f.rows_val.len()) * jn],
        err_sum: vec![0.0; jn],
        train: vec![0.0; jn],
        val: vec![0.0; jn],
        a_p: vec![0.0; jn],
        a_g_a: vec![0.0; jn],
    };
    let lambda: Vec<f64> = jobs.iter().map(|j| j.0).collect();
    let lr: Vec<f64> = jobs.iter().map(|j| j.1).collect();
    let keep: Vec<f64> = jobs.iter().map(|&(l, r)| 1.0 - r * l).collect();
    let finite = |x: f64| x.is_finite().then_some(x);

    let record = curves;
    // A hint only: a run of a million epochs must not reserve it up front.
    let capacity = if record {
        (settings.epochs + 1).min(1024)
    } else {
        0
    };
    let mut curves: Vec<Vec<EpochLoss>> = (0..jn).map(|_| Vec::with_capacity(capacity)).collect();
    let mut active = vec![true; jn];
    let mut bound = vec![0.0; jn];
    evaluate(f, &st, &mut s, record);
    for j in 0..jn {
        if record {
            curves[j].push(EpochLoss {
                train: finite(s.train[j]),
                val: finite(s.val[j]),
            });
        }
        // Relative to the initial loss; a zero start must not make every
        // later step look divergent.
        bound[j] = settings.diverge_above * s.train[j].max(f64::MIN_POSITIVE);
        active[j] = s.train[j].is_finite();
    }

    let mut order = vec![0; n];
    let mut shuffler = Shuffler::new(seed);
    let mut final_val = vec![None; jn];
    for epoch in 1..=settings.epochs {
        if !active.iter().any(|&a| a) {
            break;
        }
        if give_up() {
            return None;
        }
        let last = epoch == settings.epochs;
        shuffler.next_epoch(&mut order);
        for batch in order.chunks(settings.batch_size) {
            step(
                f,
                settings.penalty,
                &mut st,
                &mut s,
                batch,
                &lambda,
                &lr,
                &keep,
            );
        }

        evaluate(f, &st, &mut s, record || last);
        for j in 0..jn {
            if !active[j] {
                continue;
            }
            let (train, val) = (s.train[j], s.val[j]);
            if record {
                curves[j].push(EpochLoss {
                    train: finite(train),
                    val: finite(val),
                });
            }
            if last {
                final_val[j] = finite(val);
            }
            let weights_finite = w_sq(f, &st, &s, j).is_finite() && st.b(j).is_finite();
            let val_ok = !last || val.is_finite();
            if !(train.is_finite() && val_ok && weights_finite) || train > bound[j] {
                active[j] = false;
                // A stopped job's lane keeps running with the others; zeros
                // keep its arithmetic cheap (no overflow, no subnormals).
                for z in st.z.chunks_mut(jn) {
                    z[j] = 0.0;
                }
            }
        }
    }

    let outcomes = curves
        .into_iter()
        .enumerate()
        .map(|(j, curve)| {
            if active[j] {
                Outcome {
                    status: Status::Ok,
                    train_loss: Some(s.train[j]),
                    val_loss: final_val[j],
                    l2_penalty: Some(0.5 * w_sq(f, &st, &s, j)),
                    curve,
                }
            } else {
                Outcome {
                    status: Status::Diverged,
                    train_loss: None,
                    val_loss: None,
                    l2_penalty: None,
                    curve,
                }
            }
        })
        .collect();
    Some(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{initial_weights, synthetic};
    use crate::spec::DataSettings;
    use crate::train;

    fn close(a: Option<f64>, b: Option<f64>, tol: f64) -> bool {
        match (a, b) {
            (Some(x), Some(y)) => (x - y).abs() <= tol * x.abs().max(y.abs()),
            (None, None) => true,
            _ => false,
        }
    }

    #[test]
    fn the_kernel_matches_the_straightforward_reference() {
        // The book's shape, then fewer validation rows than R has columns
        // (R trapezoidal), then a small odd shape that leaves remainders in
        // every tile.
        // And more rows than inputs, where the book's validation rows are
        // drawn whole (r = num_inputs).
        for (num_train, num_val, num_inputs) in
            [(20, 100, 200), (20, 3, 200), (7, 13, 30), (20, 30, 5)]
        {
            let settings = DataSettings {
                num_train,
                num_val,
                num_inputs,
                ..DataSettings::default()
            };
            matches_reference(&settings);
        }
        // No true weights: the book's S comes from a QR, not a Cholesky.
        matches_reference(&DataSettings {
            true_weight: 0.0,
            ..DataSettings::default()
        });
    }

    /// The reference trains on the full data set; the kernel on the book's
    /// reduced draw, as the sweep does, and on the full data set's products,
    /// as for a data file.
    fn matches_reference(data_settings: &DataSettings) {
        let data = synthetic(data_settings, 3);
        let init = initial_weights(data_settings.num_inputs, 0.01, 3);
        let book = SeedFactors::book(&crate::data::book_draw(data_settings, 3), 0.01);
        for f in [book, SeedFactors::new(&data, init.view())] {
            for r in 0..f.n {
                for i in 0..f.n {
                    assert_eq!(f.gram[r * f.n + i].to_bits(), f.gram[i * f.n + r].to_bits());
                }
            }
            matches_reference_with(&f, &data, init.view(), data_settings);
        }
    }

    fn matches_reference_with(
        f: &SeedFactors,
        data: &Dataset,
        init: ndarray::ArrayView1<f64>,
        data_settings: &DataSettings,
    ) {
        let jobs: Vec<(f64, f64)> = [0.0, 0.001, 0.1, 1.0, 3.0, 30.0]
            .iter()
            .flat_map(|&l| [0.003, 0.01, 0.03, 10.0].map(|r| (l, r)))
            .collect();
        for penalty in [Penalty::Loss, Penalty::Optimizer] {
            let settings = TrainSettings {
                penalty,
                batch_size: 5.min(data_settings.num_train),
                ..TrainSettings::default()
            };
            let fast = fit_block(f, &settings, &jobs, 3, true);
            for (&(lambda, lr), got) in jobs.iter().zip(&fast) {
                let want = train::fit(data, &settings, lambda, lr, init, 3).outcome;
                let what = format!("{data_settings:?} {penalty:?} λ = {lambda}, lr = {lr}");
                assert_eq!(got.status, want.status, "{what}");
                assert_eq!(got.curve.len(), want.curve.len(), "{what}");
                assert!(
                    close(got.val_loss, want.val_loss, 1e-9),
                    "{what}: {got:?} vs {want:?}"
                );
                assert!(close(got.train_loss, want.train_loss, 1e-6), "{what}");
                assert!(close(got.l2_penalty, want.l2_penalty, 1e-9), "{what}");
                for (g, w) in got.curve.iter().zip(&want.curve) {
                    if want.status == Status::Ok {
                        assert!(close(g.val, w.val, 1e-9), "{what}: {g:?} vs {w:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_job_gives_the_same_bits_alone_and_in_any_block() {
        let data = synthetic(&DataSettings::default(), 1);
        let init = initial_weights(200, 0.01, 1);
        let f = SeedFactors::new(&data, init.view());
        let settings = TrainSettings::default();
        let alone = fit_block(&f, &settings, &[(3.0, 0.01)], 1, true);
        let crowd: Vec<(f64, f64)> = (0..37)
            .map(|i| {
                if i == 20 {
                    (3.0, 0.01)
                } else {
                    (0.1 * i as f64, 0.02)
                }
            })
            .collect();
        let together = fit_block(&f, &settings, &crowd, 1, true);
        assert_eq!(alone[0], together[20]);
        let bits = |o: &Outcome| {
            o.curve
                .iter()
                .map(|e| e.val.map(f64::to_bits))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&alone[0]), bits(&together[20]));
    }

    #[test]
    fn final_metrics_are_the_same_bits_with_and_without_curves() {
        let data = synthetic(&DataSettings::default(), 2);
        let init = initial_weights(200, 0.01, 2);
        let f = SeedFactors::new(&data, init.view());
        let jobs: Vec<(f64, f64)> = [0.0, 0.3, 3.0]
            .iter()
            .flat_map(|&l| [0.01, 0.03, 10.0].map(|r| (l, r)))
            .collect();
        let settings = TrainSettings::default();
        let with = fit_block(&f, &settings, &jobs, 2, true);
        let without = fit_block(&f, &settings, &jobs, 2, false);
        for (a, b) in with.iter().zip(&without) {
            assert!(b.curve.is_empty());
            assert_eq!(a.status, b.status);
            let bits =
                |o: &Outcome| [o.train_loss, o.val_loss, o.l2_penalty].map(|x| x.map(f64::to_bits));
            assert_eq!(bits(a), bits(b));
        }
        assert!(with.iter().any(|o| o.status == Status::Diverged));
    }

    #[test]
    fn a_block_asks_to_give_up_every_epoch_and_stops_when_told() {
        let data = synthetic(&DataSettings::default(), 4);
        let init = initial_weights(200, 0.01, 4);
        let f = SeedFactors::new(&data, init.view());
        let settings = TrainSettings::default();
        let asked = std::cell::Cell::new(0);
        let count = || {
            asked.set(asked.get() + 1);
            false
        };
        let run = fit_block_until(&f, &settings, &[(3.0, 0.01)], 4, true, &count);
        assert_eq!(asked.get(), settings.epochs);
        assert_eq!(run, Some(fit_block(&f, &settings, &[(3.0, 0.01)], 4, true)));
        asked.set(0);
        let third = || {
            asked.set(asked.get() + 1);
            asked.get() == 3
        };
        assert_eq!(
            fit_block_until(&f, &settings, &[(3.0, 0.01)], 4, true, &third),
            None
        );
        assert_eq!(asked.get(), 3);
    }

    fn fit_one(
        data: &Dataset,
        init: &ndarray::Array1<f64>,
        settings: &TrainSettings,
        job: (f64, f64),
    ) -> Outcome {
        let f = SeedFactors::new(data, init.view());
        fit_block(&f, settings, &[job], 0, true).remove(0)
    }

    #[test]
    fn both_penalty_forms_agree_to_1e_12() {
        let data = synthetic(&DataSettings::default(), 5);
        let init = initial_weights(200, 0.01, 5);
        let mut differ = false;
        for lambda in [0.1, 3.0, 30.0] {
            let loss = TrainSettings::default();
            let opt = TrainSettings {
                penalty: Penalty::Optimizer,
                ..loss.clone()
            };
            let (a, b) = (
                fit_one(&data, &init, &loss, (lambda, 0.01)),
                fit_one(&data, &init, &opt, (lambda, 0.01)),
            );
            for (x, y) in [
                (a.val_loss, b.val_loss),
                (a.l2_penalty, b.l2_penalty),
                (a.train_loss, b.train_loss),
            ] {
                assert!(close(x, y, 1e-12), "λ = {lambda}: {x:?} vs {y:?}");
            }
            differ |= a.l2_penalty != b.l2_penalty || a.val_loss != b.val_loss;
        }
        assert!(differ, "the two forms must be computed differently");
    }

    #[test]
    fn full_batch_descent_reaches_ridge_in_the_kernel() {
        // A small problem, more rows than inputs; the closed form of
        // Ridge(alpha = n·λ) with an intercept gives the losses and ½‖w‖²
        // that full-batch descent must converge to.
        let settings = DataSettings {
            num_train: 20,
            num_val: 30,
            num_inputs: 5,
            noise_std: 0.5,
            ..Default::default()
        };
        let data = synthetic(&settings, 7);
        let (n, d) = data.x_train.dim();
        let init = initial_weights(d, 0.01, 7);
        let lambda = 0.3;
        let train = TrainSettings {
            epochs: 20_000,
            batch_size: n,
            ..Default::default()
        };
        let got = fit_one(&data, &init, &train, (lambda, 0.2));

        let x_mean = data.x_train.mean_axis(ndarray::Axis(0)).unwrap();
        let y_mean = data.y_train.mean().unwrap();
        let xc = &data.x_train - &x_mean;
        let yc = &data.y_train - y_mean;
        let mut a = xc.t().dot(&xc);
        for i in 0..d {
            a[[i, i]] += n as f64 * lambda;
        }
        // Solve a·w = xcᵀ yc by Gaussian elimination (a is 5 × 5, SPD).
        let mut rhs = xc.t().dot(&yc);
        for k in 0..d {
            for i in k + 1..d {
                let m = a[[i, k]] / a[[k, k]];
                for j in k..d {
                    a[[i, j]] -= m * a[[k, j]];
                }
                rhs[i] -= m * rhs[k];
            }
        }
        let mut w = ndarray::Array1::<f64>::zeros(d);
        for k in (0..d).rev() {
            let s: f64 = (k + 1..d).map(|j| a[[k, j]] * w[j]).sum();
            w[k] = (rhs[k] - s) / a[[k, k]];
        }
        let b = y_mean - x_mean.dot(&w);
        let val = train::half_mse(data.x_val.view(), data.y_val.view(), w.view(), b);
        let l2 = train::l2_penalty(w.view());
        assert!(
            close(got.val_loss, Some(val), 1e-9),
            "{:?} vs {val}",
            got.val_loss
        );
        assert!(
            close(got.l2_penalty, Some(l2), 1e-9),
            "{:?} vs {l2}",
            got.l2_penalty
        );
    }

    #[test]
    fn the_bias_is_never_decayed_in_the_kernel() {
        // With all inputs zero only the bias can fit: it must reach the mean
        // target whatever λ is, so the training loss is half the variance.
        let mut data = synthetic(
            &DataSettings {
                num_inputs: 3,
                ..Default::default()
            },
            0,
        );
        data.x_train.fill(0.0);
        data.x_val.fill(0.0);
        let mean = data.y_train.mean().unwrap();
        let half_var = data
            .y_train
            .iter()
            .map(|y| 0.5 * (y - mean).powi(2))
            .sum::<f64>()
            / 20.0;
        let settings = TrainSettings {
            epochs: 2000,
            batch_size: 20,
            ..Default::default()
        };
        let init = ndarray::Array1::from_elem(3, 1.0);
        for lambda in [0.0, 10.0] {
            let o = fit_one(&data, &init, &settings, (lambda, 0.05));
            assert!(
                close(o.train_loss, Some(half_var), 1e-12),
                "λ = {lambda}: {:?}",
                o.train_loss
            );
        }
    }
}
