#!/usr/bin/env bash
# wdsweep against numpy implementations of the same sweep, side by side in
# one run on this machine: the book's grid (9 λ × 2 lr × 50 seeds = 900
# jobs), all on all cores. numpy runs in two modes (benches/numpy_sweep.py):
# `plain`, one job per task as a user would write it, and `shared`, one
# seed's data made once for all of its jobs as wdsweep does. Prints jobs/s
# of each, the ratios, the thread scaling of wdsweep, the floating-point
# rate of its algorithm against the machine's peak, and checks that numpy
# and wdsweep give the same distribution of validation losses.
#
# Needs numpy and threadpoolctl (pip install numpy threadpoolctl).
# Usage: benches/compare.sh [REPEATS]   (best of REPEATS runs each; 5)
# With WDSWEEP_BASELINE=/path/to/an/older/wdsweep, that binary is timed too,
# interleaved with this one, for a before/after ratio from the same run.
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
for _ in $(seq "$repeats"); do
  for threads in 1 2; do
    ./target/release/wdsweep run "$tmp/book900.toml" --out "$tmp/w$threads" --fresh -q -v \
      -j "$threads" 2>"$tmp/log"
    training_secs "$tmp/log" >>"$tmp/w$threads.secs"
  done
  if [ -n "${WDSWEEP_BASELINE:-}" ]; then
    "$WDSWEEP_BASELINE" run "$tmp/book900.toml" --out "$tmp/base" --fresh -q -v -j 2 2>"$tmp/log"
    training_secs "$tmp/log" >>"$tmp/base.secs"
  fi
done
for mode in plain shared; do
  for _ in $(seq "$repeats"); do
    python3 benches/numpy_sweep.py "$tmp/np_$mode.json" --processes "$(nproc)" --mode "$mode" \
      >/dev/null
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' \
      "$tmp/np_$mode.json" >>"$tmp/np_$mode.secs"
  done
done

python3 - "$tmp" "$(nproc)" <<'PY'
import csv, json, math, os, statistics, sys
tmp, cores = sys.argv[1], int(sys.argv[2])
best = lambda name: min(float(x) for x in open(f"{tmp}/{name}.secs"))
w1, w2, plain, shared = best("w1"), best("w2"), best("np_plain"), best("np_shared")
jobs = 900
print(f"wdsweep, 1 thread      : {jobs / w1:9.0f} jobs/s  ({w1 * 1e3:.2f} ms, best of runs)")
print(f"wdsweep, {cores} threads     : {jobs / w2:9.0f} jobs/s  ({w2 * 1e3:.2f} ms)")
print(f"numpy plain, {cores} procs   : {jobs / plain:9.0f} jobs/s  ({plain * 1e3:.1f} ms)")
print(f"numpy shared, {cores} procs  : {jobs / shared:9.0f} jobs/s  ({shared * 1e3:.1f} ms)")
print(f"ratio wdsweep / numpy plain  on {cores} cores: {plain / w2:.1f}x")
print(f"ratio wdsweep / numpy shared on {cores} cores: {shared / w2:.1f}x")
print(f"thread scaling 2 vs 1: {w1 / w2:.2f}x")
if os.path.exists(f"{tmp}/base.secs"):
    base = best("base")
    print(f"baseline binary, {cores} threads: {jobs / base:9.0f} jobs/s; this one is "
          f"{base / w2:.2f}x faster")

# Floating-point work per job of wdsweep's algorithm at the book's sizes,
# counted from the loops of src/kernel.rs, src/data.rs and src/linalg.rs:
# the kernel's steps and evaluations, and the seed's products and
# factorisations (shared here by 18 jobs). Drawing random numbers is not
# counted.
n, nv, d, b, epochs, per_seed = 20, 100, 200, 5, 10, 18
width = n + 3
rows = min(nv, width)
r = min(d, n + 2)
qr = lambda m, p: sum(4 * (m - k) + (p - k - 1) * 4 * (m - k) for k in range(min(m, p)))
steps = epochs * (n * (2 * n + 8) + (n // b) * (3 * (n + 1) + 3))
val = sum(2 * (width - 1 - (i - i % 4)) + 4 for i in range(rows)) + 2
evals = (epochs + 1) * (n * (2 * n + 11) + val)
# X·[z0 | X^T | w*], three dot products and a Cholesky factor of B^T B,
# the validation products C·S, and the QR of A = [Q | K | 1 | -y_v].
p = n + 2
cholesky = sum(2 * j + 2 + (p - j - 1) * (2 * j + 1) for j in range(p))
products = n * p * 2 * d + 3 * 2 * d + cholesky + nv * r * p * 2 + qr(nv, width)
flops = steps + evals + products / per_seed
naive = epochs * (n * 4 * d) + (epochs + 1) * (n + nv) * 2 * d
print(f"flops per job: {flops / 1e3:.0f} k (kernel {(steps + evals) / 1e3:.0f} k + seed products "
      f"and factors {products / per_seed / 1e3:.0f} k), against {naive / 1e6:.2f} M for the naive "
      f"loop on w")
# Peak: two 256-bit FMA pipes a core, 16 double flops a cycle; the build
# targets baseline x86-64 (SSE2, no FMA), whose own ceiling is half that.
mhz = max(float(l.split(":")[1]) for l in open("/proc/cpuinfo") if l.startswith("cpu MHz"))
peak = cores * mhz * 1e6 * 16
rate = flops * jobs / w2
print(f"rate: {rate / 1e9:.2f} GFLOP/s on {cores} cores, data generation included; "
      f"{100 * rate / peak:.1f}% of the {peak / 1e9:.0f} GFLOP/s FMA peak "
      f"({cores} × {mhz / 1e3:.2f} GHz × 16)")

# The same distribution: mean val_loss per (λ, lr), within 4 standard errors.
ours = {}
for row in csv.DictReader(open(f"{tmp}/w2/jobs.csv")):
    if row["val_loss"]:
        ours.setdefault((float(row["lambda"]), float(row["lr"])), []).append(float(row["val_loss"]))
plain_results = json.load(open(f"{tmp}/np_plain.json"))["results"]
shared_results = json.load(open(f"{tmp}/np_shared.json"))["results"]
if sorted(map(tuple, plain_results)) != sorted(map(tuple, shared_results)):
    sys.exit("numpy's plain and shared modes disagree: numpy_sweep.py is broken")
theirs = {}
for lam, lr, seed, val in plain_results:
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
