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
//! anything new is appended. Damage inside the file (a bad disk block) costs
//! only the records it touches: reading resumes at the next intact frame. Records are written in small batches by one
//! writer and synced to disk, so at most the last batch of a killed run is
//! lost, and every job it held simply runs again. Jobs are identified by
//! key (DESIGN.md §3): a record is reused only by a job with the same inputs
//! and numerics.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::key::KEY_LEN;
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
    /// What was unreadable and left out, if anything.
    pub damage: Option<Damage>,
}

/// Unreadable bytes found, and left out, when a journal was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// How many bytes were left out.
    pub bytes: u64,
    /// Where the first of them was.
    pub at: u64,
    /// Whether they were only the start of a record whose write was cut
    /// short (a killed run, a full disk), which is expected after a crash;
    /// otherwise the file was damaged (a bad disk, an edit).
    pub torn: bool,
}

/// Whether `rest`, the bytes from the first unreadable one to the end of
/// the file, can be a record whose write was cut short: its frame must run
/// past the end, and what there is of it must read as the start of a
/// record (the key's length, then hex digits). Garbage or zeros over the
/// end of a journal are damage, not a torn write, and are reported so.
fn torn_write(rest: &[u8]) -> bool {
    let Some(len) = rest.get(..4) else {
        return true;
    };
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    if len.saturating_add(12) <= rest.len() {
        return false;
    }
    let payload = &rest[4..];
    match payload.split_first() {
        None => true,
        Some((&key_len, key)) => {
            usize::from(key_len) == KEY_LEN
                && key.iter().take(KEY_LEN).all(|b| b.is_ascii_hexdigit())
        }
    }
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

/// What reading journal bytes found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every intact record, in file order.
    pub records: Vec<Record>,
    /// The byte range of each intact record's frame.
    pub frames: Vec<Range<usize>>,
    /// Byte ranges that hold no intact record: damage, or a torn write.
    pub damaged: Vec<Range<usize>>,
}

impl Scan {
    /// Damaged bytes followed by intact records: damage inside the file,
    /// not merely a torn last write.
    pub fn damaged_inside(&self) -> bool {
        let last_frame = self.frames.last().map_or(0, |f| f.end);
        self.damaged.iter().any(|d| d.end <= last_frame)
    }

    pub fn damaged_bytes(&self) -> usize {
        self.damaged.iter().map(|d| d.end - d.start).sum()
    }

    /// What was unreadable in `bytes`, the journal this scan read, if
    /// anything; [`Journal::open`] then repairs the file, a dry run only
    /// reports it.
    pub fn damage(&self, bytes: &[u8]) -> Option<Damage> {
        let first = self.damaged.first()?;
        Some(Damage {
            bytes: self.damaged_bytes() as u64,
            at: first.start as u64,
            torn: !self.damaged_inside() && torn_write(&bytes[first.start..]),
        })
    }
}

/// The intact record whose frame starts at `at`, and where the frame ends.
fn frame_at(bytes: &[u8], at: usize) -> Option<(Record, usize)> {
    let len_bytes = bytes.get(at..at.checked_add(4)?)?;
    let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
    let end = at.checked_add(4)?.checked_add(len)?.checked_add(8)?;
    let (payload, sum) = bytes.get(at + 4..end)?.split_at(len);
    if checksum(payload) != sum {
        return None;
    }
    Some((decode(payload)?, end))
}

/// Reads journal bytes. A record that is short or fails its checksum is
/// damage: the bytes from it to the next intact frame (found by trying
/// every later offset; a false match would need a 64-bit checksum to agree
/// by chance) are skipped, so one bad byte costs the records it touches,
/// not all that follow.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut found = Scan::default();
    let mut at = 0;
    while at < bytes.len() {
        if let Some((record, end)) = frame_at(bytes, at) {
            found.records.push(record);
            found.frames.push(at..end);
            at = end;
            continue;
        }
        let next = (at + 1..bytes.len())
            .find(|&q| frame_at(bytes, q).is_some())
            .unwrap_or(bytes.len());
        found.damaged.push(at..next);
        at = next;
    }
    found
}

