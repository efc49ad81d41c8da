//! The little dense linear algebra the kernel and the book's data need:
//! products of rows in a fixed order, and Householder QR.
//!
//! Everything here sums in a fixed order and chooses nothing by CPU
//! feature, so its results are the same bits on every x86-64 machine and
//! for every thread count (DESIGN.md §3). The sizes are small (tens of
//! columns), far below where a BLAS would pay for its threads.

/// Tile edge of [`row_products`].
const T: usize = 4;

/// M·B for a row-major `rows × d` matrix M and a row-major `d × p` matrix
/// B, row-major. Every entry is the sum over k = 0, 1, …, d − 1 of
/// M_rk·B_kc, from 0.0 in that order, whether it is computed in a register
/// tile of 4 × 4 entries or alone: the tiling is for speed only.
pub fn row_products(m: &[f64], rows: usize, d: usize, b: &[f64], p: usize) -> Vec<f64> {
    assert!(
        m.len() == rows * d && b.len() == d * p,
        "row_products: shapes"
    );
    let mut out = vec![0.0; rows * p];
    let plain = |r: usize, c: usize| (0..d).fold(0.0, |s, k| s + m[r * d + k] * b[k * p + c]);
    let (tiled_rows, tiled_cols) = (rows - rows % T, p - p % T);
    for r0 in (0..tiled_rows).step_by(T) {
        let [m0, m1, m2, m3]: [&[f64]; T] =
            std::array::from_fn(|t| &m[(r0 + t) * d..(r0 + t + 1) * d]);
        for c0 in (0..tiled_cols).step_by(T) {
            let mut acc = [[0.0f64; T]; T];
            // Walking the rows of B and the four rows of M together keeps
            // the loop free of index checks.
            let walk = b.chunks_exact(p).zip(m0).zip(m1).zip(m2).zip(m3);
            for ((((b_k, &a0), &a1), &a2), &a3) in walk {
                let b_k: &[f64; T] = b_k[c0..c0 + T].try_into().expect("a tile of T columns");
                for (sums, mk) in acc.iter_mut().zip([a0, a1, a2, a3]) {
                    for (sum, &bkc) in sums.iter_mut().zip(b_k) {
                        *sum += mk * bkc;
                    }
                }
            }
            for (t, sums) in acc.iter().enumerate() {
                out[(r0 + t) * p + c0..(r0 + t) * p + c0 + T].copy_from_slice(sums);
            }
        }
        for r in r0..r0 + T {
            for c in tiled_cols..p {
                out[r * p + c] = plain(r, c);
            }
        }
    }
    for r in tiled_rows..rows {
        for c in 0..p {
            out[r * p + c] = plain(r, c);
        }
    }
    out
}

/// One Householder reflection H = I − τ·v·vᵀ acting on rows `k..m`, with
/// v's first entry 1 (LAPACK's `dlarfg` convention); τ = 0 is the identity.
#[derive(Debug, Clone)]
pub struct Reflector {
    pub k: usize,
    pub tau: f64,
    /// v's entries for rows k + 1 … m − 1.
    pub tail: Vec<f64>,
}

/// Householder QR of the row-major `m × p` matrix `a`, in place: on return
/// the first min(m, p) rows of `a` hold R (upper trapezoidal) and
/// everything below the diagonal is zero. Returns the reflectors, one per
/// row of R, whose product H₀·H₁·… is Q; pass `keep = false` when only R
/// is wanted (lengths ‖R·z‖ = ‖A·z‖), which skips storing them.
///
/// The column norm is taken with a scale, so that no square overflows or
/// underflows. A reflection is applied to all remaining columns at once,
/// row by row, so that the loops run along contiguous rows and the sums of
/// different columns proceed side by side; each column's sum still runs
/// over the rows in order from 0.0.
pub fn householder(a: &mut [f64], m: usize, p: usize, keep: bool) -> Vec<Reflector> {
    assert_eq!(a.len(), m * p, "householder: shape");
    let rows = m.min(p);
    let mut kept = Vec::with_capacity(if keep { rows } else { 0 });
    let mut v = vec![0.0; m];
    let mut w = vec![0.0; p];
    for k in 0..rows {
        let alpha = a[k * p + k];
        let scale = (k + 1..m).fold(0.0f64, |s, i| s.max(a[i * p + k].abs()));
        if scale == 0.0 {
            // Nothing below the diagonal: the column is reduced already.
            if keep {
                kept.push(Reflector {
                    k,
                    tau: 0.0,
                    tail: vec![0.0; m - k - 1],
                });
            }
            continue;
        }
        let scale = scale.max(alpha.abs());
        let sum_sq = (k..m).fold(0.0, |s, i| {
            let t = a[i * p + k] / scale;
            s + t * t
        });
        let norm = scale * sum_sq.sqrt();
        let beta = if alpha >= 0.0 { -norm } else { norm };
        let tau = (beta - alpha) / beta;
        let inv = 1.0 / (alpha - beta);
        v[k] = 1.0;
        for i in k + 1..m {
            v[i] = a[i * p + k] * inv;
            a[i * p + k] = 0.0;
        }
        a[k * p + k] = beta;
        // w_j = Σ_i v_i·a_ij over the rows i = k … m − 1, for every column
        // j > k; then a_ij −= (τ·w_j)·v_i.
        let w = &mut w[k + 1..];
        w.fill(0.0);
        for (i, &vi) in v.iter().enumerate().skip(k) {
            for (wj, &aij) in w.iter_mut().zip(&a[i * p + k + 1..(i + 1) * p]) {
                *wj += vi * aij;
            }
        }
        for wj in w.iter_mut() {
            *wj *= tau;
        }
        for (i, &vi) in v.iter().enumerate().skip(k) {
            for (aij, &twj) in a[i * p + k + 1..(i + 1) * p].iter_mut().zip(w.iter()) {
                *aij -= twj * vi;
            }
        }
        if keep {
            kept.push(Reflector {
                k,
                tau,
                tail: v[k + 1..].to_vec(),
            });
        }
    }
    kept
}

