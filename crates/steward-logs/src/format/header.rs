//! Loghub header formats: `<Date> <Time> <Level> <Component>: <Content>`.
//!
//! The convention is Loghub's own: `<Name>` is a field, everything else is literal
//! regular-expression text (so `\[` is a bracket and `(...)?` an optional part), a run
//! of spaces matches a run of whitespace, and the last field takes the rest of the line.
//! Formats are run by the compiled matcher of [`super::pattern`]; the regular
//! expression is the fallback for what it leaves undecided. Date and time fields become
//! the record's timestamp where they say enough ([`super::time::parse_header_stamp`]).

use std::collections::BTreeMap;

use regex::Regex;
use steward_core::{LogRecord, TimestampMs};

use super::FormatError;
use super::pattern::{Pattern, Piece};
use super::time;

/// A compiled header format.
#[derive(Debug, Clone)]
pub struct HeaderFormat {
    spec: String,
    regex: Regex,
    /// The regex's capture group of each field (the format's own groups count too).
    groups: Vec<usize>,
    pattern: Option<Pattern>,
    fields: Vec<String>,
    /// Which field is the message: `Content`, else the last.
    content: usize,
    /// The fields that carry the date and time, in format order.
    stamp_fields: Vec<usize>,
}

impl HeaderFormat {
    /// Compiles a format such as `<Date> <Time> <Level> <Component>: <Content>`.
    pub fn new(spec: &str) -> Result<HeaderFormat, FormatError> {
        let mut pattern = String::from("^");
        let mut pieces = Vec::new();
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
                pieces.push(Piece::Text(&rest[..=close]));
                rest = &rest[close + 1..];
                continue;
            }
            pattern.push_str(&literal_to_regex(literal));
            pieces.push(Piece::Text(literal));
            let group = format!("f{}", fields.len());
            pattern.push_str(&format!("(?P<{group}>.*?)"));
            pieces.push(Piece::Field);
            fields.push(name.to_string());
            rest = &rest[close + 1..];
        }
        pattern.push_str(&literal_to_regex(rest));
        pieces.push(Piece::Text(rest));
        pattern.push('$');
        if fields.is_empty() {
            return Err(FormatError::NoFields(spec.to_string()));
        }
        let regex = Regex::new(&pattern).map_err(|e| FormatError::BadHeader {
            spec: spec.to_string(),
            reason: e.to_string(),
        })?;
        let groups = (0..fields.len())
            .map(|i| {
                let name = format!("f{i}");
                regex
                    .capture_names()
                    .position(|n| n == Some(name.as_str()))
                    .unwrap_or(0)
            })
            .collect();
        let content = fields
            .iter()
            .position(|name| name.eq_ignore_ascii_case("content"))
            .unwrap_or(fields.len() - 1);
        let stamp_fields = fields
            .iter()
            .enumerate()
            .filter(|(_, name)| time::is_stamp_field(name))
            .map(|(i, _)| i)
            .collect();
        Ok(HeaderFormat {
            spec: spec.to_string(),
            regex,
            groups,
            pattern: Pattern::compile(&pieces),
            fields,
            content,
            stamp_fields,
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

    /// Whether the format runs on the compiled matcher (else on its regular expression
    /// only: its literal text uses regex syntax beyond escapes, spaces and `(...)?`).
    pub fn is_compiled(&self) -> bool {
        self.pattern.is_some()
    }

    /// The byte range of every field in `line`, or `None` when the line does not match.
    fn spans(&self, line: &str) -> Option<Vec<(usize, usize)>> {
        let mut spans = Vec::with_capacity(self.fields.len());
        if let Some(pattern) = &self.pattern {
            match pattern.split(line, &mut spans) {
                Ok(true) => return Some(spans),
                Ok(false) => return None,
                Err(_) => {}
            }
        }
        spans.clear();
        spans.extend(self.regex_spans(line)?);
        Some(spans)
    }

    /// The byte range of every field as the regular expression finds it.
    fn regex_spans(&self, line: &str) -> Option<Vec<(usize, usize)>> {
        let caps = self.regex.captures(line)?;
        Some(
            self.groups
                .iter()
                .map(|&g| caps.get(g).map_or((0, 0), |m| (m.start(), m.end())))
                .collect(),
        )
    }

    /// Splits a line into its fields, or `None` when the line does not match.
    pub fn split<'a>(&self, line: &'a str) -> Option<Vec<(&str, &'a str)>> {
        let spans = self.spans(line)?;
        Some(
            self.fields
                .iter()
                .zip(spans)
                .map(|(name, (start, end))| (name.as_str(), &line[start..end]))
                .collect(),
        )
    }

    /// The message part of a line (the `Content` field, else the last), or `None` when
    /// the line does not match.
    pub fn content<'a>(&self, line: &'a str) -> Option<&'a str> {
        let spans = self.spans(line)?;
        let (start, end) = spans.get(self.content).copied()?;
        Some(&line[start..end])
    }

    /// [`HeaderFormat::content`] by the regular expression alone: the speed anchor of the
    /// `header_throughput` example, not for other use.
    #[doc(hidden)]
    pub fn content_by_regex<'a>(&self, line: &'a str) -> Option<&'a str> {
        let (start, end) = self.regex_spans(line)?.get(self.content).copied()?;
        Some(&line[start..end])
    }

    /// The time the date and time fields of a split line say, if they say enough.
    fn timestamp(&self, line: &str, spans: &[(usize, usize)]) -> Option<TimestampMs> {
        let named: Vec<(&str, &str)> = self
            .stamp_fields
            .iter()
            .filter_map(|&i| {
                let (start, end) = *spans.get(i)?;
                Some((self.fields[i].as_str(), &line[start..end]))
            })
            .collect();
        time::parse_header_stamp(&named)
    }

    /// Parses a line into a record: `Content` (or the last field) is the body,
    /// `Level` the level, date and time fields the timestamp where they are complete,
    /// the other fields attributes.
    pub fn parse(&self, line: &str) -> Option<LogRecord> {
        let spans = self.spans(line)?;
        let mut record = LogRecord::default();
        let mut attributes = BTreeMap::new();
        for (i, (name, &(start, end))) in self.fields.iter().zip(&spans).enumerate() {
            let value = &line[start..end];
            if i == self.content {
                record.body = value.to_string();
            } else {
                if name.eq_ignore_ascii_case("level") {
                    record.level = value.parse().ok();
                }
                attributes.insert(name.clone(), value.to_string());
            }
        }
        record.timestamp_ms = self.timestamp(line, &spans);
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

    /// The compiled matcher decides like the regex it replaces (or leaves the line to it).
    fn assert_same(f: &HeaderFormat, line: &str) {
        let pattern = f.pattern.as_ref().expect("format compiles");
        let mut spans = Vec::new();
        let want = f.regex_spans(line);
        match pattern.split(line, &mut spans) {
            Ok(true) => assert_eq!(Some(spans), want, "{:?} on {line:?}", f.spec),
            Ok(false) => assert_eq!(None, want, "{:?} on {line:?}", f.spec),
            Err(_) => {}
        }
    }

    /// Loghub's formats and lines written like theirs, plus near misses.
    const CASES: &[(&str, &[&str])] = &[
        (
            "<Date> <Time> <Pid> <Level> <Component>: <Content>",
            &[
                "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_1 terminating",
                "081109 203615 148 INFO dfs.DataNode: a: b: c",
                "081109  203615\t148 INFO x:",
                "081109\u{a0}203615\u{b}148\u{2003} INFO x: y",
                "0811é09 2036 15 148 INFO ü: y",
                "081109 203615 148 INFO",
                "",
            ],
        ),
        (
            r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
            &[
                "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster",
                "2015-10-18 18:01:47,978 INFO [IPC Server handler 2 on 62270] a.b: [x] y: z",
                "2015-10-18 18:01:47,978 INFO main a.b: c",
            ],
        ),
        (
            r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
            &[
                "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200",
                "2015-07-29 17:41:44,747 - WARN  [SendWorker:188978561024:QuorumCnxManager$SendWorker@679] - Interrupted while waiting",
                "2015-07-29 17:41:44,747 - WARN [a:b@1] - x",
                "2015-07-29 17:41:44,747 - WARN  [a:b@1] -",
            ],
        ),
        (
            "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
            &[
                "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected",
                "- 1117838570 2005.06.03 R02 2005-06-03-15.42.50.675872 R02 RAS KERNEL INFO",
            ],
        ),
        (
            r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
            &[
                "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0",
                "Jun 14 15:16:01 combo kernel: Linux version 2.6.5-1.358",
                "Jun  9 06:06:20 combo syslogd 1.4.1: restart.",
                "Jun 14 15:16:01 combo su(pam_unix)[1]",
                "Jun 14 15:16:01 combo a[1]: [2]: x",
            ],
        ),
        (
            r"\[<Time>\] \[<Level>\] <Content>",
            &[
                "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
                "[Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] Directory index forbidden",
                "Sun Dec 04 04:47:44 2005 [error] x",
            ],
        ),
        (
            r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
            &[
                "Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for ns.example.com [173.234.31.186] failed",
                "Dec 10 06:55:46 LabSZ sshd[24200] x",
            ],
        ),
        (
            r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
            &[
                "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [req-38101a0b 113d3a9 - - -] 10.11.10.1 \"GET /v2/servers/detail HTTP/1.1\" status: 200",
                "nova-compute.log 2017-05-16 00:00:04.500 2931 INFO nova.compute.manager [-] [instance: b9000564] VM Started",
            ],
        ),
        (
            "<A>(x<B>)?(y<C>)?z<D>",
            &["1xyz2", "1x2yz3", "1y3z4", "1xx2y3z4", "z", "xyz"],
        ),
        (
            "<A>((<B>)?-<C>)?:<D>",
            &["a-b:c", "ab-c:d", ":d", "a:b-c:d", "a-:"],
        ),
    ];

    #[test]
    fn the_compiled_matcher_splits_like_the_regex() {
        for (spec, lines) in CASES {
            let f = HeaderFormat::new(spec).unwrap();
            assert!(f.is_compiled(), "{spec}");
            for line in *lines {
                assert_same(&f, line);
            }
            // Every prefix and a few mutations of each line: near misses decide alike.
            for line in *lines {
                for (i, _) in line.char_indices() {
                    assert_same(&f, &line[..i]);
                    let mut spaced = line.to_string();
                    spaced.insert(i, ' ');
                    assert_same(&f, &spaced);
                }
            }
        }
    }

    #[test]
    fn formats_beyond_the_subset_use_the_regex() {
        let f = HeaderFormat::new(r"<A>\s+<B>").unwrap();
        assert!(!f.is_compiled());
        assert_eq!(f.parse("x \t y").unwrap().body, "y");
        let f = HeaderFormat::new("<A> (a|b) <B>").unwrap();
        assert!(!f.is_compiled());
        assert_eq!(f.parse("x b y").unwrap().body, "y");
    }

    #[test]
    fn pathological_lines_fall_back_and_stay_correct() {
        // Every field end is tried at every colon: the step budget runs out and the
        // regex decides.
        let f = HeaderFormat::new("<A>:<B>:<C>:<D>:<E>!<F>").unwrap();
        let line = ":".repeat(300);
        assert!(f.parse(&line).is_none());
        let ok = format!("{}!end", ":".repeat(300));
        assert_eq!(f.parse(&ok).unwrap().body, "end");
    }

    #[test]
    fn date_and_time_fields_become_the_timestamp() {
        let cases: &[(&str, &str, Option<i64>)] = &[
            (
                "<Date> <Time> <Pid> <Level> <Component>: <Content>",
                "081109 203615 148 INFO dfs.DataNode: x",
                Some(1_226_262_975_000),
            ),
            (
                r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
                "2015-10-18 18:01:47,978 INFO [main] a.B: x",
                Some(1_445_191_307_978),
            ),
            (
                "<Date> <Time> <Level> <Component>: <Content>",
                "17/06/09 20:10:40 INFO executor.Backend: x",
                Some(1_497_039_040_000),
            ),
            (
                "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
                "- 1117838570 2005.06.03 R02 2005-06-03-15.42.50.675872 R02 RAS KERNEL INFO x",
                Some(1_117_838_570_000),
            ),
            (
                "<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
                "134681 node-246 unix.hw state_change.unavailable 1077804742 1 x",
                Some(1_077_804_742_000),
            ),
            (
                r"\[<Time>\] \[<Level>\] <Content>",
                "[Sun Dec 04 04:47:44 2005] [notice] x",
                Some(1_133_671_664_000),
            ),
            (
                r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
                "nova.log 2017-05-16 00:00:00.008 25746 INFO nova.x [req] x",
                Some(1_494_892_800_008),
            ),
            (
                r"<Date> <Time> <Level> <Component>: <Content>",
                "2005-06-03-15.42.50.675872 x INFO c: x",
                Some(1_117_813_370_675),
            ),
            // No year: no timestamp is guessed.
            (
                r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
                "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: x",
                None,
            ),
            (
                r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
                "Dec 10 06:55:46 LabSZ sshd[24200]: x",
                None,
            ),
            // Out-of-range parts are not a time.
            ("<Date> <Time> <Content>", "2015-13-18 18:01:47 x", None),
            ("<Date> <Time> <Content>", "2015-10-18 25:01:47 x", None),
            ("<Time> <Content>", "12345 x", None),
        ];
        for (spec, line, want) in cases {
            let f = HeaderFormat::new(spec).unwrap();
            let record = f.parse(line).unwrap();
            assert_eq!(record.timestamp_ms, *want, "{spec} on {line}");
        }
    }

    #[test]
    fn rejects_formats_without_fields_or_bad_regex() {
        assert!(HeaderFormat::new("plain").is_err());
        assert!(HeaderFormat::new("<A> (<B>").is_err());
    }
}
