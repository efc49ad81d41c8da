#!/usr/bin/env bash
# wdsweep against a plain numpy implementation of the same sweep, side by
# side in one run on this machine: the book's grid (9 λ × 2 lr × 50 seeds
# = 900 jobs), both on all cores. Prints jobs/s of each, their ratio, the
# thread scaling of wdsweep, the floating-point rate of its algorithm, and
# checks that both give the same distribution of validation losses.
#
# Needs numpy and threadpoolctl (pip install numpy threadpoolctl).
# Usage: benches/compare.sh [REPEATS]   (best of REPEATS runs each; 5)
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-5}

python3 -c 'import numpy, threadpoolctl' 2>/dev/null || {
  echo "compare.sh needs numpy and threadpoolctl: pip install numpy threadpoolctl" >&2
  exit 2
}
cargo build --release --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/book900.toml" <<'SPEC'
name = "book900"
[grid]
lambda = [0, 0.001, 0.01, 0.1, 0.3, 1, 3, 10, 30]
lr = [0.01, 0.03]
seed = { count = 50 }
SPEC

# The training phase's wall time (data generation included), from -v.
training_secs() {
  sed -n 's/.*; training \([0-9.]*\) s on.*/\1/p' "$1"
}
for threads in 1 2; do
  for _ in $(seq "$repeats"); do
    ./target/release/wdsweep run "$tmp/book900.toml" --out "$tmp/w$threads" --fresh -q -v \
      -j "$threads" 2>"$tmp/log"
    training_secs "$tmp/log" >>"$tmp/w$threads.secs"
  done
done
for _ in $(seq "$repeats"); do
  python3 benches/numpy_sweep.py "$tmp/np.json" --processes "$(nproc)" >/dev/null
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$tmp/np.json" \
    >>"$tmp/np.secs"
done

python3 - "$tmp" "$(nproc)" <<'PY'
import csv, json, math, statistics, sys
tmp, cores = sys.argv[1], int(sys.argv[2])
best = lambda name: min(float(x) for x in open(f"{tmp}/{name}.secs"))
w1, w2, npy = best("w1"), best("w2"), best("np")
jobs = 900
print(f"wdsweep, 1 thread : {jobs / w1:10.0f} jobs/s  ({w1 * 1e3:.2f} ms, best of runs)")
print(f"wdsweep, {cores} threads: {jobs / w2:10.0f} jobs/s  ({w2 * 1e3:.2f} ms)")
print(f"numpy, {cores} processes: {jobs / npy:10.0f} jobs/s  ({npy * 1e3:.1f} ms)")
print(f"ratio wdsweep/numpy on {cores} cores: {npy / w2:.1f}x")
print(f"thread scaling 2 vs 1: {w1 / w2:.2f}x")

# Floating-point work per job of wdsweep's algorithm at the book's sizes,
# counted from the loops of src/kernel.rs, and the per-seed products (shared
# here by 18 jobs).
n, nv, d, b, epochs, per_seed = 20, 100, 200, 5, 10, 18
steps = epochs * (n * (2 * n + 8) + (n // b) * (3 * (n + 1) + 3))
evals = (epochs + 1) * (n * (2 * n + 11) + nv * (2 * n + 8))
seed = (n * (n + 1) // 2 + nv * n + n + nv + 1) * 2 * d
flops = steps + evals + seed / per_seed
naive = epochs * (n * 4 * d) + (epochs + 1) * (n + nv) * 2 * d
print(f"flops per job: {flops / 1e3:.0f} k (kernel {(steps + evals) / 1e3:.0f} k + seed products "
      f"{seed / per_seed / 1e3:.0f} k), against {naive / 1e6:.2f} M for the naive loop on w")
print(f"rate: {flops * jobs / w2 / 1e9:.2f} GFLOP/s on {cores} cores")

# The same distribution: mean val_loss per (λ, lr), within 4 standard errors.
ours = {}
for row in csv.DictReader(open(f"{tmp}/w2/jobs.csv")):
    if row["val_loss"]:
        ours.setdefault((float(row["lambda"]), float(row["lr"])), []).append(float(row["val_loss"]))
theirs = {}
for lam, lr, seed, val in json.load(open(f"{tmp}/np.json"))["results"]:
    if val is not None:
        theirs.setdefault((lam, lr), []).append(val)
worst = 0.0
print(f"{'lambda':>7} {'lr':>5}  {'wdsweep mean':>12} {'numpy mean':>12}  {'diff/SE':>7}")
for key in sorted(ours):
    a, c = ours[key], theirs[key]
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(c) / len(c))
    z = (statistics.mean(a) - statistics.mean(c)) / se
    worst = max(worst, abs(z))
    print(f"{key[0]:>7g} {key[1]:>5g}  {statistics.mean(a):12.6f} {statistics.mean(c):12.6f}  {z:7.2f}")
verdict = "agree" if worst < 4 else "DISAGREE"
print(f"distributions {verdict}: largest |difference| is {worst:.2f} standard errors")
sys.exit(0 if worst < 4 else 1)
PY
