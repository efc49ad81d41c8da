//! The shipped example, `data/diabetes.csv`: full-batch gradient descent on
//! it reaches the ridge closed form (DESIGN.md §2), and
//! `sweeps/diabetes.toml` chooses a λ strictly inside its grid.

mod common;

use std::path::Path;

use common::*;
use ndarray::{Array1, Array2, Axis};
use wdsweep::data::{for_seed, initial_weights};
use wdsweep::spec::Spec;
use wdsweep::train;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Solves A·x = b for a symmetric positive-definite A by its Cholesky
/// factor A = L·Lᵀ.
fn cholesky_solve(a: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let n = b.len();
    let mut l = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            if i == j {
                let d = a[[i, i]] - s;
                assert!(d > 0.0, "not positive definite");
                l[[i, i]] = d.sqrt();
            } else {
                l[[i, j]] = (a[[i, j]] - s) / l[[j, j]];
            }
        }
    }
    let mut z = Array1::<f64>::zeros(n);
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[[i, k]] * z[k]).sum();
        z[i] = (b[i] - s) / l[[i, i]];
    }
    let mut x = Array1::<f64>::zeros(n);
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[[k, i]] * x[k]).sum();
        x[i] = (z[i] - s) / l[[i, i]];
    }
    x
}

/// scikit-learn's Ridge(alpha = n·λ, fit_intercept = True) on `n` rows:
/// centre, solve (XcᵀXc + nλ·I)·w = Xcᵀ(y − ȳ), then b = ȳ − x̄·w.
fn ridge(x: &Array2<f64>, y: &Array1<f64>, lambda: f64) -> (Array1<f64>, f64) {
    let n = x.nrows() as f64;
    let x_mean = x.mean_axis(Axis(0)).unwrap();
    let y_mean = y.mean().unwrap();
    let xc = x - &x_mean;
    let mut a = xc.t().dot(&xc);
    for i in 0..a.nrows() {
        a[[i, i]] += n * lambda;
    }
    let w = cholesky_solve(&a, &xc.t().dot(&(y - y_mean)));
    let b = y_mean - x_mean.dot(&w);
    (w, b)
}

fn max_rel_diff(got: &Array1<f64>, want: &Array1<f64>) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    got.iter()
        .zip(want)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

/// The first 354 rows train (80%), the rest validate; one full batch.
const TRAIN_ROWS: usize = 354;

#[test]
fn full_batch_descent_on_diabetes_reaches_the_ridge_closed_form() {
    let spec = Spec::parse_in(
        &format!(
            "[data]\npath = \"data/diabetes.csv\"\ntarget = \"target\"\n\
             train_rows = {TRAIN_ROWS}\n[train]\nbatch_size = {TRAIN_ROWS}\nepochs = 3000\n"
        ),
        "diabetes test spec",
        "diabetes",
        10,
        root(),
    )
    .unwrap();
    let data = for_seed(&spec.data, 0).unwrap();
    assert_eq!(data.x_train.dim(), (TRAIN_ROWS, 10));
    let init = initial_weights(10, spec.train.init_std, 0);
    // The standardised features' covariance has eigenvalues from about
    // 0.009 to 4: lr = 0.2 is stable up to λ = 5 and converges in well
    // under 3000 steps down to λ = 0.05.
    for lambda in [0.05, 0.5, 5.0] {
        let fit = train::fit(&data, &spec.train, lambda, 0.2, init.view(), 0);
        let (w, b) = ridge(&data.x_train, &data.y_train, lambda);
        let dw = max_rel_diff(&fit.w, &w);
        assert!(dw < 1e-8, "λ = {lambda}: weights differ by {dw} (relative)");
        assert!(rel(fit.b, b) < 1e-8, "λ = {lambda}: bias {} vs {b}", fit.b);
        let val = train::half_mse(data.x_val.view(), data.y_val.view(), w.view(), b);
        let got = fit.outcome.val_loss.unwrap();
        assert!(
            rel(got, val) < 1e-8,
            "λ = {lambda}: val_loss {got} vs {val}"
        );
    }
}

/// The diabetes table parsed by hand, independently of wdsweep's reader.
fn diabetes_by_hand() -> (Array2<f64>, Array1<f64>) {
    let text = std::fs::read_to_string(root().join("data/diabetes.csv")).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect();
    let x = Array2::from_shape_fn((rows.len(), 10), |(i, j)| rows[i][j]);
    let y = rows.iter().map(|r| r[10]).collect();
    (x, y)
}

#[test]
fn the_sweep_reports_the_closed_forms_losses() {
    // The whole pipeline, through the binary, against a standardisation and
    // a solve written here.
    let (x, y) = diabetes_by_hand();
    let t = TRAIN_ROWS;
    let (xt, xv) = (x.slice(ndarray::s![..t, ..]), x.slice(ndarray::s![t.., ..]));
    let mean = xt.mean_axis(Axis(0)).unwrap();
    let std = xt.std_axis(Axis(0), 0.0);
    let (xt, xv) = ((&xt - &mean) / &std, (&xv - &mean) / &std);
    let (yt, yv) = (
        y.slice(ndarray::s![..t]).to_owned(),
        y.slice(ndarray::s![t..]).to_owned(),
    );
    let lambda = 0.5;
    let (w, b) = ridge(&xt, &yt, lambda);
    let val = train::half_mse(xv.view(), yv.view(), w.view(), b);
    let l2 = 0.5 * w.dot(&w);

    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "s.toml",
        &format!(
            "[data]\npath = {:?}\ntarget = \"target\"\ntrain_rows = {t}\n\
             [train]\nbatch_size = {t}\nepochs = 600\n\
             [grid]\nlambda = [{lambda}]\nlr = [0.2]\n",
            root().join("data/diabetes.csv")
        ),
    );
    let out = dir.path().join("out");
    let o = run(&spec, &out, &["--curves", "off"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (header, rows) = read_csv(&out.join("jobs.csv"));
    let cell = |name: &str| -> f64 {
        rows[0][header.iter().position(|h| h == name).unwrap()]
            .parse()
            .unwrap()
    };
    assert!(
        rel(cell("val_loss"), val) < 1e-8,
        "{} vs {val}",
        cell("val_loss")
    );
    assert!(
        rel(cell("l2_penalty"), l2) < 1e-8,
        "{} vs {l2}",
        cell("l2_penalty")
    );
}

#[test]
fn the_example_sweep_chooses_a_lambda_strictly_inside_its_grid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("diabetes");
    let o = run(&root().join("sweeps/diabetes.toml"), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("best.json")).unwrap()).unwrap();
    assert_eq!(best["complete"], true);
    let chosen = best["lambda"].as_f64().unwrap();
    let spec: toml::Table =
        toml::from_str(&std::fs::read_to_string(out.join("spec.toml")).unwrap()).unwrap();
    let lambdas: Vec<f64> = spec["grid"]["lambda"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_float().unwrap())
        .collect();
    let (lo, hi) = lambdas
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &l| {
            (lo.min(l), hi.max(l))
        });
    assert!(lambdas.len() >= 5, "a grid worth the name: {lambdas:?}");
    assert!(
        lo < chosen && chosen < hi,
        "chose λ = {chosen}, an end of the grid {lambdas:?}"
    );
}
