//! The durable spool: sealed batches on disk until the hub acknowledges them.
//!
//! Each batch is one file, `NNNNNNNNNNNNNNNNNNNN.batch` (a sequence number, so the oldest ships
//! first), written as `WHSPOOL1 <sha256-of-meta-and-body> <meta>\n<body>` to a temporary name,
//! fsync'd, renamed, and the directory fsync'd. `meta` is one line of the caller's (the batch id,
//! its encoding, and the file positions it covers). Only then does the batch count as received. A file whose checksum
//! does not match (a torn write after a crash, disk corruption) is moved to `corrupt/` and
//! counted, never shipped.
//!
//! The spool is bounded: when it would exceed its byte limit, the oldest batches are dropped
//! first, and the number dropped is counted and reported to the hub.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &[u8] = b"WHSPOOL1 ";

/// A spool directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    next_seq: u64,
    max_bytes: u64,
    /// Waiting batches: sequence number → file size. Read from the directory once, at open.
    index: BTreeMap<u64, u64>,
    /// Sum of the sizes in `index`.
    total: u64,
}

/// A batch file waiting to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number.
    pub seq: u64,
    /// Its path.
    pub path: PathBuf,
}

/// Errors reading the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Filesystem error.
    #[error("spool {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        source: std::io::Error,
    },
    /// The file failed its checksum; it has been moved aside.
    #[error("spool file {0} is corrupt and was moved to corrupt/")]
    Corrupt(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

impl Spool {
    /// Opens (creating) the spool in `dir`, bounded to `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let mut index = BTreeMap::new();
        for e in fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let p = e.path();
            match p.extension().and_then(|x| x.to_str()) {
                // Leftover temporaries are batches whose write never completed: they were never
                // acknowledged to anyone, so removing them loses nothing counted as received.
                Some("tmp") => {
                    let _ = fs::remove_file(&p);
                }
                Some("batch") => {
                    let seq = p
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .and_then(|s| s.parse().ok());
                    if let Some(seq) = seq {
                        index.insert(seq, e.metadata().map(|m| m.len()).unwrap_or(0));
                    }
                }
                _ => {}
            }
        }
        Ok(Spool {
            dir: dir.to_owned(),
            next_seq: index.keys().next_back().map_or(1, |s| s + 1),
            max_bytes,
            total: index.values().sum(),
            index,
        })
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.batch"))
    }

    /// Batches waiting, oldest first.
    pub fn entries(&self) -> Result<Vec<Entry>, SpoolError> {
        Ok(self
            .index
            .keys()
            .map(|&seq| Entry {
                seq,
                path: self.path(seq),
            })
            .collect())
    }

    /// The sequence number the next pushed batch will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Number of batches waiting.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Total bytes of waiting batches.
    pub fn bytes(&self) -> u64 {
        self.total
    }

    fn forget(&mut self, seq: u64) {
        if let Some(len) = self.index.remove(&seq) {
            self.total = self.total.saturating_sub(len);
        }
    }

    /// Durably appends a batch body. Returns the entry and how many old batches were dropped to
    /// stay within the limit.
    pub fn push(&mut self, body: &[u8], meta: &str) -> Result<(Entry, u64), SpoolError> {
        let meta = meta.replace(['\n', '\r'], " ");
        let mut dropped = 0;
        let size = (MAGIC.len() + 66 + meta.len() + body.len()) as u64;
        while self.total + size > self.max_bytes {
            let Some((&oldest, _)) = self.index.iter().next() else {
                break;
            };
            let p = self.path(oldest);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&p)(e)),
            }
            self.forget(oldest);
            dropped += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self.path(seq);
        let tmp = self.dir.join(format!("{seq:020}.tmp"));
        {
            let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(MAGIC).map_err(io(&tmp))?;
            f.write_all(checksum(meta.as_bytes(), body).as_bytes())
                .map_err(io(&tmp))?;
            f.write_all(b" ").map_err(io(&tmp))?;
            f.write_all(meta.as_bytes()).map_err(io(&tmp))?;
            f.write_all(b"\n").map_err(io(&tmp))?;
            f.write_all(body).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.dir)?;
        self.index.insert(seq, size);
        self.total += size;
        Ok((Entry { seq, path }, dropped))
    }

    /// Reads and verifies a batch: its meta line and body. A file that fails verification is
    /// moved to `corrupt/` and reported.
    pub fn read(&mut self, e: &Entry) -> Result<(String, Vec<u8>), SpoolError> {
        let data = match fs::read(&e.path) {
            Ok(d) => d,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                // Removed behind our back: it cannot be shipped, so it leaves the index.
                self.forget(e.seq);
                return Err(io(&e.path)(err));
            }
            Err(err) => return Err(io(&e.path)(err)),
        };
        match parse_file(&data) {
            Some((meta, body)) => Ok((meta.to_owned(), body.to_vec())),
            None => {
                let corrupt = self.dir.join("corrupt");
                fs::create_dir_all(&corrupt).map_err(io(&corrupt))?;
                let dest = corrupt.join(e.path.file_name().unwrap_or_default());
                fs::rename(&e.path, &dest).map_err(io(&dest))?;
                self.forget(e.seq);
                Err(SpoolError::Corrupt(dest))
            }
        }
    }

    /// The meta lines of the waiting batches after sequence number `seq` that verify, oldest
    /// first (used at start-up to recover file positions written just before a crash; only the
    /// batches newer than the last checkpoint are read, not the whole spool).
    pub fn metas_after(&self, seq: u64) -> Vec<String> {
        self.index
            .range(seq + 1..)
            .filter_map(|(&s, _)| fs::read(self.path(s)).ok())
            .filter_map(|d| parse_file(&d).map(|(m, _)| m.to_owned()))
            .collect()
    }

    /// Removes a batch after the hub acknowledged it.
    pub fn remove(&mut self, e: &Entry) -> Result<(), SpoolError> {
        match fs::remove_file(&e.path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io(&e.path)(err)),
        }
        self.forget(e.seq);
        sync_dir(&self.dir)
    }

    /// Moves a batch the hub refused as invalid to `rejected/`, so it is kept for diagnosis but
    /// not retried forever.
    pub fn reject(&mut self, e: &Entry) -> Result<(), SpoolError> {
        let dir = self.dir.join("rejected");
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let dest = dir.join(e.path.file_name().unwrap_or_default());
        fs::rename(&e.path, &dest).map_err(io(&dest))?;
        self.forget(e.seq);
        Ok(())
    }
}

