//! Reading inputs and writing outputs with bounds, context and exit codes.
//!
//! Every file the CLI reads comes from outside the process, so it is read with a size
//! bound decided before the first byte is read; every file it writes is either new or
//! replaced whole, never left half-written under its final name.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::exit::{fail, Exit, WithExit};

/// Reads a whole file of at most `max` bytes. Unreadable → 66, too large → 65.
pub fn read_bounded(path: &Path, max: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))
        .code(Exit::NO_INPUT)?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {what} {}", path.display()))
        .code(Exit::NO_INPUT)?
        .len();
    if len > max as u64 {
        return Err(fail(
            Exit::DATA,
            format!(
                "{what} {} is {len} bytes; at most {max} are accepted",
                path.display()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // The file may grow between metadata and read; `take` keeps the bound regardless.
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))
        .code(Exit::NO_INPUT)?;
    if bytes.len() > max {
        return Err(fail(
            Exit::DATA,
            format!("{what} {} grew past {max} bytes", path.display()),
        ));
    }
    Ok(bytes)
}

/// Reads a UTF-8 text file of at most `max` bytes.
pub fn read_text(path: &Path, max: usize, what: &str) -> anyhow::Result<String> {
    let bytes = read_bounded(path, max, what)?;
    String::from_utf8(bytes).map_err(|_| {
        fail(
            Exit::DATA,
            format!("{what} {} is not UTF-8", path.display()),
        )
    })
}

/// Reads one line from standard input (a scanner types the QR text and Enter), bounded.
pub fn read_stdin_line(max: usize) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(max as u64 + 1)
        .read_line(&mut line)
        .context("cannot read standard input")
        .code(Exit::NO_INPUT)?;
    if line.len() > max {
        return Err(fail(
            Exit::DATA,
            format!("the line on standard input is longer than {max} bytes"),
        ));
    }
    Ok(line.trim().to_owned())
}

/// Refuses to go on if `path` exists and `force` is not set, before any work is done.
pub fn check_new(path: &Path, force: bool) -> anyhow::Result<()> {
    if !force && path.exists() {
        return Err(fail(
            Exit::CANT_CREATE,
            format!(
                "{} already exists; pass --force to replace it",
                path.display()
            ),
        ));
    }
    Ok(())
}

fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash or a full
/// disk never leaves a truncated file under the final name. Without `force`, an existing
/// file is an error.
pub fn write_file(path: &Path, bytes: &[u8], force: bool, what: &str) -> anyhow::Result<()> {
    check_new(path, force)?;
    let tmp = temp_sibling(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: the temporary file is useless once the write failed.
        let _ = std::fs::remove_file(&tmp);
    }
    result
        .with_context(|| format!("cannot write {what} {}", path.display()))
        .code(Exit::CANT_CREATE)
}

/// Prints one line on standard output, reporting a closed or failing stdout as an error
/// instead of panicking like `println!`.
pub fn print_line(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .context("cannot write to standard output")
        .code(Exit::IO)
}

/// Repeats a one-line verdict on stderr for a person at a terminal; scripts read the
/// JSON on stdout and do not want the noise.
pub fn tell_terminal(line: &str) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::code_of;

    #[test]
    fn bounds_and_codes() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("a.txt");
        assert_eq!(
            code_of(&read_bounded(&p, 10, "file").expect_err("missing")),
            Exit::NO_INPUT
        );
        write_file(&p, b"0123456789AB", false, "file").expect("write");
        assert_eq!(
            code_of(&read_bounded(&p, 10, "file").expect_err("too large")),
            Exit::DATA
        );
        assert_eq!(read_bounded(&p, 12, "file").expect("read"), b"0123456789AB");
        let again = write_file(&p, b"x", false, "file").expect_err("exists");
        assert_eq!(code_of(&again), Exit::CANT_CREATE);
        write_file(&p, b"x", true, "file").expect("forced");
        assert_eq!(read_text(&p, 1, "file").expect("read"), "x");
    }
}
