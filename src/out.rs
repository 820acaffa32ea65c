//! Writing to standard output without panicking. `println!` panics when the
//! reader has gone (`leadflow test | head -1`: broken pipe); these return the
//! error instead, and `main` ends the command quietly with exit code 141
//! (128 + SIGPIPE, what a shell reports for a C tool killed by the signal).

use std::io::{self, Write};

/// The exit code of a command whose output pipe was closed by its reader.
pub const BROKEN_PIPE_EXIT: u8 = 141;

/// Write `text` to standard output and flush it.
pub fn stdout(text: &str) -> io::Result<()> {
    let mut o = io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()
}

/// Write `text` to standard error; a closed stderr is ignored (there is
/// nobody left to tell).
pub fn stderr(text: &str) {
    let mut e = io::stderr().lock();
    let _ = e.write_all(text.as_bytes());
    let _ = e.flush();
}

/// True if `e` (or an error it wraps) is a broken pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `print!` that returns an `io::Result` instead of panicking.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::stdout(&format!($($arg)*)) };
}

/// `println!` that returns an `io::Result` instead of panicking.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::stdout("\n") };
    ($($arg:tt)*) => { $crate::out::stdout(&format!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::out::stderr(&format!("{}\n", format_args!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_broken_pipe_is_recognised() {
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
