//! Tailing log files: new lines of each file become records, across rotation.
//!
//! Each file is polled: when it grows, the new complete lines are read; when it is
//! replaced (a different inode: `logrotate`'s create mode) the rest of the old file is
//! lost to the rename, so the new file is read from its start; when it shrinks
//! (copytruncate mode) it is read again from its start. A line starting with `{` is
//! read as a JSON record (see [`super::jsonl`]); any other line is its own body, with
//! the level taken from the first level word in it. The service is the file's name
//! without its extension.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use steward_core::{LogLevel, LogRecord};
use tokio::sync::watch;

use super::{jsonl, now_ms};
use crate::store::writer::{Payload, Writer};

/// Most bytes read from one file per poll.
const MAX_READ: u64 = 8 << 20;

/// One file being followed.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    service: String,
    inode: Option<u64>,
    offset: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Follows `path` from its current end (only lines written from now on are read).
    pub fn new(path: &Path) -> Follower {
        let meta = std::fs::metadata(path).ok();
        Follower {
            path: path.to_path_buf(),
            service: path
                .file_stem()
                .map_or_else(|| "file".into(), |s| s.to_string_lossy().into_owned()),
            inode: meta.as_ref().map(MetadataExt::ino),
            offset: meta.map_or(0, |m| m.len()),
            partial: Vec::new(),
        }
    }

    /// Reads what was appended since the last poll.
    pub fn poll(&mut self) -> std::io::Result<Vec<LogRecord>> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        if self.inode != Some(meta.ino()) || meta.len() < self.offset {
            self.inode = Some(meta.ino());
            self.offset = 0;
            self.partial.clear();
        }
        if meta.len() == self.offset {
            return Ok(Vec::new());
        }
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        file.take(MAX_READ).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(last_newline) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let complete: Vec<u8> = self.partial.drain(..=last_newline).collect();
        let now = now_ms();
        let mut out = Vec::new();
        for line in complete.split(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(line);
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let mut record = if line.starts_with('{') {
                jsonl::decode(line.as_bytes())
                    .items
                    .pop()
                    .unwrap_or_else(|| LogRecord::from_body(line))
            } else {
                let mut r = LogRecord::from_body(line);
                r.level = line
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .filter(|w| w.len() >= 4 && w.chars().all(|c| c.is_ascii_uppercase()))
                    .find_map(|w| w.parse::<LogLevel>().ok());
                r
            };
            record.timestamp_ms = record.timestamp_ms.or(Some(now));
            if record.service.is_none() {
                record.service = Some(self.service.clone());
            }
            out.push(record);
        }
        Ok(out)
    }
}

/// Follows `paths` every `interval` into the writer until shutdown.
pub async fn run(
    paths: Vec<PathBuf>,
    interval: Duration,
    writer: Writer,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut followers: Vec<Follower> = paths.iter().map(|p| Follower::new(p)).collect();
    let mut every = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        for f in &mut followers {
            match f.poll() {
                Ok(records) if !records.is_empty() => {
                    if writer.write(Payload::Logs(records)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("tail {}: {e}", f.path.display()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follows_appends_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.log");
        std::fs::write(&path, "old line before start\n").unwrap();
        let mut f = Follower::new(&path);
        assert!(f.poll().unwrap().is_empty());

        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        write!(file, "2024-01-01 ERROR db timeout after 30 s\n{{\"msg\":\"json line\",\"level\":\"warn\"}}\nhalf").unwrap();
        let got = f.poll().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].level, Some(LogLevel::Error));
        assert_eq!(got[0].service.as_deref(), Some("api"));
        assert_eq!(got[1].body, "json line");
        writeln!(file, " a line").unwrap();
        assert_eq!(f.poll().unwrap()[0].body, "half a line");

        // Rotation: the file is renamed away and a new one created.
        std::fs::rename(&path, dir.path().join("api.log.1")).unwrap();
        std::fs::write(&path, "first line of the new file\n").unwrap();
        assert_eq!(f.poll().unwrap()[0].body, "first line of the new file");

        // copytruncate: the same file shrinks.
        std::fs::write(&path, "x\n").unwrap();
        assert_eq!(f.poll().unwrap()[0].body, "x");
    }
}