/// The intact records of journal bytes (see [`scan`]).
pub fn parse(bytes: &[u8]) -> Vec<Record> {
    scan(bytes).records
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
        let found = scan(&bytes);
        let damage = found.damage(&bytes);
        if damage.is_some() && found.damaged_inside() {
            // Intact records follow the damage: the file is rewritten with
            // them alone, beside it and then renamed over it, so that a
            // crash meanwhile leaves one whole version or the other.
            let mut kept = Vec::with_capacity(bytes.len());
            for frame in &found.frames {
                kept.extend_from_slice(&bytes[frame.clone()]);
            }
            drop(file);
            crate::store::write_atomic(&path, |w| Ok(w.write_all(&kept)?))
                .with_context(|| format!("cannot repair the journal {}", path.display()))?;
            file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open the journal {}", path.display()))?;
        } else if let Some(d) = damage {
            // Unreadable bytes at the end only: cut them off.
            file.set_len(d.at)
                .and_then(|_| file.sync_all())
                .with_context(|| format!("cannot repair the journal {}", path.display()))?;
            file.seek(SeekFrom::End(0))?;
        }
        let mut done = HashMap::with_capacity(found.records.len());
        for r in found.records {
            done.entry(r.key.clone()).or_insert(r);
        }
        Ok(Opened {
            journal: Journal { path, file },
            done,
            damage,
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
        let found = scan(&buf);
        assert!(found.damaged.is_empty());
        let back = found.records;
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
        for cut in first + 1..buf.len() {
            let found = scan(&buf[..cut]);
            assert_eq!(found.records.len(), 1, "cut at {cut}");
            assert_eq!(found.damaged, vec![first..cut], "cut at {cut}");
            assert!(!found.damaged_inside());
        }
    }

    #[test]
    fn a_flipped_byte_costs_only_the_record_it_is_in() {
        let mut buf = Vec::new();
        let mut starts = Vec::new();
        for i in 0..5 {
            starts.push(buf.len());
            encode(&mut buf, &record(i, Status::Ok));
        }
        // Every byte of the third record: its length, payload or checksum.
        for at in starts[2]..starts[3] {
            let mut bad = buf.clone();
            bad[at] ^= 0xff;
            let found = scan(&bad);
            let seeds: Vec<u64> = found.records.iter().map(|r| r.seed).collect();
            assert_eq!(seeds, [0, 1, 3, 4], "byte {at}");
            assert_eq!(found.damaged, vec![starts[2]..starts[3]], "byte {at}");
            assert!(found.damaged_inside());
        }
    }

    #[test]
    fn a_torn_write_is_told_from_damage_over_the_end() {
        let mut buf = Vec::new();
        encode(&mut buf, &record(1, Status::Ok));
        let one = buf.len();
        // Every cut of a record is a torn write.
        for cut in 0..one {
            assert!(torn_write(&buf[..cut]), "cut at {cut}");
        }
        // Zeros, garbage and a whole record with a bad checksum are not.
        let mut bad = buf.clone();
        bad[one - 1] ^= 1;
        let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for rest in [&vec![0u8; 500][..], &garbage, &bad] {
            assert!(!torn_write(rest), "{:?}", &rest[..8]);
        }
    }

    #[test]
    fn opening_rewrites_a_journal_damaged_inside_without_the_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = Vec::new();
        let mut starts = Vec::new();
        for i in 0..4 {
            starts.push(buf.len());
            encode(&mut buf, &record(i, Status::Ok));
        }
        buf[starts[1] + 7] ^= 0xff;
        std::fs::write(dir.path().join(JOURNAL_FILE), &buf).unwrap();

        let mut opened = Journal::open(dir.path()).unwrap();
        assert_eq!(opened.done.len(), 3);
        let damage = opened.damage.expect("damage reported");
        assert_eq!(
            (damage.bytes, damage.at, damage.torn),
            ((starts[2] - starts[1]) as u64, starts[1] as u64, false)
        );
        let mut more = Vec::new();
        encode(&mut more, &record(9, Status::Diverged));
        opened.journal.write(&more).unwrap();
        drop(opened);

        let reopened = Journal::open(dir.path()).unwrap();
        assert_eq!(reopened.damage, None);
        let mut seeds: Vec<u64> = reopened.done.values().map(|r| r.seed).collect();
        seeds.sort();
        assert_eq!(seeds, [0, 2, 3, 9]);
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
        let damage = opened.damage.expect("damage reported");
        assert_eq!(
            (damage.bytes, damage.at, damage.torn),
            ((buf.len() - 3 - keep) as u64, keep as u64, true)
        );
        let mut more = Vec::new();
        encode(&mut more, &record(3, Status::Diverged));
        opened.journal.write(&more).unwrap();
        drop(opened);

        let reopened = Journal::open(dir.path()).unwrap();
        assert_eq!(reopened.damage, None);
        let mut keys: Vec<_> = reopened.done.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, [format!("{:032x}", 1), format!("{:032x}", 3)]);
    }
}
