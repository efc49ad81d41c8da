//! Criterion benchmarks: one job of the book's size, and a whole sweep of
//! the book's grid (the 900-job grid of the speed comparison).
//!
//! Run with `cargo bench --bench sweep`. Throughput is reported in jobs per
//! second, which is the figure the comparison scripts quote.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use wdsweep::data;
use wdsweep::spec::{Spec, TrainSettings};
use wdsweep::sweep::{self, Progress};
use wdsweep::train;

const BOOK_GRID: &str = r#"
[grid]
lambda = [0, 0.001, 0.01, 0.1, 0.3, 1, 3, 10, 30]
lr = [0.01, 0.03]
seed = { count = 50 }
"#;

fn one_job(c: &mut Criterion) {
    let spec = Spec::from_toml("", "bench", "bench").unwrap();
    let dataset = data::synthetic(&spec.data, 0);
    let init = data::initial_weights(spec.data.num_inputs, spec.train.init_std, 0);
    let settings = TrainSettings::default();
    let mut group = c.benchmark_group("job");
    group.throughput(Throughput::Elements(1));
    group.bench_function("book λ=3 lr=0.01", |b| {
        b.iter(|| train::fit(&dataset, &settings, 3.0, 0.01, init.view(), 0))
    });
    group.bench_function("book data set + initial weights", |b| {
        b.iter(|| {
            let d = data::synthetic(&spec.data, 0);
            let w = data::initial_weights(spec.data.num_inputs, spec.train.init_std, 0);
            (d, w)
        })
    });
    group.finish();
}

fn whole_sweep(c: &mut Criterion) {
    let spec = Spec::from_toml(BOOK_GRID, "bench", "bench").unwrap();
    let jobs = spec.grid.len();
    let mut group = c.benchmark_group("sweep");
    group.sample_size(10);
    group.throughput(Throughput::Elements(jobs));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        group.bench_function(format!("900 jobs, {threads} threads"), |b| {
            b.iter(|| pool.install(|| sweep::run_all(&spec, &Progress::new(jobs, true))))
        });
    }
    group.finish();
}

criterion_group!(benches, one_job, whole_sweep);
criterion_main!(benches);
