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
//! The jobs of a block (same seed, so same rows and minibatch order; any λ
//! and lr) advance together, their state stored job-fastest so the inner
//! loops run across jobs and vectorise. Each job's arithmetic is the same
//! sequence of IEEE operations whatever the block's size or company — the
//! loops over rows and coefficients run in a fixed order for every lane —
//! so a job gives the same bits alone or in any block. Nothing is chosen at
//! run time by CPU feature. Products of the seed are plain dot products in
//! a fixed order (ndarray's one-dimensional `dot`), never a matrix-product
//! kernel that dispatches on the CPU.

// The lane loops (`for j in 0..jobs`) read and write several per-job arrays
// at once; indexing them reads more plainly than zipping five slices.
#![allow(clippy::needless_range_loop)]

use ndarray::ArrayView1;

use crate::data::Dataset;
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
    /// K = VXᵀ, nv × n, row-major.
    k: Vec<f64>,
    /// Q = Vw₀.
    q: Vec<f64>,
    /// ‖w₀‖².
    w0_sq: f64,
    y: Vec<f64>,
    yv: Vec<f64>,
    /// 0..n and 0..nv, the row lists of a full evaluation.
    rows_train: Vec<usize>,
    rows_val: Vec<usize>,
}

impl SeedFactors {
    pub fn new(data: &Dataset, init: ArrayView1<f64>) -> SeedFactors {
        let (x, v) = (&data.x_train, &data.x_val);
        let (n, nv) = (x.nrows(), v.nrows());
        let mut gram = vec![0.0; n * n];
        for r in 0..n {
            for i in 0..=r {
                // x_r·x_i and x_i·x_r are the same products summed in the
                // same order, so mirroring keeps G exactly symmetric.
                let g = x.row(r).dot(&x.row(i));
                gram[r * n + i] = g;
                gram[i * n + r] = g;
            }
        }
        let mut k = vec![0.0; nv * n];
        for s in 0..nv {
            for i in 0..n {
                k[s * n + i] = v.row(s).dot(&x.row(i));
            }
        }
        SeedFactors {
            n,
            nv,
            gram,
            p: (0..n).map(|r| x.row(r).dot(&init)).collect(),
            k,
            q: (0..nv).map(|s| v.row(s).dot(&init)).collect(),
            w0_sq: init.dot(&init),
            y: data.y_train.to_vec(),
            yv: data.y_val.to_vec(),
            rows_train: (0..n).collect(),
            rows_val: (0..nv).collect(),
        }
    }
}

