//! Job identity (DESIGN.md §3).
//!
//! A job is its data settings, training settings, λ, lr and seed. Its key is
//! a BLAKE3 hash of those inputs in a canonical byte form — integers as
//! little-endian u64, floats by their exact bit pattern — together with
//! [`NUMERICS_VERSION`]. The experiment hash is the same without λ, lr and
//! seed: it identifies an output folder.

use crate::spec::{DataSettings, Penalty, TrainSettings};

/// Changes whenever the training arithmetic changes, so results computed by
/// older code are never mistaken for current ones. Bump it in the same
/// commit as the golden files.
///
/// 1: the straightforward SGD on w (`train::fit`, kept as the reference).
/// 2: SGD in the span of the training rows (`kernel`).
/// 3: the same, with the validation loss from the QR-reduced residual.
/// 4: the seed's products summed in index order (register tiles), and the
///    book's validation rows drawn as their coordinates in the span that
///    reaches a loss (`data::BookDraw`): the same distribution, other draws.
pub const NUMERICS_VERSION: u32 = 4;

fn experiment_bytes(data: &DataSettings, train: &TrainSettings) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    h.update(b"wdsweep experiment\0");
    h.update(&NUMERICS_VERSION.to_le_bytes());
    for n in [data.num_train, data.num_val, data.num_inputs] {
        h.update(&(n as u64).to_le_bytes());
    }
    for x in [data.noise_std, data.true_weight, data.true_bias] {
        h.update(&x.to_bits().to_le_bytes());
    }
    for n in [train.epochs, train.batch_size] {
        h.update(&(n as u64).to_le_bytes());
    }
    h.update(&train.init_std.to_bits().to_le_bytes());
    h.update(&[match train.penalty {
        Penalty::Loss => 0u8,
        Penalty::Optimizer => 1u8,
    }]);
    h.update(&train.diverge_above.to_bits().to_le_bytes());
    h
}

/// The hash of an experiment's data and training settings, as 32 hex digits.
pub fn experiment_hash(data: &DataSettings, train: &TrainSettings) -> String {
    short_hex(&experiment_bytes(data, train))
}

/// The key of one job, as 32 hex digits.
pub fn job_key(
    data: &DataSettings,
    train: &TrainSettings,
    lambda: f64,
    lr: f64,
    seed: u64,
) -> String {
    let mut h = experiment_bytes(data, train);
    h.update(b"job\0");
    h.update(&lambda.to_bits().to_le_bytes());
    h.update(&lr.to_bits().to_le_bytes());
    h.update(&seed.to_le_bytes());
    short_hex(&h)
}

fn short_hex(h: &blake3::Hasher) -> String {
    h.finalize().to_hex()[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_every_input() {
        let (d, t) = (DataSettings::default(), TrainSettings::default());
        let base = job_key(&d, &t, 3.0, 0.01, 0);
        assert_eq!(base, job_key(&d, &t, 3.0, 0.01, 0));
        assert_ne!(base, job_key(&d, &t, 3.0, 0.01, 1));
        assert_ne!(base, job_key(&d, &t, 3.0000000000000004, 0.01, 0));
        assert_ne!(base, job_key(&d, &t, 3.0, 0.03, 0));
        let d2 = DataSettings {
            noise_std: 0.02,
            ..d.clone()
        };
        assert_ne!(base, job_key(&d2, &t, 3.0, 0.01, 0));
        let t2 = TrainSettings {
            penalty: Penalty::Optimizer,
            ..t.clone()
        };
        assert_ne!(base, job_key(&d, &t2, 3.0, 0.01, 0));
        assert_ne!(experiment_hash(&d, &t), experiment_hash(&d2, &t));
        assert_eq!(base.len(), 32);
    }
}
