//! Tailing log files: new lines of each file become records, across rotation.
//!
//! Each file is polled: when it grows, the new complete lines are read; when it is
//! replaced (a different inode: `logrotate`'s create mode) the rest of the old file is
//! lost to the rename, so the new file is read from its start; when it shrinks
//! (copytruncate mode) it is read again from its start.
//!
//! A source (`[[watch.tail]]`) is a path or a glob; a glob is expanded again at every
//! poll, so a file that appears later is followed from its start. Lines are read in the
//! source's format (steward-logs' formats); in `auto`, a line starting with `{` is read
//! as a JSON record (see [`super::jsonl`]) and any other line is its own body. A record
//! without a level takes the first level word in the line. The service is the source's
//! `service`, else the file's name without its extension.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use steward_core::{LogLevel, LogRecord};
use steward_logs::Format;
use tokio::sync::watch;

use super::{jsonl, now_ms};
use crate::store::writer::{Payload, Writer};

/// Most bytes read from one file per poll.
const MAX_READ: u64 = 8 << 20;

/// One `[[watch.tail]]` entry: a file or a glob, with its service and format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// A path, or a glob such as `/var/log/app/*.log`.
    pub path: String,
    /// The service of its records; the file's stem when `None`.
    pub service: Option<String>,
    /// Its line format, as `logs.format` takes it.
    pub format: String,
}

impl From<PathBuf> for Source {
    /// One file in the `auto` format, named after itself (the `--tail` flag).
    fn from(path: PathBuf) -> Source {
        Source {
            path: path.display().to_string(),
            service: None,
            format: "auto".into(),
        }
    }
}

impl Source {
    /// The source a `[[watch.tail]]` table describes.
    pub fn from_config(config: &steward_core::config::TailConfig) -> Source {
        Source {
            path: config.path.clone(),
            service: config.service.clone(),
            format: config.format.clone(),
        }
    }

    /// Checks the format and the glob; the error says what is wrong with which.
    pub fn validate(&self) -> Result<(), String> {
        Format::from_str(&self.format).map_err(|e| format!("format: {e}"))?;
        glob::Pattern::new(&self.path).map_err(|e| format!("path {:?}: {e}", self.path))?;
        Ok(())
    }

    /// The files it names now: the path itself, or the glob's matches (sorted).
    fn files(&self) -> Vec<PathBuf> {
        if !self.path.contains(['*', '?', '[']) {
            return vec![PathBuf::from(&self.path)];
        }
        match glob::glob(&self.path) {
            Ok(paths) => {
                let mut out: Vec<PathBuf> = paths
                    .filter_map(Result::ok)
                    .filter(|p| p.is_file())
                    .collect();
                out.sort();
                out
            }
            Err(_) => Vec::new(),
        }
    }
}

/// One file being followed.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    service: String,
    /// `None` is `auto`: JSON for lines starting with `{`, raw otherwise.
    format: Option<Format>,
    inode: Option<u64>,
    offset: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Follows `path` from its current end (only lines written from now on are read),
    /// as its own service, in the `auto` format.
    pub fn new(path: &Path) -> Follower {
        let meta = std::fs::metadata(path).ok();
        Follower {
            path: path.to_path_buf(),
            service: path
                .file_stem()
                .map_or_else(|| "file".into(), |s| s.to_string_lossy().into_owned()),
            format: None,
            inode: meta.as_ref().map(MetadataExt::ino),
            offset: meta.map_or(0, |m| m.len()),
            partial: Vec::new(),
        }
    }

    /// Follows `path` of `source`; from its start when `from_start` (a file that
    /// appeared while steward ran: all of it is new).
    fn of(source: &Source, path: &Path, from_start: bool) -> Follower {
        let mut f = Follower::new(path);
        if let Some(service) = &source.service {
            f.service.clone_from(service);
        }
        f.format = match Format::from_str(&source.format) {
            Ok(Format::Auto) | Err(_) => None,
            Ok(format) => Some(format),
        };
        if from_start {
            f.offset = 0;
        }
        f
    }

    fn parse(&self, line: &str) -> LogRecord {
        match &self.format {
            Some(format) => format
                .parse_line(line)
                .unwrap_or_else(|| LogRecord::from_body(line)),
            None if line.starts_with('{') => jsonl::decode(line.as_bytes())
                .items
                .pop()
                .unwrap_or_else(|| LogRecord::from_body(line)),
            None => LogRecord::from_body(line),
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
            let mut record = self.parse(line);
            if record.level.is_none() {
                record.level = line
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .filter(|w| w.len() >= 4 && w.chars().all(|c| c.is_ascii_uppercase()))
                    .find_map(|w| w.parse::<LogLevel>().ok());
            }
            record.timestamp_ms = record.timestamp_ms.or(Some(now));
            if record.service.is_none() {
                record.service = Some(self.service.clone());
            }
            out.push(record);
        }
        Ok(out)
    }
}

/// The files of every source, followed.
#[derive(Debug)]
pub struct Tailer {
    sources: Vec<Source>,
    followers: Vec<Follower>,
    known: HashSet<PathBuf>,
}

impl Tailer {
    /// Takes note of the files the sources name now, to be read from their end: what
    /// was written before the service started is not read. Call it before the service
    /// reports that it is ready, so "before start" means just that.
    pub fn new(sources: Vec<Source>) -> Tailer {
        let mut tailer = Tailer {
            sources,
            followers: Vec::new(),
            known: HashSet::new(),
        };
        tailer.discover(false);
        tailer
    }

    /// Follows files the sources name that are not followed yet.
    fn discover(&mut self, from_start: bool) {
        for source in &self.sources {
            for path in source.files() {
                if self.known.insert(path.clone()) {
                    self.followers.push(Follower::of(source, &path, from_start));
                }
            }
        }
    }

    /// Polls every file each `interval` into the writer until shutdown; files a glob
    /// matches later are read from their start.
    pub async fn run(
        mut self,
        interval: Duration,
        writer: Writer,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut every = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            self.discover(true);
            for f in &mut self.followers {
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

    #[test]
    fn a_source_sets_service_and_format_and_a_glob_picks_up_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let source = Source {
            path: format!("{}/*.log", dir.path().display()),
            service: Some("billing".into()),
            format: "logfmt".into(),
        };
        source.validate().unwrap();
        assert!(source.files().is_empty());
        let path = dir.path().join("worker-1.log");
        std::fs::write(&path, "level=error msg=\"card declined\" user=7\n").unwrap();
        assert_eq!(source.files(), vec![path.clone()]);
        let mut f = Follower::of(&source, &path, true);
        let got = f.poll().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].service.as_deref(), Some("billing"));
        assert_eq!(got[0].level, Some(LogLevel::Error));
        assert_eq!(got[0].body, "card declined");

        let bad = Source {
            format: "<Date".into(),
            ..source.clone()
        };
        assert!(bad.validate().unwrap_err().starts_with("format:"));
    }
}
