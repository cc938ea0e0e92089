//! Reading log lines into [`LogRecord`]s.
//!
//! A [`Format`] names how lines are written: a Loghub header format, JSON lines,
//! logfmt, syslog (RFC 3164 or 5424), an nginx/Apache access log, raw text, or `auto`,
//! which [`detect`]s one from the first lines. A [`LineParser`] applies it. A line that
//! does not match the format is not dropped: it becomes a record whose body is the
//! whole line, and [`ParseStats::unmatched`] counts it.

mod header;
mod pattern;
mod structured;
mod syslog;
mod time;

use std::fmt;
use std::str::FromStr;

use steward_core::LogRecord;

pub use header::HeaderFormat;

/// Why a format could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A header format without any `<Field>`.
    #[error(
        "header format {0:?} has no <Field>; expected e.g. \"<Date> <Time> <Level>: <Content>\" or one of auto, json, logfmt, syslog, access, raw"
    )]
    NoFields(String),
    /// A header format whose literal text is not a valid regular expression.
    #[error("header format {spec:?} is not valid: {reason}")]
    BadHeader {
        /// The format as given.
        spec: String,
        /// What the regular expression compiler said.
        reason: String,
    },
}

/// How log lines are written.
#[derive(Debug, Clone)]
pub enum Format {
    /// Decide from the first lines ([`detect`]).
    Auto,
    /// The whole line is the message.
    Raw,
    /// One JSON object per line.
    Json,
    /// `key=value` pairs.
    Logfmt,
    /// RFC 5424, else RFC 3164.
    Syslog,
    /// nginx/Apache combined or common access log.
    Access,
    /// A Loghub header format.
    Header(HeaderFormat),
}

impl Format {
    /// The format's name as the command line takes it.
    pub fn name(&self) -> &str {
        match self {
            Format::Auto => "auto",
            Format::Raw => "raw",
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::Syslog => "syslog",
            Format::Access => "access",
            Format::Header(h) => h.spec(),
        }
    }

    /// Parses one line, or `None` when it does not match.
    pub fn parse_line(&self, line: &str) -> Option<LogRecord> {
        match self {
            Format::Auto | Format::Raw => Some(LogRecord::from_body(line)),
            Format::Json => structured::parse_json(line),
            Format::Logfmt => structured::parse_logfmt(line),
            Format::Syslog => syslog::parse_5424(line).or_else(|| syslog::parse_3164(line)),
            Format::Access => syslog::parse_access(line),
            Format::Header(h) => h.parse(line),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "auto" | "" => Format::Auto,
            "raw" | "text" => Format::Raw,
            "json" | "jsonl" => Format::Json,
            "logfmt" => Format::Logfmt,
            "syslog" => Format::Syslog,
            "access" | "nginx" | "apache" | "combined" | "common" => Format::Access,
            spec => Format::Header(HeaderFormat::new(spec)?),
        })
    }
}

/// Picks the format that matches most of the sample's non-empty lines (at least half),
/// trying the strictest first; raw when none does.
pub fn detect(sample: &[&str]) -> Format {
    let lines: Vec<&str> = sample
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return Format::Raw;
    }
    let candidates = [Format::Json, Format::Access, Format::Syslog, Format::Logfmt];
    let mut best: Option<(usize, Format)> = None;
    for candidate in candidates {
        let hits = lines
            .iter()
            .filter(|l| candidate.parse_line(l).is_some())
            .count();
        if hits * 2 >= lines.len() && hits > 0 && best.as_ref().is_none_or(|(b, _)| hits > *b) {
            best = Some((hits, candidate));
        }
    }
    best.map_or(Format::Raw, |(_, f)| f)
}

/// Counts of what a [`LineParser`] has read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParseStats {
    /// Lines read.
    pub lines: u64,
    /// Lines that did not match the format and were kept whole as the body.
    pub unmatched: u64,
}

/// Applies a format line by line and counts what did not match.
#[derive(Debug, Clone)]
pub struct LineParser {
    format: Format,
    stats: ParseStats,
}

impl LineParser {
    /// A parser for `format`; `auto` is settled by the first non-empty line (call
    /// [`detect`] on more lines first for a better guess).
    pub fn new(format: Format) -> LineParser {
        LineParser {
            format,
            stats: ParseStats::default(),
        }
    }

    /// The format in use.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// What has been read so far.
    pub fn stats(&self) -> ParseStats {
        self.stats
    }

    /// Parses one line (without its newline). Never fails: a line the format does not
    /// match is a record with the whole line as body.
    pub fn parse(&mut self, line: &str) -> LogRecord {
        if matches!(self.format, Format::Auto) && !line.trim().is_empty() {
            self.format = detect(&[line]);
        }
        self.stats.lines += 1;
        match self.format.parse_line(line) {
            Some(record) => record,
            None => {
                self.stats.unmatched += 1;
                LogRecord::from_body(line)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats() {
        assert!(matches!(
            detect(&[r#"{"msg":"a"}"#, r#"{"msg":"b"}"#]),
            Format::Json
        ));
        assert!(matches!(detect(&["a=1 b=2", "a=3 b=4"]), Format::Logfmt));
        assert!(matches!(
            detect(&["<13>1 2020-01-01T00:00:00Z h a - - - x"]),
            Format::Syslog
        ));
        assert!(matches!(
            detect(&["Jun  9 06:06:20 combo kernel: hi"]),
            Format::Syslog
        ));
        assert!(matches!(
            detect(&[r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#]),
            Format::Access
        ));
        assert!(matches!(detect(&["plain text", "more"]), Format::Raw));
        assert!(matches!(detect(&[]), Format::Raw));
    }

    #[test]
    fn unmatched_lines_are_kept_and_counted() {
        let mut p = LineParser::new("<Level>: <Content>".parse().unwrap());
        assert_eq!(p.parse("INFO: started").body, "started");
        assert_eq!(p.parse("garbage line").body, "garbage line");
        assert_eq!(
            p.stats(),
            ParseStats {
                lines: 2,
                unmatched: 1
            }
        );
    }

    #[test]
    fn names_parse() {
        for name in ["auto", "raw", "json", "logfmt", "syslog", "access"] {
            assert_eq!(name.parse::<Format>().unwrap().name(), name);
        }
        assert!("nonsense".parse::<Format>().is_err());
    }
}
