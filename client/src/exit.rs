//! Exit statuses and the error type that carries one.
//!
//! Scripts and service-window tooling branch on `huren`'s exit status, so every path out
//! of the program maps to exactly one of the codes below. Verdicts use 0/1/2 (the same
//! numbers as `huren_core::Verdict::exit_code`); problems use the BSD `sysexits.h`
//! numbers, so "the licence is invalid" can never be confused with "the command failed".
//!
//! An error gets its code where it is created (`.code(Exit::NO_INPUT)`); `code_of` finds
//! the outermost code in the chain, and anything without one is an internal error.

use std::fmt;

/// A process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub u8);

impl Exit {
    /// Success; for `verify`, the licence is valid.
    pub const OK: Exit = Exit(0);
    /// `verify`: the licence is invalid.
    pub const INVALID: Exit = Exit(1);
    /// `verify`: the verdict is undetermined.
    pub const UNDETERMINED: Exit = Exit(2);
    /// `verify --offline --bundle`: valid, but the bundle's data of the issuer is past
    /// its soft age limit (the report says "data as of"): refresh the bundle.
    pub const VALID_STALE: Exit = Exit(3);
    /// The node refused the request (4xx), or some rows of an import failed. Shares 1
    /// with `INVALID` because for those commands "the thing was refused" is the analogue.
    pub const REFUSED: Exit = Exit(1);
    /// Bad flags or arguments (EX_USAGE).
    pub const USAGE: Exit = Exit(64);
    /// An input file is readable but its content is wrong (EX_DATAERR).
    pub const DATA: Exit = Exit(65);
    /// An input file cannot be read (EX_NOINPUT).
    pub const NO_INPUT: Exit = Exit(66);
    /// The node cannot be reached, timed out or failed with a 5xx (EX_UNAVAILABLE).
    pub const UNAVAILABLE: Exit = Exit(69);
    /// A bug or an unexpected condition (EX_SOFTWARE).
    pub const INTERNAL: Exit = Exit(70);
    /// An output file cannot be created or written (EX_CANTCREAT).
    pub const CANT_CREATE: Exit = Exit(73);
    /// Standard output or another stream failed (EX_IOERR).
    pub const IO: Exit = Exit(74);
    /// The node answered something this client does not understand (EX_PROTOCOL).
    pub const PROTOCOL: Exit = Exit(76);
}

/// The exit statuses as `huren --help` lists them.
pub const EXIT_HELP: &str = "\
Exit status:
   0  success; verify: the licence is valid
   1  verify: invalid; suspend, revoke, status…: the node refused the request (4xx);
      import: some rows were not imported
   2  verify: undetermined (not decodable, not yet on the ledger, stale data…)
   3  verify --offline --bundle: valid, but the bundle is past its soft age limit
      (the report's as_of says how old its data is; refresh it with huren bundle)
  64  usage error: unknown flag, missing or malformed argument
  65  bad input data: genesis, template, key file, CSV header, image, text too long
  66  an input file cannot be read
  69  the node cannot be reached, timed out, or failed (5xx)
  70  internal error
  73  an output file cannot be created (or exists and --force was not given)
  74  standard output cannot be written
  76  the node's answer was not understood";

/// An error with the exit status it must produce. Its message is the whole chain of the
/// wrapped error, so wrapping loses nothing when printed with `{:#}`.
#[derive(Debug)]
pub struct Coded {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Coded {}

/// Attaches an exit status to an error.
pub trait WithExit<T> {
    fn code(self, exit: Exit) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> WithExit<T> for Result<T, E> {
    fn code(self, exit: Exit) -> anyhow::Result<T> {
        self.map_err(|e| coded(exit, e))
    }
}

/// An existing error with an exit status.
pub fn coded(exit: Exit, error: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        exit,
        error: error.into(),
    })
}

/// A new error with a message and an exit status.
pub fn fail(exit: Exit, message: impl fmt::Display) -> anyhow::Error {
    coded(exit, anyhow::anyhow!("{message}"))
}

/// The exit status for an error: the outermost code in its chain, else internal error.
pub fn code_of(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|e| e.downcast_ref::<Coded>())
        .map_or(Exit::INTERNAL, |c| c.exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn outermost_code_wins_and_context_is_kept() {
        let inner: anyhow::Result<()> = Err(fail(Exit::DATA, "bad row"));
        let err = inner
            .context("reading x.csv")
            .code(Exit::NO_INPUT)
            .expect_err("error");
        assert_eq!(code_of(&err), Exit::NO_INPUT);
        assert_eq!(format!("{err:#}"), "reading x.csv: bad row");

        let plain = anyhow::anyhow!("boom");
        assert_eq!(code_of(&plain), Exit::INTERNAL);
        let wrapped = Err::<(), _>(std::io::Error::other("disk"))
            .context("writing y")
            .code(Exit::CANT_CREATE)
            .context("saving")
            .expect_err("error");
        assert_eq!(code_of(&wrapped), Exit::CANT_CREATE);
        assert_eq!(format!("{wrapped:#}"), "saving: writing y: disk");
    }
}
