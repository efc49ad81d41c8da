//! Criterion benchmarks: one job of the book's size (the reference loop and
//! the kernel), the per-seed work, a block of one seed's jobs, and a whole
//! sweep of the book's 900-job grid on one and two threads.
//!
//! Run with `cargo bench --bench sweep`. Throughput is in jobs per second,
//! the figure `benches/compare.sh` quotes against numpy.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use wdsweep::data;
use wdsweep::kernel::{self, SeedFactors};
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
    let book = spec.data.book().expect("the book's data");
    let dataset = data::synthetic(book, 0);
    let init = data::initial_weights(book.num_inputs, spec.train.init_std, 0);
    let settings = TrainSettings::default();
    let draw = data::book_draw(book, 0);
    let factors = SeedFactors::book(&draw, spec.train.init_std);

    let mut group = c.benchmark_group("job");
    group.throughput(Throughput::Elements(1));
    group.bench_function("reference loop on w", |b| {
        b.iter(|| train::fit(&dataset, &settings, 3.0, 0.01, init.view(), 0))
    });
    group.bench_function("kernel, a block of 1", |b| {
        b.iter(|| kernel::fit_block(&factors, &settings, &[(3.0, 0.01)], 0, true))
    });
    group.finish();

    let mut group = c.benchmark_group("seed");
    group.bench_function("the book's draw", |b| b.iter(|| data::book_draw(book, 0)));
    group.bench_function("products and QRs from the draw", |b| {
        b.iter(|| SeedFactors::book(&draw, spec.train.init_std))
    });
    group.bench_function("products and QR of a formed data set", |b| {
        b.iter(|| SeedFactors::new(&dataset, init.view()))
    });
    group.finish();

    // The 18 jobs of one seed of the 900-job grid, as the sweep runs them.
    let block: Vec<(f64, f64)> = [0.0, 0.001, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]
        .iter()
        .flat_map(|&l| [0.01, 0.03].map(|r| (l, r)))
        .collect();
    let mut group = c.benchmark_group("block");
    group.throughput(Throughput::Elements(block.len() as u64));
    group.bench_function("18 jobs with curves", |b| {
        b.iter(|| kernel::fit_block(&factors, &settings, &block, 0, true))
    });
    group.bench_function("18 jobs without curves", |b| {
        b.iter(|| kernel::fit_block(&factors, &settings, &block, 0, false))
    });
    group.finish();
}

fn whole_sweep(c: &mut Criterion) {
    let spec = Spec::from_toml(BOOK_GRID, "bench", "bench").unwrap();
    let jobs = spec.grid.len();
    let mut group = c.benchmark_group("sweep");
    group.sample_size(20);
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
