//! The signing record: the highest height this department's issuer key has signed, kept
//! in a file beside the key (as Ethereum validators keep a slashing-protection record,
//! EIP-3076), not in the data directory.
//!
//! A data directory can be restored from an old backup, copied, or lost; the key and its
//! record travel together. Before the producer signs height h it checks h is above the
//! record, and once block h is durable it writes h to the record (fsynced) before the
//! block is acknowledged or gossiped. So a data directory behind the record cannot sign at
//! a height the key already used: the node waits until catch-up has brought its own signed
//! blocks up to the record. What peers merely claim about our chain never opens or closes
//! signing.
//!
//! A crash between the block's flush and the record's write leaves the record one height
//! behind the chain; that is safe (the chain itself proves the height), and the next block
//! moves the record on.
//!
//! The record is on the block path, so it costs one small write and one `fdatasync` per
//! block: the file is created once (written aside, fsynced, renamed into place), then kept
//! open and overwritten in place with a fixed-length body, well inside one disk sector.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use huren_core::DepartmentId;

const TAG: &str = "huren-signing-record/1";
const RECORD_BYTES_MAX: u64 = 256;

#[derive(Debug, thiserror::Error)]
pub enum SigningRecordError {
    #[error("signing record {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("signing record {path} is not a Huren signing record for {department}: {problem}")]
    Format {
        path: String,
        department: DepartmentId,
        problem: String,
    },
}

/// The record of one department's key.
#[derive(Debug)]
pub struct SigningRecord {
    path: PathBuf,
    department: DepartmentId,
    highest: u64,
    /// The record file, open for overwriting in place.
    file: Option<File>,
}

/// Where the record of the key at `key_path` lives: beside it, `<key file>.signed`.
pub fn record_path(key_path: &Path) -> PathBuf {
    let mut name = key_path.file_name().unwrap_or_default().to_owned();
    name.push(".signed");
    key_path.with_file_name(name)
}

impl SigningRecord {
    /// Opens the record beside `key_path`. Without one (a key that never signed with this
    /// version), starts one at `local_head`, the highest height this node can prove it
    /// signed, and says so in the log: the record must from now on travel with the key.
    pub fn open(
        key_path: &Path,
        department: &DepartmentId,
        local_head: u64,
    ) -> Result<Self, SigningRecordError> {
        let path = record_path(key_path);
        let mut r = Self {
            path,
            department: department.clone(),
            highest: 0,
            file: None,
        };
        match std::fs::metadata(&r.path) {
            Ok(m) if m.len() > RECORD_BYTES_MAX => Err(r.bad("too large".into())),
            Ok(_) => {
                let text = std::fs::read_to_string(&r.path).map_err(|e| r.io(e))?;
                r.highest = r.parse(&text)?;
                r.reopen()?;
                Ok(r)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if local_head == 0 {
                    tracing::info!(path = %r.path.display(), "starting the signing record beside the issuer key");
                } else {
                    tracing::warn!(path = %r.path.display(), height = local_head,
                        "no signing record beside the issuer key; starting one at this node's chain height (keep it with the key from now on)");
                }
                r.create(local_head)?;
                Ok(r)
            }
            Err(e) => Err(r.io(e)),
        }
    }

    /// The highest height the key has signed, as far as the record knows.
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Records that block `height` is durable; the record never goes down.
    pub fn signed(&mut self, height: u64) -> Result<(), SigningRecordError> {
        if height > self.highest {
            let body = self.body(height);
            let file = match self.file.as_mut() {
                Some(f) => f,
                None => return Err(self.io(std::io::Error::other("the record is not open"))),
            };
            let written = file
                .seek(SeekFrom::Start(0))
                .and_then(|_| file.write_all(body.as_bytes()))
                .and_then(|()| file.sync_data());
            written.map_err(|e| self.io(e))?;
            self.highest = height;
        }
        Ok(())
    }

    /// The record's text for `height`: always the same length for one department, so an
    /// overwrite in place never leaves a tail of the old text.
    fn body(&self, height: u64) -> String {
        format!("{TAG}\n{}\n{height:020}\n", self.department)
    }

    fn reopen(&mut self) -> Result<(), SigningRecordError> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        self.file = Some(f);
        Ok(())
    }

    fn parse(&self, text: &str) -> Result<u64, SigningRecordError> {
        let mut lines = text.lines();
        if lines.next() != Some(TAG) {
            return Err(self.bad(format!("the first line is not {TAG}")));
        }
        if lines.next() != Some(self.department.as_str()) {
            return Err(self.bad("it names another department".into()));
        }
        lines
            .next()
            .and_then(|h| h.trim().parse::<u64>().ok())
            .ok_or_else(|| self.bad("the third line is not a height".into()))
    }

    /// Creates the record durably: a temporary file, fsynced, renamed into place, and the
    /// directory fsynced, so a crash leaves no record or a whole one.
    fn create(&mut self, height: u64) -> Result<(), SigningRecordError> {
        let tmp = self.path.with_extension("signed.tmp");
        let body = self.body(height);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| self.io(e))?;
        f.write_all(body.as_bytes()).map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                d.sync_all().map_err(|e| self.io(e))?;
            }
        }
        self.highest = height;
        self.reopen()
    }

    fn io(&self, source: std::io::Error) -> SigningRecordError {
        SigningRecordError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn bad(&self, problem: String) -> SigningRecordError {
        SigningRecordError::Format {
            path: self.path.display().to_string(),
            department: self.department.clone(),
            problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dept() -> DepartmentId {
        DepartmentId::parse("gd.transport").expect("dept")
    }

    #[test]
    fn the_record_starts_at_the_chain_never_goes_down_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("tmp");
        let key = dir.path().join("gd.transport.issuer.key");
        let mut r = SigningRecord::open(&key, &dept(), 3).expect("new record");
        assert_eq!(r.highest(), 3);
        r.signed(4).expect("4");
        r.signed(2).expect("lower is ignored");
        assert_eq!(r.highest(), 4);
        // Reopened (a restart, or a restored data directory beside the same key): the
        // record, not the chain, says how far the key went.
        let again = SigningRecord::open(&key, &dept(), 0).expect("reopen");
        assert_eq!(again.highest(), 4);
        assert!(record_path(&key).ends_with("gd.transport.issuer.key.signed"));
    }

    #[test]
    fn a_foreign_or_garbled_record_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let key = dir.path().join("k");
        std::fs::write(record_path(&key), format!("{TAG}\nsh.transport\n9\n")).expect("w");
        assert!(SigningRecord::open(&key, &dept(), 0).is_err());
        std::fs::write(record_path(&key), "nonsense").expect("w");
        assert!(SigningRecord::open(&key, &dept(), 0).is_err());
        std::fs::write(record_path(&key), "x".repeat(1000)).expect("w");
        assert!(SigningRecord::open(&key, &dept(), 0).is_err());
    }
}
