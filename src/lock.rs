//! One writer per output folder.
//!
//! A run holds an advisory lock (`flock`) on `DIR/.lock` for as long as it
//! runs; the file also records the holder's pid for the message a second
//! run prints. Because the kernel releases the lock when its process dies,
//! a lock left by a killed run is never stale: the next run simply takes it.
//!
//! The shards of a sweep each lock their own folder, and all of them share
//! a lock on the sweep's folder: shards run side by side, but never beside
//! a run of the whole grid (or a merge), which holds that lock alone.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

pub const LOCK_FILE: &str = ".lock";

/// Held for the life of a run; dropping it releases the folder.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
}

/// The holder a lock file names: `pid N`, or `unnamed` when it holds no pid
/// (shards hold the lock together and write none).
fn who(file: &mut File, unnamed: &str) -> String {
    let mut pid = String::new();
    let _ = file.read_to_string(&mut pid);
    match pid.trim() {
        "" => unnamed.to_string(),
        pid => format!("pid {pid}"),
    }
}

const UNNAMED: &str = "another process, or shards of this sweep";

/// Takes a shared lock on `dir` (which must exist), as a shard does on its
/// sweep's folder, or says which run of the whole folder holds it.
pub fn acquire_shared(dir: &Path) -> Result<FolderLock> {
    let path = dir.join(LOCK_FILE);
    let mut file = open(&path)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(FolderLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            let who = who(&mut file, "another process");
            bail!(
                "{} is in use by a wdsweep run of the whole grid or a merge ({who}), which would \
                 do or write this shard's jobs too; wait for it to finish, stop it, or write \
                 elsewhere with --out DIR",
                dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Who holds a lock on `dir` right now, if anyone: for `--dry-run`, which
/// looks without taking the lock or creating anything.
pub fn holder(dir: &Path) -> Option<String> {
    let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
    match file.try_lock() {
        Ok(()) => None,
        Err(_) => Some(who(&mut file, UNNAMED)),
    }
}

/// Takes the lock on `dir` (which must exist) alone, or says who holds it.
pub fn acquire(dir: &Path) -> Result<FolderLock> {
    let path = dir.join(LOCK_FILE);
    let mut file = open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let who = who(&mut file, UNNAMED);
            bail!(
                "{} is in use by another wdsweep run ({who}); wait for it to finish, stop it, \
                 or write elsewhere with --out DIR",
                dir.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(FolderLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_folder_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path()).unwrap();
        let err = acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        acquire(dir.path()).unwrap();
    }

    #[test]
    fn the_holder_of_a_lock_is_found_without_taking_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()), None);
        assert!(
            !dir.path().join(LOCK_FILE).exists(),
            "looking created the file"
        );
        let held = acquire(dir.path()).unwrap();
        assert_eq!(
            holder(dir.path()),
            Some(format!("pid {}", std::process::id()))
        );
        drop(held);
        assert_eq!(holder(dir.path()), None);
    }

    #[test]
    fn shared_locks_coexist_and_exclude_the_sole_lock() {
        let dir = tempfile::tempdir().unwrap();
        let one = acquire_shared(dir.path()).unwrap();
        let two = acquire_shared(dir.path()).unwrap();
        assert!(acquire(dir.path()).is_err());
        drop((one, two));
        let sole = acquire(dir.path()).unwrap();
        let err = acquire_shared(dir.path()).unwrap_err().to_string();
        assert!(err.contains("whole grid"), "{err}");
        drop(sole);
        acquire_shared(dir.path()).unwrap();
    }
}
