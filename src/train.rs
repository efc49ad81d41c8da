//! One job: minibatch SGD on a linear model with an L2 penalty.
//!
//! The model is ŷ = X·w + b. Each step minimises, over a minibatch B,
//!
//! ```text
//!     mean over B of ½(ŷ − y)²  +  (λ/2)·‖w‖²      (the bias is never penalised)
//! ```
//!
//! with p ← p − lr·∂/∂p (DESIGN.md §2). The penalty can enter as part of
//! the objective ([`Penalty::Loss`]) or as the optimizer's weight decay
//! ([`Penalty::Optimizer`]); the two are the same update in exact
//! arithmetic and differ only in rounding.
//!
//! A job is a pure function of its inputs: it draws only from its seed's own
//! shuffle stream, and every sum runs in a fixed order, so its result is the
//! same bit for bit whatever thread runs it and whatever else runs beside it.

use ndarray::{Array1, ArrayView1, ArrayView2};
use ndarray_rand::rand::seq::SliceRandom;

use crate::data::{self, Dataset, Stream};
use crate::spec::{Penalty, TrainSettings};

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// A loss or weight became non-finite, or the training loss grew past
    /// `diverge_above` times its initial value. Training stopped there.
    Diverged,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Diverged => "diverged",
        }
    }
}

/// Losses after one epoch (epoch 0 is the initial weights), without the
/// penalty. `None` where the value was not finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochLoss {
    pub train: Option<f64>,
    pub val: Option<f64>,
}

/// Everything a job reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    /// Final metrics; all `None` for a diverged job.
    pub train_loss: Option<f64>,
    pub val_loss: Option<f64>,
    /// ½‖w‖², the book's "L2 norm of w".
    pub l2_penalty: Option<f64>,
    /// One entry per epoch that ran, from epoch 0.
    pub curve: Vec<EpochLoss>,
}

/// A trained model and its outcome.
#[derive(Debug, Clone)]
pub struct Fit {
    pub w: Array1<f64>,
    pub b: f64,
    pub outcome: Outcome,
}

/// Mean of ½(x·w + b − y)² over the rows of `x`.
pub fn half_mse(x: ArrayView2<f64>, y: ArrayView1<f64>, w: ArrayView1<f64>, b: f64) -> f64 {
    let mut sum = 0.0;
    for (row, &target) in x.rows().into_iter().zip(y) {
        let err = row.dot(&w) + b - target;
        sum += 0.5 * err * err;
    }
    sum / x.nrows() as f64
}

/// ½‖w‖².
pub fn l2_penalty(w: ArrayView1<f64>) -> f64 {
    0.5 * w.dot(&w)
}

/// The minibatch order of a seed: a fresh permutation of the training rows
/// every epoch, drawn from the seed's shuffle stream alone, so every λ and
/// lr of a seed visits the rows in the same order.
pub struct Shuffler {
    rng: rand_chacha::ChaCha8Rng,
}

impl Shuffler {
    pub fn new(seed: u64) -> Shuffler {
        Shuffler {
            rng: data::rng(seed, Stream::Shuffle),
        }
    }

    /// Fills `order` with the next epoch's permutation of `0..order.len()`.
    pub fn next_epoch(&mut self, order: &mut [usize]) {
        for (i, slot) in order.iter_mut().enumerate() {
            *slot = i;
        }
        order.shuffle(&mut self.rng);
    }
}

/// The row orders of the first `epochs` epochs of a seed (for inspection;
/// training draws them one epoch at a time).
pub fn epoch_orders(seed: u64, num_train: usize, epochs: usize) -> Vec<Vec<usize>> {
    let mut shuffler = Shuffler::new(seed);
    (0..epochs)
        .map(|_| {
            let mut order = vec![0; num_train];
            shuffler.next_epoch(&mut order);
            order
        })
        .collect()
}

/// Trains one job the straightforward way, on w itself, recording its
/// losses every epoch. The sweep uses the faster [`crate::kernel`] where
/// it pays, which is checked against this reference (to rounding) in its
/// tests. `init` are the seed's initial weights; the minibatch order comes
/// from the seed's shuffle stream.
pub fn fit(
    data: &Dataset,
    settings: &TrainSettings,
    lambda: f64,
    lr: f64,
    init: ArrayView1<f64>,
    seed: u64,
) -> Fit {
    fit_until(data, settings, (lambda, lr), init, seed, true, &|| false)
        .expect("a fit that never gives up ends")
}

