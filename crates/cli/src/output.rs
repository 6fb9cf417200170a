//! Standard output. A closed pipe (`joule zoo | head -1`) ends joule quietly with exit 0, as
//! ripgrep does; any other write error (a full disk) is a one-line error, never a panic (the
//! `println!` macro panics on both).

use std::io::Write;

/// Writes `args` (and a newline with `newline`) to stdout.
pub fn write(args: std::fmt::Arguments, newline: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let result = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(anyhow::anyhow!("standard output: {e}")),
    }
}

/// `println!` that returns write errors (see the module).
macro_rules! outln {
    () => { $crate::output::write(format_args!(""), true)? };
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*), true)? };
}

/// `print!` that returns write errors (see the module).
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*), false)? };
}

pub(crate) use {out, outln};