/// The first `r` columns of Q = H₀·H₁·…·H_{last} for reflectors of an
/// `m`-row matrix: an orthonormal basis of the span of the factored
/// matrix's first r columns (when r is at most its rank). Column-major,
/// m × r.
pub fn basis(reflectors: &[Reflector], m: usize, r: usize) -> Vec<f64> {
    let mut q = vec![0.0; m * r];
    for c in 0..r {
        q[c * m + c] = 1.0;
    }
    for h in reflectors.iter().rev() {
        if h.tau == 0.0 {
            continue;
        }
        for c in 0..r {
            let (head, rest) = q[c * m + h.k..(c + 1) * m]
                .split_first_mut()
                .expect("a reflector acts on at least one row");
            let w = *head + rest.iter().zip(&h.tail).fold(0.0, |s, (x, v)| s + v * x);
            let tw = h.tau * w;
            *head -= tw;
            for (x, v) in rest.iter_mut().zip(&h.tail) {
                *x -= tw * v;
            }
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Stream, rng};
    use ndarray_rand::rand::Rng;

    fn random(n: usize, seed: u64) -> Vec<f64> {
        let mut g = rng(seed, Stream::Data);
        (0..n).map(|_| g.random_range(-1.0..1.0)).collect()
    }

    #[test]
    fn tiled_row_products_are_plain_sums_in_order() {
        for (rows, d, p) in [(9, 13, 6), (4, 200, 4), (3, 5, 2), (101, 7, 21)] {
            let (m, b) = (random(rows * d, 1), random(d * p, 2));
            let out = row_products(&m, rows, d, &b, p);
            for r in 0..rows {
                for c in 0..p {
                    let mut sum = 0.0;
                    for k in 0..d {
                        sum += m[r * d + k] * b[k * p + c];
                    }
                    assert_eq!(out[r * p + c].to_bits(), sum.to_bits(), "({r}, {c})");
                }
            }
        }
    }

    #[test]
    fn r_keeps_every_length_and_q_is_an_orthonormal_basis_of_the_columns() {
        // Tall and wide; columns of very different scales; a zero column.
        for (m, p) in [(100, 23), (37, 9), (5, 23), (1, 4), (200, 22)] {
            // Row-major; column j scaled by 10^(j mod 7 − 3).
            let mut a = random(m * p, 3);
            for (i, x) in a.iter_mut().enumerate() {
                *x *= 10f64.powi((i % p) as i32 % 7 - 3);
            }
            // Column 1 is zero: its reflection is the identity.
            for row in 0..m {
                a[row * p + 1] = 0.0;
            }
            let mut r = a.clone();
            let reflectors = householder(&mut r, m, p, true);
            let rows = m.min(p);
            assert_eq!(reflectors.len(), rows);
            for col in 0..p {
                for row in (col + 1)..m {
                    assert_eq!(
                        r[row * p + col],
                        0.0,
                        "below the diagonal at ({row}, {col})"
                    );
                }
            }
            let z = random(p, 4);
            let len = |mat: &[f64], rows: usize| {
                (0..rows)
                    .map(|i| (0..p).map(|j| mat[i * p + j] * z[j]).sum::<f64>().powi(2))
                    .sum::<f64>()
            };
            let (full, reduced) = (len(&a, m), len(&r, rows));
            assert!(
                (full - reduced).abs() <= 1e-13 * full,
                "{m} × {p}: {full} vs {reduced}"
            );

            // A = Q_r·R, and Q_r's columns are orthonormal.
            let q = basis(&reflectors, m, rows);
            for i in 0..rows {
                for j in 0..rows {
                    let dot: f64 = (0..m).map(|t| q[i * m + t] * q[j * m + t]).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-14, "QᵀQ at ({i}, {j}) = {dot}");
                }
            }
            for j in 0..p {
                let scale = (0..m).map(|t| a[t * p + j].abs()).fold(1e-300, f64::max);
                for t in 0..m {
                    let qr: f64 = (0..rows.min(j + 1))
                        .map(|i| q[i * m + t] * r[i * p + j])
                        .sum();
                    assert!(
                        (qr - a[t * p + j]).abs() <= 1e-14 * scale,
                        "{m} × {p}: (QR)[{t}][{j}] = {qr}, A = {}",
                        a[t * p + j]
                    );
                }
            }
        }
    }
}
