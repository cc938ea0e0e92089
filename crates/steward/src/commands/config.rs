//! `steward config`: inspect the configuration.

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::Invocation;
use crate::Outcome;

/// `steward config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every key's effective value and where it came from (default, file:line,
    /// env VAR, flag).
    ///
    /// --json prints {"file": PATH|null, "keys": {"section.key": {"value": V, "source": S}}}.
    Show,
}

pub fn run(cmd: ConfigCommand, inv: &Invocation) -> anyhow::Result<Outcome> {
    match cmd {
        ConfigCommand::Show => show(inv),
    }
}

fn show(inv: &Invocation) -> anyhow::Result<Outcome> {
    let entries = inv.config.entries();
    if inv.out.json() {
        let mut keys = Map::new();
        for (key, value, source) in &entries {
            keys.insert(
                key.clone(),
                json!({ "value": value, "source": source.to_string() }),
            );
        }
        let file = inv.config.file.as_ref().map(|p| p.display().to_string());
        inv.out
            .json_document(&json!({ "file": file, "keys": Value::Object(keys) }))?;
    } else {
        let rows = entries
            .iter()
            .map(|(key, value, source)| vec![key.clone(), value.to_string(), source.to_string()])
            .collect();
        inv.out.table(&["key", "value", "source"], rows)?;
    }
    Ok(Outcome::Success)
}
