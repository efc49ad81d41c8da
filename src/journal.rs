//! The journal: every finished job, recorded durably as it finishes.
//!
//! `journal.bin` in the output folder is append-only. Each record is
//!
//! ```text
//!     u32 length | payload | first 8 bytes of BLAKE3(payload)
//! ```
//!
//! so a record torn by a crash, a kill -9 or a full disk is recognised on
//! the next open (short, or its checksum fails), dropped, and cut off before
//! anything new is appended. Records are written in small batches by one
//! writer and synced to disk, so at most the last batch of a killed run is
//! lost, and every job it held simply runs again. Jobs are identified by
//! key (DESIGN.md §3): a record is reused only by a job with the same inputs
//! and numerics.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::train::{EpochLoss, Outcome, Status};

pub const JOURNAL_FILE: &str = "journal.bin";

/// A job as the journal remembers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: String,
    pub lambda: f64,
    pub lr: f64,
    pub seed: u64,
    pub outcome: Outcome,
}

/// The open journal of an output folder.
pub struct Journal {
    path: PathBuf,
    file: File,
}

/// What opening a journal found.
pub struct Opened {
    pub journal: Journal,
    /// Every intact record, by key (a key recorded twice keeps the first).
    pub done: HashMap<String, Record>,
    /// Bytes of a torn or corrupt tail that were cut off.
    pub dropped_bytes: u64,
}

fn put_opt(buf: &mut Vec<u8>, x: Option<f64>) {
    match x {
        Some(v) => {
            buf.push(1);
            buf.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        None => buf.push(0),
    }
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    let hash = blake3::hash(payload);
    let mut out = [0; 8];
    out.copy_from_slice(&hash.as_bytes()[..8]);
    out
}

/// Appends one framed record to `buf`.
pub fn encode(buf: &mut Vec<u8>, r: &Record) {
    encode_parts(buf, &r.key, r.lambda, r.lr, r.seed, &r.outcome);
}

/// [`encode`] from borrowed parts, so that a finished job is journaled
/// without copying its curve.
pub fn encode_parts(
    buf: &mut Vec<u8>,
    key: &str,
    lambda: f64,
    lr: f64,
    seed: u64,
    outcome: &Outcome,
) {
    // The frame: payload length, payload, checksum of the payload.
    let len_at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    let start = buf.len();
    buf.push(key.len() as u8);
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(&lambda.to_bits().to_le_bytes());
    buf.extend_from_slice(&lr.to_bits().to_le_bytes());
    buf.extend_from_slice(&seed.to_le_bytes());
    buf.push(match outcome.status {
        Status::Ok => 0,
        Status::Diverged => 1,
    });
    put_opt(buf, outcome.train_loss);
    put_opt(buf, outcome.val_loss);
    put_opt(buf, outcome.l2_penalty);
    buf.extend_from_slice(&(outcome.curve.len() as u32).to_le_bytes());
    for e in &outcome.curve {
        put_opt(buf, e.train);
        put_opt(buf, e.val);
    }
    let len = (buf.len() - start) as u32;
    buf[len_at..start].copy_from_slice(&len.to_le_bytes());
    let sum = checksum(&buf[start..]);
    buf.extend_from_slice(&sum);
}

/// A cursor over a payload; every read fails cleanly past its end.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn opt(&mut self) -> Option<Option<f64>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(f64::from_bits(self.u64()?))),
            _ => None,
        }
    }
}

fn decode(payload: &[u8]) -> Option<Record> {
    let mut c = Cursor(payload);
    let key_len = c.u8()? as usize;
    let key = String::from_utf8(c.take(key_len)?.to_vec()).ok()?;
    let lambda = f64::from_bits(c.u64()?);
    let lr = f64::from_bits(c.u64()?);
    let seed = c.u64()?;
    let status = match c.u8()? {
        0 => Status::Ok,
        1 => Status::Diverged,
        _ => return None,
    };
    let (train_loss, val_loss, l2_penalty) = (c.opt()?, c.opt()?, c.opt()?);
    let epochs = c.u32()? as usize;
    if epochs > c.0.len() / 2 {
        return None;
    }
    let mut curve = Vec::with_capacity(epochs);
    for _ in 0..epochs {
        curve.push(EpochLoss {
            train: c.opt()?,
            val: c.opt()?,
        });
    }
    if !c.0.is_empty() {
        return None;
    }
    Some(Record {
        key,
        lambda,
        lr,
        seed,
        outcome: Outcome {
            status,
            train_loss,
            val_loss,
            l2_penalty,
            curve,
        },
    })
}