fn checksum(meta: &[u8], body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(meta);
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

/// `WHSPOOL1 <sha> [meta]\n<body>` → (meta, body) if the checksum holds.
fn parse_file(data: &[u8]) -> Option<(&str, &[u8])> {
    let rest = data.strip_prefix(MAGIC)?;
    let nl = memchr::memchr(b'\n', rest)?;
    let header = std::str::from_utf8(&rest[..nl]).ok()?;
    let body = &rest[nl + 1..];
    let (sum, meta) = match header.split_once(' ') {
        Some((s, m)) => (s, m),
        None => (header, ""),
    };
    (sum.len() == 64 && checksum(meta.as_bytes(), body) == sum).then_some((meta, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_read_remove_and_resume_sequence() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        let (a, _) = s.push(b"one", "m1").unwrap();
        let (b, _) = s.push(b"two", "m2\nx").unwrap();
        assert_eq!(s.len(), 2);
        assert!(a.seq < b.seq);
        assert_eq!(s.read(&a).unwrap(), ("m1".to_string(), b"one".to_vec()));
        assert_eq!(s.metas_after(0), vec!["m1".to_string(), "m2 x".to_string()]);
        assert_eq!(s.metas_after(a.seq), vec!["m2 x".to_string()]);
        s.remove(&a).unwrap();
        drop(s);
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        assert_eq!(s.entries().unwrap(), vec![b.clone()]);
        let (c, _) = s.push(b"three", "").unwrap();
        assert!(c.seq > b.seq, "sequence resumes after restart");
    }

    #[test]
    fn corrupt_files_are_moved_aside() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        let (a, _) = s.push(b"payload", "meta").unwrap();
        let mut bytes = fs::read(&a.path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&a.path, bytes).unwrap();
        assert!(matches!(s.read(&a), Err(SpoolError::Corrupt(_))));
        assert!(s.entries().unwrap().is_empty());
        assert!(d.path().join("corrupt").read_dir().unwrap().count() == 1);
    }

    #[test]
    fn full_spool_drops_oldest_first() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 400).unwrap();
        let body = [b'x'; 100];
        let mut dropped = 0;
        for _ in 0..5 {
            dropped += s.push(&body, "").unwrap().1;
        }
        let left = s.entries().unwrap();
        assert!(dropped >= 2, "dropped {dropped}");
        assert_eq!(left.last().unwrap().seq, 5, "newest kept");
        assert!(s.bytes() <= 400);
    }

    #[test]
    fn a_batch_file_removed_behind_the_spool_leaves_its_index() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        let (a, _) = s.push(b"x", "").unwrap();
        fs::remove_file(&a.path).unwrap();
        assert!(s.read(&a).is_err());
        assert!(s.is_empty(), "no endless retry of a file that is gone");
    }

    #[test]
    fn torn_temporaries_are_cleared_at_open() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("00000000000000000009.tmp"), b"half").unwrap();
        let s = Spool::open(d.path(), 1 << 20).unwrap();
        assert!(s.is_empty());
        assert!(!d.path().join("00000000000000000009.tmp").exists());
    }
}