/// [`fit`], with the curve recorded only if `curves` (the final metrics are
/// the same bits either way), and `give_up` asked before every epoch: once
/// it answers true, the job is abandoned and `None` returned, so that a stop
/// request does not wait for a long job to end.
pub fn fit_until(
    data: &Dataset,
    settings: &TrainSettings,
    (lambda, lr): (f64, f64),
    init: ArrayView1<f64>,
    seed: u64,
    curves: bool,
    give_up: &dyn Fn() -> bool,
) -> Option<Fit> {
    let n = data.num_train();
    let mut w = init.to_owned();
    let mut b = 0.0;
    let mut grad = Array1::<f64>::zeros(w.len());
    let mut order: Vec<usize> = vec![0; n];
    let mut shuffler = Shuffler::new(seed);

    let evaluate = |w: &Array1<f64>, b: f64| {
        (
            half_mse(data.x_train.view(), data.y_train.view(), w.view(), b),
            half_mse(data.x_val.view(), data.y_val.view(), w.view(), b),
        )
    };
    let finite = |x: f64| x.is_finite().then_some(x);

    let (train0, val0) = evaluate(&w, b);
    // A hint only: a run of a billion epochs must not reserve it up front.
    let mut curve = Vec::with_capacity(if curves {
        (settings.epochs + 1).min(1024)
    } else {
        0
    });
    let mut record = |train: f64, val: f64| {
        if curves {
            curve.push(EpochLoss {
                train: finite(train),
                val: finite(val),
            });
        }
    };
    record(train0, val0);
    // The bound is relative to the initial loss; a zero initial loss (a
    // perfect start) must not make every later step look divergent.
    let bound = settings.diverge_above * train0.max(f64::MIN_POSITIVE);
    let mut status = if train0.is_finite() {
        Status::Ok
    } else {
        Status::Diverged
    };
    let mut last = (train0, val0);

    for _ in 0..settings.epochs {
        if status == Status::Diverged {
            break;
        }
        if give_up() {
            return None;
        }
        shuffler.next_epoch(&mut order);

        for batch in order.chunks(settings.batch_size) {
            grad.fill(0.0);
            let mut grad_b = 0.0;
            for &r in batch {
                let row = data.x_train.row(r);
                let err = row.dot(&w) + b - data.y_train[r];
                grad.scaled_add(err, &row);
                grad_b += err;
            }
            let m = batch.len() as f64;
            match settings.penalty {
                Penalty::Loss => {
                    // ∂/∂w of the objective: the data term plus λ·w.
                    w.zip_mut_with(&grad, |wj, &gj| *wj -= lr * (gj / m + lambda * *wj));
                }
                Penalty::Optimizer => {
                    // Decay applied by the optimizer, as MXNet's SGD does:
                    // w ← (1 − lr·λ)·w − lr·∇data.
                    let keep = 1.0 - lr * lambda;
                    w.zip_mut_with(&grad, |wj, &gj| *wj = keep * *wj - lr * (gj / m));
                }
            }
            b -= lr * (grad_b / m);
        }

        let (train, val) = evaluate(&w, b);
        record(train, val);
        let weights_finite = l2_penalty(w.view()).is_finite() && b.is_finite();
        if !(train.is_finite() && val.is_finite() && weights_finite) || train > bound {
            status = Status::Diverged;
        }
        last = (train, val);
    }

    let outcome = match status {
        Status::Ok => Outcome {
            status,
            train_loss: Some(last.0),
            val_loss: Some(last.1),
            l2_penalty: Some(l2_penalty(w.view())),
            curve,
        },
        Status::Diverged => Outcome {
            status,
            train_loss: None,
            val_loss: None,
            l2_penalty: None,
            curve,
        },
    };
    Some(Fit { w, b, outcome })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{initial_weights, synthetic};
    use crate::spec::DataSettings;

    fn book(seed: u64) -> (Dataset, Array1<f64>) {
        let data = synthetic(&DataSettings::default(), seed);
        let init = initial_weights(200, 0.01, seed);
        (data, init)
    }

    fn max_rel_diff(a: &Array1<f64>, b: &Array1<f64>) -> f64 {
        let scale = a.iter().map(|x| x.abs()).fold(0.0, f64::max);
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
            / scale
    }

    #[test]
    fn both_penalty_forms_give_the_same_weights() {
        let (data, init) = book(0);
        for lambda in [0.0, 0.1, 3.0] {
            let loss = TrainSettings::default();
            let opt = TrainSettings {
                penalty: Penalty::Optimizer,
                ..loss.clone()
            };
            let a = fit(&data, &loss, lambda, 0.01, init.view(), 0);
            let b = fit(&data, &opt, lambda, 0.01, init.view(), 0);
            let rel = max_rel_diff(&a.w, &b.w);
            assert!(rel < 1e-12, "λ = {lambda}: relative difference {rel}");
            assert!((a.b - b.b).abs() <= 1e-12 * a.b.abs());
            if lambda > 0.0 {
                // Different rounding paths, so not the same bits.
                assert_ne!(a.w, b.w, "the two forms must be computed differently");
            }
        }
    }

    #[test]
    fn the_bias_is_never_decayed() {
        // With zero inputs the weights only decay, and the bias sees only the
        // data: it must reach the mean target whatever λ is.
        let mut data = synthetic(
            &DataSettings {
                num_inputs: 3,
                ..Default::default()
            },
            0,
        );
        data.x_train.fill(0.0);
        let mean_y = data.y_train.mean().unwrap();
        let settings = TrainSettings {
            epochs: 2000,
            batch_size: 20,
            ..Default::default()
        };
        let init = Array1::from_elem(3, 1.0);
        for lambda in [0.0, 10.0] {
            let fit = fit(&data, &settings, lambda, 0.05, init.view(), 0);
            assert!(
                (fit.b - mean_y).abs() < 1e-12,
                "λ = {lambda}: b = {}",
                fit.b
            );
        }
        // While the weights shrink by exactly (1 − lr·λ) each step.
        let fit = fit(&data, &settings, 10.0, 0.05, init.view(), 0);
        assert!(fit.w.iter().all(|&wj| wj.abs() < 1e-300));
    }

    #[test]
    fn a_large_learning_rate_diverges() {
        let (data, init) = book(0);
        let fit = fit(&data, &TrainSettings::default(), 0.0, 10.0, init.view(), 0);
        assert_eq!(fit.outcome.status, Status::Diverged);
        assert_eq!(fit.outcome.val_loss, None);
        assert!(
            fit.outcome.curve.len() < 11,
            "training must stop when it diverges"
        );
    }

    #[test]
    fn the_books_lambda_generalises_better() {
        let settings = TrainSettings::default();
        let mut better = 0;
        for seed in 0..10 {
            let (data, init) = book(seed);
            let plain = fit(&data, &settings, 0.0, 0.01, init.view(), seed).outcome;
            let decayed = fit(&data, &settings, 3.0, 0.01, init.view(), seed).outcome;
            assert_eq!(plain.curve.len(), 11);
            better += usize::from(decayed.val_loss < plain.val_loss);
        }
        assert!(better >= 9, "λ = 3 beat λ = 0 on only {better} of 10 seeds");
    }

    /// Solves a small symmetric positive-definite system by Gaussian
    /// elimination (test-only; the sizes here are tiny).
    fn solve(mut a: Vec<Vec<f64>>, mut rhs: Vec<f64>) -> Vec<f64> {
        let n = rhs.len();
        for k in 0..n {
            let pivot = a[k].clone();
            for i in k + 1..n {
                let f = a[i][k] / pivot[k];
                for (aij, pj) in a[i].iter_mut().zip(&pivot).skip(k) {
                    *aij -= f * pj;
                }
                rhs[i] -= f * rhs[k];
            }
        }
        let mut x = vec![0.0; n];
        for k in (0..n).rev() {
            let s: f64 = (k + 1..n).map(|j| a[k][j] * x[j]).sum();
            x[k] = (rhs[k] - s) / a[k][k];
        }
        x
    }

    #[test]
    fn full_batch_descent_reaches_the_ridge_closed_form() {
        let settings = DataSettings {
            num_train: 20,
            num_inputs: 5,
            noise_std: 0.5,
            ..Default::default()
        };
        let data = synthetic(&settings, 7);
        let (n, d) = data.x_train.dim();
        let lambda = 0.3;
        let train = TrainSettings {
            epochs: 20_000,
            batch_size: n,
            ..Default::default()
        };
        let init = initial_weights(d, 0.01, 7);
        let fit = fit(&data, &train, lambda, 0.2, init.view(), 7);

        // Ridge(alpha = n·λ) with an intercept: centre, then solve
        // (XcᵀXc + nλ·I) w = Xcᵀ yc, and b = ȳ − x̄·w.
        let x_mean = data.x_train.mean_axis(ndarray::Axis(0)).unwrap();
        let y_mean = data.y_train.mean().unwrap();
        let xc = &data.x_train - &x_mean;
        let yc = &data.y_train - y_mean;
        let gram = xc.t().dot(&xc);
        let a: Vec<Vec<f64>> = (0..d)
            .map(|i| {
                (0..d)
                    .map(|j| gram[[i, j]] + if i == j { n as f64 * lambda } else { 0.0 })
                    .collect()
            })
            .collect();
        let w = Array1::from(solve(a, xc.t().dot(&yc).to_vec()));
        let b = y_mean - x_mean.dot(&w);

        let rel = max_rel_diff(&w, &fit.w);
        assert!(rel < 1e-9, "weights differ from ridge by {rel} (relative)");
        assert!(
            (b - fit.b).abs() < 1e-9 * b.abs(),
            "bias {} vs ridge {b}",
            fit.b
        );
    }

    #[test]
    fn without_curves_a_fit_keeps_the_same_bits_and_gives_up_when_told() {
        let (data, init) = book(5);
        let settings = TrainSettings::default();
        let full = fit(&data, &settings, 3.0, 0.01, init.view(), 5);
        let bare = fit_until(
            &data,
            &settings,
            (3.0, 0.01),
            init.view(),
            5,
            false,
            &|| false,
        )
        .expect("never told to give up");
        assert!(bare.outcome.curve.is_empty());
        assert_eq!(full.outcome.curve.len(), settings.epochs + 1);
        let bits =
            |o: &Outcome| [o.train_loss, o.val_loss, o.l2_penalty].map(|x| x.map(f64::to_bits));
        assert_eq!(bits(&full.outcome), bits(&bare.outcome));
        assert_eq!(full.w, bare.w);
        let asked = std::cell::Cell::new(0);
        let second = || {
            asked.set(asked.get() + 1);
            asked.get() == 2
        };
        assert!(fit_until(&data, &settings, (3.0, 0.01), init.view(), 5, true, &second).is_none());
        assert_eq!(asked.get(), 2);
    }
}
