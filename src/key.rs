//! Job identity (DESIGN.md §3).
//!
//! A job is its data settings, training settings, λ, lr and seed. Its key is
//! a BLAKE3 hash of those inputs in a canonical byte form — integers as
//! little-endian u64, floats by their exact bit pattern, text as its length
//! and bytes — together with [`NUMERICS_VERSION`]. The experiment hash is
//! the same without λ, lr and seed: it identifies an output folder.
//!
//! A data file enters by the BLAKE3 hash of its bytes, not its path: an
//! edited file is a different experiment, a moved one the same. The book's
//! data keep the bytes they always had, so their keys never change.

use crate::spec::{DataSettings, DataSource, Format, Penalty, Split, TrainSettings};
use crate::table::Table;

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
/// 5: the book's S from a Cholesky factor of BᵀB where that is safe, and
///    P = init_std·(X·z₀).
pub const NUMERICS_VERSION: u32 = 5;

fn experiment_bytes(data: &DataSource, train: &TrainSettings) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    match data {
        DataSource::Book(book) => book_bytes(&mut h, book),
        DataSource::Table(table) => table_bytes(&mut h, table),
    }
    train_bytes(&mut h, train);
    h
}

fn book_bytes(h: &mut blake3::Hasher, data: &DataSettings) {
    h.update(b"wdsweep experiment\0");
    h.update(&NUMERICS_VERSION.to_le_bytes());
    for n in [data.num_train, data.num_val, data.num_inputs] {
        h.update(&(n as u64).to_le_bytes());
    }
    for x in [data.noise_std, data.true_weight, data.true_bias] {
        h.update(&x.to_bits().to_le_bytes());
    }
}

/// A data file by its bytes' hash and by what the spec takes from it. The
/// path is left out: it names where the bytes are, not what they are.
fn table_bytes(h: &mut blake3::Hasher, table: &Table) {
    let text = |h: &mut blake3::Hasher, s: &str| {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    h.update(b"wdsweep table experiment\0");
    h.update(&NUMERICS_VERSION.to_le_bytes());
    h.update(table.hash.as_bytes());
    h.update(&[match table.format {
        Format::Csv => 0u8,
        Format::Parquet => 1u8,
    }]);
    text(h, &table.target);
    h.update(&(table.features.len() as u64).to_le_bytes());
    for f in &table.features {
        text(h, f);
    }
    match table.split {
        Split::ValFraction(f) => {
            h.update(&[0u8]);
            h.update(&f.to_bits().to_le_bytes());
        }
        Split::TrainRows(n) => {
            h.update(&[1u8]);
            h.update(&(n as u64).to_le_bytes());
        }
    }
    h.update(&[u8::from(table.standardize)]);
}

fn train_bytes(h: &mut blake3::Hasher, train: &TrainSettings) {
    for n in [train.epochs, train.batch_size] {
        h.update(&(n as u64).to_le_bytes());
    }
    h.update(&train.init_std.to_bits().to_le_bytes());
    h.update(&[match train.penalty {
        Penalty::Loss => 0u8,
        Penalty::Optimizer => 1u8,
    }]);
    h.update(&train.diverge_above.to_bits().to_le_bytes());
}

/// The hash of an experiment's data and training settings, as 32 hex digits.
pub fn experiment_hash(data: &DataSource, train: &TrainSettings) -> String {
    short_hex(&experiment_bytes(data, train))
}

/// The key of one job, as 32 hex digits.
pub fn job_key(
    data: &DataSource,
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

/// The length of a job key: 32 hex digits, 128 bits of BLAKE3.
pub const KEY_LEN: usize = 32;

fn short_hex(h: &blake3::Hasher) -> String {
    h.finalize().to_hex()[..KEY_LEN].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_every_input() {
        let book = |d: &DataSettings| DataSource::Book(d.clone());
        let (settings, t) = (DataSettings::default(), TrainSettings::default());
        let d = book(&settings);
        let base = job_key(&d, &t, 3.0, 0.01, 0);
        assert_eq!(base, job_key(&d, &t, 3.0, 0.01, 0));
        assert_ne!(base, job_key(&d, &t, 3.0, 0.01, 1));
        assert_ne!(base, job_key(&d, &t, 3.0000000000000004, 0.01, 0));
        assert_ne!(base, job_key(&d, &t, 3.0, 0.03, 0));
        let d2 = book(&DataSettings {
            noise_std: 0.02,
            ..settings.clone()
        });
        assert_ne!(base, job_key(&d2, &t, 3.0, 0.01, 0));
        let t2 = TrainSettings {
            penalty: Penalty::Optimizer,
            ..t.clone()
        };
        assert_ne!(base, job_key(&d, &t2, 3.0, 0.01, 0));
        assert_ne!(experiment_hash(&d, &t), experiment_hash(&d2, &t));
        assert_eq!(base.len(), 32);
    }

    #[test]
    fn a_tables_key_changes_with_every_setting_but_its_path() {
        use crate::spec::TableSettings;
        use std::sync::Arc;

        let dir = tempfile::tempdir().unwrap();
        let csv = "a,b,y\n1,5,2\n2,3,4\n3,8,5\n4,1,7\n5,9,1\n";
        for name in ["t.csv", "moved.csv"] {
            std::fs::write(dir.path().join(name), csv).unwrap();
        }
        std::fs::write(dir.path().join("edited.csv"), csv.replace("3,8,5", "3,8,6")).unwrap();
        let settings = TableSettings {
            path: dir.path().join("t.csv"),
            written: "t.csv".into(),
            format: Format::Csv,
            target: "y".into(),
            features: None,
            split: Split::ValFraction(0.2),
            standardize: true,
        };
        let key = |s: &TableSettings| {
            let table = Table::load(s.clone(), "s.toml").unwrap();
            job_key(
                &DataSource::Table(Arc::new(table)),
                &TrainSettings::default(),
                0.1,
                0.01,
                0,
            )
        };
        let base = key(&settings);
        // The path names where the bytes are, not what they are.
        let moved = TableSettings {
            path: dir.path().join("moved.csv"),
            ..settings.clone()
        };
        assert_eq!(base, key(&moved));
        // The default features are the listed ones spelt out.
        let listed = TableSettings {
            features: Some(vec!["a".into(), "b".into()]),
            ..settings.clone()
        };
        assert_eq!(base, key(&listed));
        let changes = [
            TableSettings {
                path: dir.path().join("edited.csv"),
                ..settings.clone()
            },
            TableSettings {
                target: "b".into(),
                ..settings.clone()
            },
            TableSettings {
                features: Some(vec!["b".into(), "a".into()]),
                ..settings.clone()
            },
            TableSettings {
                features: Some(vec!["a".into()]),
                ..settings.clone()
            },
            TableSettings {
                split: Split::ValFraction(0.4),
                ..settings.clone()
            },
            TableSettings {
                split: Split::TrainRows(4),
                ..settings.clone()
            },
            TableSettings {
                standardize: false,
                ..settings.clone()
            },
        ];
        for changed in &changes {
            assert_ne!(base, key(changed), "{changed:?}");
        }
        let book = job_key(
            &DataSource::Book(DataSettings::default()),
            &TrainSettings::default(),
            0.1,
            0.01,
            0,
        );
        assert_ne!(base, book);
    }
}
