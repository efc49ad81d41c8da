//! Stopping cleanly on Ctrl-C and SIGTERM.
//!
//! The first SIGINT or SIGTERM sets a flag: the sweep starts no new job,
//! abandons running ones at their next epoch (a rerun does them again),
//! flushes the journal and writes the files of what is done, marked
//! partial. A second signal exits at once (130 or 143);
//! that is safe too, because the journal tolerates a torn tail and every
//! final file is renamed into place whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

/// The exit status for a stop by `signal` (128 + its number).
pub fn exit_code(signal: i32) -> u8 {
    (128 + signal) as u8
}

/// Shared stop state: set by a signal, or by the program itself when it
/// must abandon the sweep (a failed journal write).
#[derive(Clone, Default)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl Stop {
    /// A stop that only the program can trigger.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Installs the SIGINT and SIGTERM handlers described above.
    pub fn install() -> Result<Stop> {
        let stop = Stop::new();
        for signal in [SIGINT, SIGTERM] {
            // The shutdown must be registered first: it fires only once the
            // flag is already set, that is, on the second signal.
            flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&stop.flag))
                .and_then(|_| {
                    flag::register_usize(signal, Arc::clone(&stop.signal), signal as usize)
                })
                .and_then(|_| flag::register(signal, Arc::clone(&stop.flag)))
                .context("cannot install the signal handlers")?;
        }
        Ok(stop)
    }

    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// The signal that stopped the run, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }
}
