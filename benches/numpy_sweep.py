"""The weight-decay sweep as a user would write it in plain numpy.

The same experiment as wdsweep's (DESIGN.md §2): the book's synthetic data
(X ~ N(0, 1), y = X·w* + b* + ε), a linear model trained by minibatch SGD
on mean ½(ŷ − y)² + (λ/2)‖w‖² with the bias unpenalised, the training rows
reshuffled every epoch, and the training and validation losses evaluated
after every epoch (the curves). Tasks run on a process pool over all cores
with BLAS pinned to one thread per process, in one of two modes:

- `plain` (the default): one task per job, which makes its seed's data set
  and trains that one job, as a user would first write it;
- `shared`: one task per seed, which makes the seed's data once and trains
  all of its (λ, lr) jobs, sharing work as wdsweep does.

Its random numbers are numpy's, not wdsweep's ChaCha streams, so the two
agree in distribution, not draw for draw: compare.sh checks that the mean
validation loss per (λ, lr) agrees within a few standard errors.

Usage: python3 numpy_sweep.py OUT.json [--processes N] [--mode plain|shared]
"""

import os

# Before numpy is imported: one BLAS thread per worker process.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

LAMBDAS = [0.0, 0.001, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]
LRS = [0.01, 0.03]
SEEDS = range(50)
NUM_TRAIN, NUM_VAL, NUM_INPUTS = 20, 100, 200
NOISE_STD, TRUE_WEIGHT, TRUE_BIAS = 0.01, 0.01, 0.05
EPOCHS, BATCH, INIT_STD, DIVERGE_ABOVE = 10, 5, 0.01, 1e6


def make_data(seed):
    """The seed's data set, initial weights and minibatch orders."""
    rng = np.random.default_rng(seed)
    n = NUM_TRAIN + NUM_VAL
    x = rng.standard_normal((n, NUM_INPUTS))
    y = x @ np.full(NUM_INPUTS, TRUE_WEIGHT) + TRUE_BIAS + NOISE_STD * rng.standard_normal(n)
    xt, yt, xv, yv = x[:NUM_TRAIN], y[:NUM_TRAIN], x[NUM_TRAIN:], y[NUM_TRAIN:]
    w0 = INIT_STD * rng.standard_normal(NUM_INPUTS)
    orders = [rng.permutation(NUM_TRAIN) for _ in range(EPOCHS)]
    return xt, yt, xv, yv, w0, orders


def train(data, lam, lr):
    """One job on the seed's data; returns its final val_loss, or None."""
    xt, yt, xv, yv, w0, orders = data
    w, b = w0.copy(), 0.0
    bound = DIVERGE_ABOVE * 0.5 * np.mean((xt @ w + b - yt) ** 2)
    diverged = False
    for epoch in range(EPOCHS):
        order = orders[epoch]
        for start in range(0, NUM_TRAIN, BATCH):
            rows = order[start:start + BATCH]
            err = xt[rows] @ w + b - yt[rows]
            w -= lr * (xt[rows].T @ err / len(rows) + lam * w)
            b -= lr * err.mean()
        # The curves: both losses after every epoch.
        train_loss = 0.5 * np.mean((xt @ w + b - yt) ** 2)
        val_loss = 0.5 * np.mean((xv @ w + b - yv) ** 2)
        if not (np.isfinite(train_loss) and np.isfinite(val_loss)) or train_loss > bound:
            diverged = True
            break
    return None if diverged else float(val_loss)


def seed_task(seed):
    """shared mode: every (λ, lr) of one seed on one data set."""
    data = make_data(seed)
    return [(lam, lr, seed, train(data, lam, lr)) for lam in LAMBDAS for lr in LRS]


def job_task(job):
    """plain mode: one job, with its own copy of its seed's data set."""
    lam, lr, seed = job
    return [(lam, lr, seed, train(make_data(seed), lam, lr))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--processes", type=int, default=os.cpu_count())
    parser.add_argument("--mode", choices=["plain", "shared"], default="plain")
    args = parser.parse_args()
    if args.mode == "plain":
        task, items = job_task, [(lam, lr, s) for lam in LAMBDAS for lr in LRS for s in SEEDS]
    else:
        task, items = seed_task, list(SEEDS)

    with mp.Pool(args.processes) as pool:
        pool.map(abs, range(args.processes))  # start the workers first
        started = time.perf_counter()
        per_task = pool.map(task, items, chunksize=1)
        seconds = time.perf_counter() - started

    from threadpoolctl import threadpool_info

    jobs = [job for done in per_task for job in done]
    with open(args.out, "w") as f:
        json.dump(
            {
                "jobs": len(jobs),
                "seconds": seconds,
                "jobs_per_second": len(jobs) / seconds,
                "processes": args.processes,
                "mode": args.mode,
                "blas": [(i["internal_api"], i["num_threads"]) for i in threadpool_info()],
                "results": jobs,
            },
            f,
        )
    print(f"numpy ({args.mode}): {len(jobs)} jobs in {seconds:.3f} s on {args.processes} processes, "
          f"{len(jobs) / seconds:.0f} jobs/s")


if __name__ == "__main__":
    main()
