//! Faithful to the book: *Dive into Deep Learning*, section 3.7 (weight
//! decay), run with its settings over many seeds. Its published single runs
//! must look like typical draws of ours, and λ = 3 must beat λ = 0 clearly.

use wdsweep::spec::Spec;
use wdsweep::sweep::{self, JobResult, Progress};

const SEEDS: usize = 400;

/// The empirical p-quantile (linear interpolation between order statistics).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn assert_within_central_95(name: &str, values: &[f64], published: f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = (quantile(&sorted, 0.025), quantile(&sorted, 0.975));
    println!("{name}: published {published}, our 2.5%–97.5% range [{lo:.5}, {hi:.5}]");
    assert!(
        lo <= published && published <= hi,
        "{name}: {published} outside [{lo}, {hi}]"
    );
}

#[test]
fn the_books_published_runs_are_typical_and_weight_decay_helps() {
    let spec = Spec::from_toml(
        &format!("[grid]\nlambda = [0, 3]\nlr = [0.01]\nseed = {{ count = {SEEDS} }}\n"),
        "book.toml",
        "book",
    )
    .unwrap();
    let results = sweep::run_all(&spec, &Progress::new(0, true));
    let of = |lambda: f64| -> Vec<&JobResult> {
        results.iter().filter(|r| r.lambda == lambda).collect()
    };
    let (plain, decayed) = (of(0.0), of(3.0));
    assert_eq!((plain.len(), decayed.len()), (SEEDS, SEEDS));
    assert!(
        results
            .iter()
            .all(|r| r.outcome.status == wdsweep::train::Status::Ok)
    );

    let metric = |jobs: &[&JobResult], f: &dyn Fn(&JobResult) -> f64| -> Vec<f64> {
        jobs.iter().map(|r| f(r)).collect()
    };
    let l2 = |r: &JobResult| r.outcome.l2_penalty.unwrap();
    let val = |r: &JobResult| r.outcome.val_loss.unwrap();
    let train = |r: &JobResult| r.outcome.train_loss.unwrap();
    // The book plots the validation loss with the penalty included.
    let plotted = |r: &JobResult| r.outcome.val_loss.unwrap() + r.lambda * l2(r);

    // PyTorch edition: ½‖w‖² = 0.00995 at λ = 0 and 0.00173 at λ = 3;
    // plotted final validation loss about 0.0219 and 0.0167.
    assert_within_central_95("½‖w‖² at λ = 0", &metric(&plain, &l2), 0.00995);
    assert_within_central_95("½‖w‖² at λ = 3", &metric(&decayed, &l2), 0.00173);
    assert_within_central_95(
        "plotted val loss at λ = 0",
        &metric(&plain, &plotted),
        0.0219,
    );
    assert_within_central_95(
        "plotted val loss at λ = 3",
        &metric(&decayed, &plotted),
        0.0167,
    );
    // The TensorFlow and JAX editions: 0.0109 at λ = 0 (both), 0.0017 (TF)
    // and 0.0015 (JAX) at λ = 3.
    assert_within_central_95("½‖w‖² at λ = 0 (TF, JAX)", &metric(&plain, &l2), 0.0109);
    assert_within_central_95("½‖w‖² at λ = 3 (TF)", &metric(&decayed, &l2), 0.0017);
    assert_within_central_95("½‖w‖² at λ = 3 (JAX)", &metric(&decayed, &l2), 0.0015);

    // Paired by seed: the same data, initial weights and batches.
    let diffs: Vec<f64> = plain
        .iter()
        .zip(&decayed)
        .map(|(a, b)| {
            assert_eq!(a.seed, b.seed);
            val(a) - val(b)
        })
        .collect();
    let (mean_diff, sd_diff) = mean_std(&diffs);
    let se = sd_diff / (SEEDS as f64).sqrt();
    println!(
        "val_loss(λ=0) − val_loss(λ=3): mean {mean_diff:.5}, SE {se:.6}, {:.1} SE",
        mean_diff / se
    );
    assert!(
        mean_diff > 5.0 * se,
        "λ = 3 is not better by 5 SE: {mean_diff} vs SE {se}"
    );

    for (name, jobs) in [("λ = 0", &plain), ("λ = 3", &decayed)] {
        for (m, f) in [
            ("val_loss", &val as &dyn Fn(&JobResult) -> f64),
            ("train_loss", &train),
            ("½‖w‖²", &l2),
        ] {
            let (mean, sd) = mean_std(&metric(jobs, f));
            println!("{name}: {m} mean {mean:.6} sd {sd:.6}");
        }
    }
}