/// Splits journal bytes into intact records; returns them and the length of
/// the intact prefix. Reading stops at the first record that is short or
/// fails its checksum: everything after it is untrustworthy.
pub fn parse(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some(len_bytes) = bytes.get(at..at + 4) {
        let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        let Some(end) = at.checked_add(4 + len + 8) else {
            break;
        };
        let Some(frame) = bytes.get(at + 4..end) else {
            break;
        };
        let (payload, sum) = frame.split_at(len);
        if checksum(payload) != sum {
            break;
        }
        let Some(record) = decode(payload) else { break };
        records.push(record);
        at = end;
    }
    (records, at)
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, reads what it holds and
    /// cuts off a torn tail so that new records follow intact ones.
    pub fn open(dir: &Path) -> Result<Opened> {
        let path = dir.join(JOURNAL_FILE);
        if std::fs::metadata(&path).is_ok_and(|meta| !meta.is_file()) {
            anyhow::bail!(
                "the journal {} is not a regular file; move it away and rerun",
                path.display()
            );
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("cannot open the journal {}", path.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("cannot read the journal {}", path.display()))?;
        let (records, intact) = parse(&bytes);
        let dropped_bytes = (bytes.len() - intact) as u64;
        if dropped_bytes > 0 {
            file.set_len(intact as u64)
                .and_then(|_| file.sync_all())
                .with_context(|| format!("cannot repair the journal {}", path.display()))?;
            file.seek(SeekFrom::End(0))?;
        }
        let mut done = HashMap::with_capacity(records.len());
        for r in records {
            done.entry(r.key.clone()).or_insert(r);
        }
        Ok(Opened {
            journal: Journal { path, file },
            done,
            dropped_bytes,
        })
    }

    /// Appends already-encoded records and syncs them to disk.
    pub fn write(&mut self, encoded: &[u8]) -> Result<()> {
        self.file
            .write_all(encoded)
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("cannot append to the journal {}", self.path.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64, status: Status) -> Record {
        let ok = status == Status::Ok;
        Record {
            key: format!("{i:032x}"),
            lambda: 0.1 * i as f64,
            lr: 0.01,
            seed: i,
            outcome: Outcome {
                status,
                train_loss: ok.then_some(1.5),
                val_loss: ok.then_some(f64::MIN_POSITIVE),
                l2_penalty: ok.then_some(-0.0),
                curve: vec![
                    EpochLoss {
                        train: Some(2.0),
                        val: Some(3.0),
                    },
                    EpochLoss {
                        train: None,
                        val: Some(1e300),
                    },
                ],
            },
        }
    }

    #[test]
    fn records_round_trip_bit_for_bit() {
        let records = vec![record(1, Status::Ok), record(2, Status::Diverged)];
        let mut buf = Vec::new();
        for r in &records {
            encode(&mut buf, r);
        }
        let (back, intact) = parse(&buf);
        assert_eq!(intact, buf.len());
        assert_eq!(back, records);
        assert_eq!(
            back[0].outcome.l2_penalty.unwrap().to_bits(),
            (-0.0f64).to_bits()
        );
    }

    #[test]
    fn a_torn_last_record_is_dropped_at_every_cut() {
        let mut buf = Vec::new();
        encode(&mut buf, &record(1, Status::Ok));
        let first = buf.len();
        encode(&mut buf, &record(2, Status::Ok));
        for cut in first..buf.len() {
            let (back, intact) = parse(&buf[..cut]);
            assert_eq!((back.len(), intact), (1, first), "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_stops_the_reading() {
        let mut buf = Vec::new();
        encode(&mut buf, &record(1, Status::Ok));
        encode(&mut buf, &record(2, Status::Ok));
        let first = buf.len() / 2;
        buf[first + 20] ^= 1;
        let (back, _) = parse(&buf);
        assert_eq!(back.len(), 1);
    }

    #[test]
    fn opening_cuts_a_torn_tail_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = Vec::new();
        encode(&mut buf, &record(1, Status::Ok));
        let keep = buf.len();
        encode(&mut buf, &record(2, Status::Ok));
        std::fs::write(dir.path().join(JOURNAL_FILE), &buf[..buf.len() - 3]).unwrap();

        let mut opened = Journal::open(dir.path()).unwrap();
        assert_eq!(opened.done.len(), 1);
        assert_eq!(opened.dropped_bytes, (buf.len() - 3 - keep) as u64);
        let mut more = Vec::new();
        encode(&mut more, &record(3, Status::Diverged));
        opened.journal.write(&more).unwrap();
        drop(opened);

        let reopened = Journal::open(dir.path()).unwrap();
        assert_eq!(reopened.dropped_bytes, 0);
        let mut keys: Vec<_> = reopened.done.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, [format!("{:032x}", 1), format!("{:032x}", 3)]);
    }
}