/// The state of a block of jobs, job-fastest: coefficient `i` of job `j` is
/// `a[i * jobs + j]`.
struct Block {
    jobs: usize,
    c: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

/// Reusable buffers of one block, so that the training loop allocates
/// nothing.
struct Scratch {
    /// The current minibatch's errors, row-major over the batch.
    err: Vec<f64>,
    err_sum: Vec<f64>,
    train: Vec<f64>,
    val: Vec<f64>,
    a_p: Vec<f64>,
    a_g_a: Vec<f64>,
}

/// Losses and ‖w‖² of every job of the block (all without the penalty);
/// the validation loss only when `with_val`, since it is the costliest part
/// (num_val × num_train per job) and without curves only the last epoch's
/// is reported.
fn evaluate(f: &SeedFactors, st: &Block, s: &mut Scratch, with_val: bool) {
    let (n, jn) = (f.n, st.jobs);
    s.train.fill(0.0);
    s.a_p.fill(0.0);
    s.a_g_a.fill(0.0);
    let (a, c, b) = (&st.a, &st.c, &st.b);
    products(&f.gram, n, &f.rows_train, st, |r, j, dot| {
        let e = c[j] * f.p[r] + dot + b[j] - f.y[r];
        s.train[j] += 0.5 * e * e;
        s.a_p[j] += a[r * jn + j] * f.p[r];
        s.a_g_a[j] += a[r * jn + j] * dot;
    });
    s.val.fill(0.0);
    if with_val {
        products(&f.k, n, &f.rows_val, st, |v, j, dot| {
            let e = c[j] * f.q[v] + dot + b[j] - f.yv[v];
            s.val[j] += 0.5 * e * e;
        });
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

/// Calls `each(slot, j, dot)` with dot = M_r·a_j for every row r =
/// `rows[slot]` of the row-major matrix `m` (n columns) and every job j of
/// the block: for each job the rows come in the order given.
///
/// This is nearly all of a job's arithmetic, so it runs in tiles of 4 rows
/// × 4 jobs whose 16 sums stay in registers. Tiling changes no job's bits:
/// every dot sums its products over the coefficients in order from 0.0,
/// exactly as a plain loop would, and the rows reach `each` in order.
fn products(
    m: &[f64],
    n: usize,
    rows: &[usize],
    st: &Block,
    mut each: impl FnMut(usize, usize, f64),
) {
    const T: usize = 4;
    let jn = st.jobs;
    let tiled_jobs = jn - jn % T;
    let plain =
        |r: usize, j: usize| (0..n).fold(0.0, |sum, i| sum + m[r * n + i] * st.a[i * jn + j]);
    let mut chunks = rows.chunks_exact(T);
    let mut slot = 0;
    for chunk in chunks.by_ref() {
        for j0 in (0..tiled_jobs).step_by(T) {
            let mut acc = [[0.0f64; T]; T];
            for i in 0..n {
                let a: &[f64; T] = st.a[i * jn + j0..i * jn + j0 + T]
                    .try_into()
                    .expect("a tile of T jobs");
                for (sums, &r) in acc.iter_mut().zip(chunk) {
                    let k = m[r * n + i];
                    for (sum, &aij) in sums.iter_mut().zip(a) {
                        *sum += k * aij;
                    }
                }
            }
            for (t, sums) in acc.iter().enumerate() {
                for (l, &dot) in sums.iter().enumerate() {
                    each(slot + t, j0 + l, dot);
                }
            }
        }
        // The jobs left over from the tiles, one at a time.
        for (t, &r) in chunk.iter().enumerate() {
            for j in tiled_jobs..jn {
                each(slot + t, j, plain(r, j));
            }
        }
        slot += T;
    }
    for (t, &r) in chunks.remainder().iter().enumerate() {
        for j in 0..jn {
            each(slot + t, j, plain(r, j));
        }
    }
}

/// ‖w‖² of job `j` after [`evaluate`].
fn w_sq(f: &SeedFactors, st: &Block, s: &Scratch, j: usize) -> f64 {
    st.c[j] * st.c[j] * f.w0_sq + 2.0 * st.c[j] * s.a_p[j] + s.a_g_a[j]
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
    products(&f.gram, n, batch, st, |slot, j, dot| {
        let r = batch[slot];
        let e = st.c[j] * f.p[r] + dot + st.b[j] - f.y[r];
        s.err[slot * jn + j] = e;
        s.err_sum[j] += e;
    });
    match penalty {
        // w ← w − lr·(∇/m + λ·w), coefficient by coefficient.
        Penalty::Loss => {
            for j in 0..jn {
                st.c[j] -= lr[j] * (lambda[j] * st.c[j]);
            }
            for a in st.a.chunks_mut(jn) {
                for j in 0..jn {
                    a[j] -= lr[j] * (lambda[j] * a[j]);
                }
            }
        }
        // w ← (1 − lr·λ)·w − lr·∇/m.
        Penalty::Optimizer => {
            for j in 0..jn {
                st.c[j] *= keep[j];
            }
            for a in st.a.chunks_mut(jn) {
                for j in 0..jn {
                    a[j] *= keep[j];
                }
            }
        }
    }
    for (slot, &r) in batch.iter().enumerate() {
        let err = &s.err[slot * jn..(slot + 1) * jn];
        let a_r = &mut st.a[r * jn..(r + 1) * jn];
        for j in 0..jn {
            a_r[j] -= lr[j] * (err[j] / m);
        }
    }
    for j in 0..jn {
        st.b[j] -= lr[j] * (s.err_sum[j] / m);
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
    let (n, jn) = (f.n, jobs.len());
    let mut st = Block {
        jobs: jn,
        c: vec![1.0; jn],
        a: vec![0.0; n * jn],
        b: vec![0.0; jn],
    };
    let mut s = Scratch {
        err: vec![0.0; settings.batch_size * jn],
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
            let weights_finite = w_sq(f, &st, &s, j).is_finite() && st.b[j].is_finite();
            let val_ok = !last || val.is_finite();
            if !(train.is_finite() && val_ok && weights_finite) || train > bound[j] {
                active[j] = false;
                // A stopped job's lane keeps running with the others; zeros
                // keep its arithmetic cheap (no overflow, no subnormals).
                st.c[j] = 0.0;
                st.b[j] = 0.0;
                for a in st.a.chunks_mut(jn) {
                    a[j] = 0.0;
                }
            }
        }
    }

    curves
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
        .collect()
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
        let data = synthetic(&DataSettings::default(), 3);
        let init = initial_weights(200, 0.01, 3);
        let f = SeedFactors::new(&data, init.view());
        let jobs: Vec<(f64, f64)> = [0.0, 0.001, 0.1, 1.0, 3.0, 30.0]
            .iter()
            .flat_map(|&l| [0.003, 0.01, 0.03, 10.0].map(|r| (l, r)))
            .collect();
        for penalty in [Penalty::Loss, Penalty::Optimizer] {
            let settings = TrainSettings {
                penalty,
                ..TrainSettings::default()
            };
            let fast = fit_block(&f, &settings, &jobs, 3, true);
            for (&(lambda, lr), got) in jobs.iter().zip(&fast) {
                let want = train::fit(&data, &settings, lambda, lr, init.view(), 3).outcome;
                let what = format!("{penalty:?} λ = {lambda}, lr = {lr}");
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
