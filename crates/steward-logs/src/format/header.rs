//! Loghub header formats: `<Date> <Time> <Level> <Component>: <Content>`.
//!
//! The convention is Loghub's own: `<Name>` is a field, everything else is literal
//! regular-expression text (so `\[` is a bracket and `(...)?` an optional part), a run
//! of spaces matches a run of whitespace, and the last field takes the rest of the line.

use std::collections::BTreeMap;

use regex::Regex;
use steward_core::LogRecord;

use super::FormatError;

/// A compiled header format.
#[derive(Debug, Clone)]
pub struct HeaderFormat {
    spec: String,
    regex: Regex,
    fields: Vec<String>,
}

impl HeaderFormat {
    /// Compiles a format such as `<Date> <Time> <Level> <Component>: <Content>`.
    pub fn new(spec: &str) -> Result<HeaderFormat, FormatError> {
        let mut pattern = String::from("^");
        let mut fields = Vec::new();
        let mut rest = spec;
        while let Some(open) = rest.find('<') {
            let Some(close_rel) = rest[open..].find('>') else {
                break;
            };
            let close = open + close_rel;
            let name = &rest[open + 1..close];
            let literal = &rest[..open];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                // Not a field: keep it as literal text.
                pattern.push_str(&literal_to_regex(&rest[..=close]));
                rest = &rest[close + 1..];
                continue;
            }
            pattern.push_str(&literal_to_regex(literal));
            let group = format!("f{}", fields.len());
            pattern.push_str(&format!("(?P<{group}>.*?)"));
            fields.push(name.to_string());
            rest = &rest[close + 1..];
        }
        pattern.push_str(&literal_to_regex(rest));
        pattern.push('$');
        if fields.is_empty() {
            return Err(FormatError::NoFields(spec.to_string()));
        }
        let regex = Regex::new(&pattern).map_err(|e| FormatError::BadHeader {
            spec: spec.to_string(),
            reason: e.to_string(),
        })?;
        Ok(HeaderFormat {
            spec: spec.to_string(),
            regex,
            fields,
        })
    }

    /// The format as written.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// The field names in order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Splits a line into its fields, or `None` when the line does not match.
    pub fn split<'a>(&self, line: &'a str) -> Option<Vec<(&str, &'a str)>> {
        let caps = self.regex.captures(line)?;
        Some(
            self.fields
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let group = format!("f{i}");
                    (name.as_str(), caps.name(&group).map_or("", |m| m.as_str()))
                })
                .collect(),
        )
    }

    /// Parses a line into a record: `Content` (or the last field) is the body,
    /// `Level` the level, the other fields attributes.
    pub fn parse(&self, line: &str) -> Option<LogRecord> {
        let fields = self.split(line)?;
        let content_index = fields
            .iter()
            .position(|(name, _)| name.eq_ignore_ascii_case("content"))
            .unwrap_or(fields.len().saturating_sub(1));
        let mut record = LogRecord::default();
        let mut attributes = BTreeMap::new();
        for (i, (name, value)) in fields.into_iter().enumerate() {
            if i == content_index {
                record.body = value.to_string();
            } else {
                if name.eq_ignore_ascii_case("level") {
                    record.level = value.parse().ok();
                }
                attributes.insert(name.to_string(), value.to_string());
            }
        }
        record.attributes = attributes;
        Some(record)
    }
}

/// Literal format text as regex text: spaces become `\s+`; the rest is Loghub's regex.
fn literal_to_regex(literal: &str) -> String {
    let mut out = String::new();
    let mut in_space = false;
    for c in literal.chars() {
        if c == ' ' {
            if !in_space {
                out.push_str(r"\s+");
            }
            in_space = true;
        } else {
            in_space = false;
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_loghub_lines() {
        let f =
            HeaderFormat::new(r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>")
                .unwrap();
        let r = f
            .parse("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname=")
            .unwrap();
        assert_eq!(r.body, "authentication failure; logname=");
        assert_eq!(r.attributes["PID"], "19939");
        let r = f
            .parse("Jun 14 15:16:01 combo kernel: Linux version")
            .unwrap();
        assert_eq!(r.body, "Linux version");
        assert_eq!(r.attributes["Component"], "kernel");
    }

    #[test]
    fn whitespace_runs_and_levels() {
        let f =
            HeaderFormat::new(r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>")
                .unwrap();
        let r = f
            .parse("2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200")
            .unwrap();
        assert_eq!(r.body, "Notification time out: 3200");
        assert_eq!(r.level, Some(steward_core::LogLevel::Info));
        assert!(f.parse("no header here").is_none());
    }

    #[test]
    fn rejects_formats_without_fields_or_bad_regex() {
        assert!(HeaderFormat::new("plain").is_err());
        assert!(HeaderFormat::new("<A> (<B>").is_err());
    }
}
