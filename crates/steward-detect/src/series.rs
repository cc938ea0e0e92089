//! Reading a series from CSV: a `timestamp` column and a value column.

use std::path::{Path, PathBuf};

use steward_core::Sample;

use crate::time::parse_timestamp;

/// What was wrong with a CSV series: each names the file, the 1-based line and the
/// field.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The header has no timestamp column, or not the value column asked for.
    #[error("{}:1: {message}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
    /// A row's field could not be read.
    #[error("{}:{line}: field `{field}`: {message}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The column's name.
        field: String,
        /// What is wrong, with the text found.
        message: String,
    },
    /// The file has a header but no rows.
    #[error("{}: no data rows", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Splits one CSV line into fields, honouring double quotes (`""` is a quote inside).
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

const TIME_NAMES: [&str; 5] = ["timestamp", "time", "ts", "date", "datetime"];

/// Reads a series from CSV text. The timestamp column is the one named `timestamp`
/// (or `time`, `ts`, `date`), else the first; the value column is `column` when given,
/// else the one named `value`, else the first other column. Rows are kept in file order
/// (a clock that steps back is the detector's to cope with); `path` only names the source in errors.
pub fn parse_csv(path: &Path, text: &str, column: Option<&str>) -> Result<Vec<Sample>, CsvError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(CsvError::Empty {
            path: path.to_path_buf(),
        });
    };
    let names = split_fields(header.trim_start_matches('\u{feff}'));
    let header_err = |message: String| CsvError::Header {
        path: path.to_path_buf(),
        message,
    };
    let ts_col = names
        .iter()
        .position(|n| TIME_NAMES.contains(&n.to_ascii_lowercase().as_str()))
        .unwrap_or(0);
    let val_col = match column {
        Some(want) => names
            .iter()
            .position(|n| n == want)
            .ok_or_else(|| header_err(format!("no column `{want}` in header {names:?}")))?,
        None => names
            .iter()
            .position(|n| n.eq_ignore_ascii_case("value"))
            .or_else(|| (0..names.len()).find(|&i| i != ts_col))
            .ok_or_else(|| {
                header_err(format!(
                    "expected a header such as `timestamp,value`, got {names:?}"
                ))
            })?,
    };
    let mut out = Vec::new();
    for (idx, line) in lines {
        let lineno = idx + 1;
        let fields = split_fields(line);
        let field_err = |col: usize, message: String| CsvError::Field {
            path: path.to_path_buf(),
            line: lineno,
            field: names.get(col).cloned().unwrap_or_default(),
            message,
        };
        let get = |col: usize| {
            fields.get(col).ok_or_else(|| {
                field_err(col, format!("missing: the row has {} fields", fields.len()))
            })
        };
        let ts_text = get(ts_col)?;
        let ts = parse_timestamp(ts_text).ok_or_else(|| {
            field_err(
                ts_col,
                format!(
                    "cannot read {ts_text:?} as a timestamp (RFC 3339, YYYY-MM-DD HH:MM:SS, or Unix seconds/ms)"
                ),
            )
        })?;
        let v_text = get(val_col)?;
        let value: f64 = v_text
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| field_err(val_col, format!("cannot read {v_text:?} as a number")))?;
        out.push(Sample::new(ts, value));
    }
    if out.is_empty() {
        return Err(CsvError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// Reads a series from a CSV file; see [`parse_csv`].
pub fn read_csv(path: &Path, column: Option<&str>) -> Result<Vec<Sample>, CsvError> {
    let text = std::fs::read_to_string(path).map_err(|source| CsvError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_csv(path, &text, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_names_bad_fields() {
        let p = Path::new("x.csv");
        let s = parse_csv(
            p,
            "timestamp,value\n2024-01-01 00:00:00,1.5\n2024-01-01 00:05:00,2\n",
            None,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].value, 2.0);
        let e = parse_csv(p, "timestamp,value\n2024-01-01 00:00:00,abc\n", None)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "x.csv:2: field `value`: cannot read \"abc\" as a number");
        let e = parse_csv(p, "timestamp,cpu,mem\nnope,1,2\n", Some("mem"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.csv:2: field `timestamp`"), "{e}");
        let e = parse_csv(p, "timestamp,cpu\n1,2\n", Some("mem"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no column `mem`"), "{e}");
        let s = parse_csv(p, "time,cpu,mem\n1700000000,1,2\n", Some("mem")).unwrap();
        assert_eq!(s[0].value, 2.0);
    }
}
