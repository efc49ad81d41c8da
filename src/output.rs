//! Writing to the terminal without panicking.
//!
//! `println!` panics when stdout is a closed pipe (`wdsweep run … | head`)
//! or a full disk. Every line wdsweep prints goes through [`say!`] (stdout)
//! or [`tell!`] (stderr) instead: a closed pipe only means the reader has
//! seen what it wanted, so output stops and the work goes on; any other
//! failure to write stdout ends the program with exit code 1 — by then every
//! result file has been written, since the report is printed last.

use std::fmt;
use std::io::{ErrorKind, Write};

/// Prints a line on stdout; see the module docs.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::output::stdout_line(format_args!($($arg)*)) };
}

/// Prints a line on stderr, ignoring a closed stderr.
#[macro_export]
macro_rules! tell {
    ($($arg:tt)*) => { $crate::output::stderr_line(format_args!($($arg)*)) };
}

pub fn stdout_line(args: fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush());
    if let Err(e) = written
        && e.kind() != ErrorKind::BrokenPipe
    {
        stderr_line(format_args!(
            "wdsweep: error: cannot write to standard output: {e}"
        ));
        std::process::exit(1);
    }
}

pub fn stderr_line(args: fmt::Arguments) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|_| err.write_all(b"\n"));
}
