//! The only module that writes to stdout. Results are either a readable table for people
//! or JSON for machines (`--json`); colour appears only on a terminal and never when
//! `NO_COLOR` is set (anstream decides both).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

/// Where and how a command prints its results.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

const HEADER: Style = Style::new().bold();
const ERROR: Style = AnsiColor::Red.on_default().bold();

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    /// True when the user asked for JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints one JSON document.
    pub fn json_document(&self, value: &impl Serialize) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
        Ok(())
    }

    /// Prints one JSON value on a line of its own (JSON lines).
    pub fn json_line(&self, value: &impl Serialize) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, value)?;
        writeln!(out)?;
        Ok(())
    }

    /// Prints a line of text.
    pub fn line(&self, text: &str) -> anyhow::Result<()> {
        let mut out = anstream::stdout().lock();
        writeln!(out, "{text}")?;
        Ok(())
    }

    /// Prints rows under a bold header, columns padded to the widest cell; the last
    /// column is not padded so long text does not leave trailing spaces.
    pub fn table(&self, header: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = anstream::stdout().lock();
        let last = header.len().saturating_sub(1);
        let render = |cells: &mut dyn Iterator<Item = &str>| {
            let mut line = String::new();
            for (i, cell) in cells.enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i < last {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line
        };
        let head = render(&mut header.iter().copied());
        writeln!(out, "{HEADER}{head}{HEADER:#}")?;
        for row in &rows {
            writeln!(out, "{}", render(&mut row.iter().map(String::as_str)))?;
        }
        Ok(())
    }
}

/// Prints an error and its chain of causes to stderr: `error: outer: inner`.
pub fn error(err: &anyhow::Error) {
    let mut out = anstream::stderr().lock();
    let _ = writeln!(out, "{ERROR}error:{ERROR:#} {err:#}");
}

/// Whether diagnostics on stderr may be coloured.
pub fn stderr_has_colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}
