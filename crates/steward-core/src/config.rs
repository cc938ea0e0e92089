//! The one configuration every command reads.
//!
//! Values come from four layers, each overriding the one before: built-in defaults, the
//! TOML file (`steward.toml` in the working directory, or `--config PATH`), environment
//! variables named `STEWARD_<SECTION>_<KEY>`, and command-line flags. [`LoadedConfig`]
//! remembers which layer set each key, so `steward config show` can say.
//!
//! A key no section knows, or a value of the wrong type, is an error that names the key
//! and where it came from (file and line, or the variable's name): a typo in a config
//! must never be silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name looked for in the working directory when no `--config` is given.
pub const DEFAULT_FILE_NAME: &str = "steward.toml";

/// The prefix of every environment variable that sets a configuration key.
pub const ENV_PREFIX: &str = "STEWARD_";

/// Every section of the configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[logs]`: reading log files and mining templates.
    pub logs: LogsConfig,
    /// `[detect]`: anomaly detection and forecasting.
    pub detect: DetectConfig,
    /// `[watch]`: the `steward up` service.
    pub watch: WatchConfig,
}

/// `[logs]`: how log lines are read and mined into templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConfig {
    /// The line format: `auto`, `json`, `logfmt`, `syslog`, `access`, `raw`, or a
    /// Loghub header format such as `<Date> <Time> <Level> <Component>: <Content>`.
    pub format: String,
    /// The most templates kept in memory; the least recently seen is evicted past it.
    pub max_templates: usize,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            format: "auto".into(),
            max_templates: 50_000,
        }
    }
}

/// `[detect]`: how anomalies are flagged and resources forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// A point whose anomaly score reaches this is reported, in `[0, 1]`.
    pub threshold: f64,
    /// How far ahead a resource may run out before steward warns, e.g. `7d`, `12h`.
    pub horizon: String,
    /// Whether `steward up` runs the detectors and forecasts on every series. Off
    /// (`STEWARD_DETECT_ENABLED=false`), it only stores and serves them.
    pub enabled: bool,
    /// A series with no point for this long (in data time) has its detector state moved
    /// out of memory into the store, and back on its next point, e.g. `15m`, `2h`.
    pub idle_evict: String,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            threshold: 0.5,
            horizon: "7d".into(),
            enabled: true,
            idle_evict: "15m".into(),
        }
    }
}

/// `[watch]`: where the service listens and keeps its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// The address of the dashboard and the HTTP API.
    pub listen: String,
    /// The address of the OTLP/HTTP receiver.
    pub otlp: String,
    /// Where the embedded store keeps its files.
    pub data_dir: PathBuf,
    /// `embedded`, or a `postgres://` URL.
    pub store: String,
    /// How many days raw log lines are kept.
    pub retention_days: u32,
    /// How often scrape targets without their own `interval` are scraped, e.g. `15s`.
    #[serde(deserialize_with = "duration_text")]
    pub scrape_interval: String,
    /// `[[watch.scrape]]`: Prometheus targets scraped for metrics.
    pub scrape: Vec<ScrapeConfig>,
    /// `[[watch.tail]]`: log files followed.
    pub tail: Vec<TailConfig>,
    /// `[[watch.webhook]]`: where incident events are POSTed.
    pub webhook: Vec<WebhookConfig>,
}

/// `[[watch.scrape]]`: one Prometheus target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The page, `http(s)://HOST[:PORT]/metrics`.
    #[serde(deserialize_with = "http_url")]
    pub url: String,
    /// The `job` label added to every sample (as Prometheus does); none when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// How often it is scraped; `watch.scrape_interval` when unset.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_duration_text"
    )]
    pub interval: Option<String>,
    /// Labels added to every sample (a label the page sets wins).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `[[watch.tail]]`: one log file, or every file a glob matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailConfig {
    /// The file, or a glob such as `/var/log/app/*.log` (new matches are picked up).
    pub path: String,
    /// The service its records belong to; the file's name without extension when unset
    /// (a record that names its own service keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// How its lines are written, as `logs.format`: `auto`, `json`, `logfmt`, `syslog`,
    /// `access`, `raw`, or a header format.
    #[serde(default = "auto_format")]
    pub format: String,
}

fn auto_format() -> String {
    "auto".into()
}

/// The payload shape of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookKind {
    /// `{"event": ..., "incident": {...}}`.
    #[default]
    Json,
    /// Slack's incoming-webhook shape, `{"text": ...}`.
    Slack,
}

/// `[[watch.webhook]]`: one alert sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST, `http://` or `https://`.
    #[serde(deserialize_with = "http_url")]
    pub url: String,
    /// `json` (the default) or `slack`.
    #[serde(default)]
    pub kind: WebhookKind,
    /// Only incidents at least this severe are sent: `info`, `low` (the default),
    /// `medium`, `high` or `critical`.
    #[serde(default = "low_severity")]
    pub min_severity: crate::Severity,
    /// A PEM file of extra CA certificates trusted for this `https://` URL (for a
    /// receiver behind a private CA), besides the built-in public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

fn low_severity() -> crate::Severity {
    crate::Severity::Low
}

/// Parses `1500ms`, `90s`, `15m`, `12h`, `7d`, `2w` (or plain seconds) into
/// milliseconds; `None` when it is not a positive duration.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit_ms = match unit.trim() {
        "" | "s" => 1_000.0,
        "ms" => 1.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        "w" => 7.0 * 86_400_000.0,
        _ => return None,
    };
    let ms = n * unit_ms;
    #[allow(clippy::cast_possible_truncation)]
    (ms.is_finite() && (1.0..9e15).contains(&ms)).then_some(ms as i64)
}

/// A duration key: kept as written (so `config show` prints it so), checked here so a
/// bad one is reported with its file and line.
fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    match parse_duration_ms(&text) {
        Some(_) => Ok(text),
        None => Err(serde::de::Error::custom(format!(
            "invalid duration {text:?}: expected e.g. 500ms, 15s, 5m, 1h"
        ))),
    }
}

fn optional_duration_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    duration_text(d).map(Some)
}

/// A URL key: `http://HOST...` or `https://HOST...`, checked where it is read.
fn http_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    let host = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) => Ok(text),
        _ => Err(serde::de::Error::custom(format!(
            "invalid URL {text:?}: expected http://HOST[:PORT]/PATH or https://..."
        ))),
    }
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            listen: "127.0.0.1:8080".into(),
            otlp: "127.0.0.1:4318".into(),
            data_dir: PathBuf::from("steward-data"),
            store: "embedded".into(),
            retention_days: 7,
            scrape_interval: "15s".into(),
            scrape: Vec::new(),
            tail: Vec::new(),
            webhook: Vec::new(),
        }
    }
}

/// Which layer set a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// The built-in default.
    Default,
    /// A line of the configuration file.
    File {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the key.
        line: usize,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// A command-line flag.
    Flag {
        /// The flag as given, e.g. `--listen` or `--set`.
        flag: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Env { var } => write!(f, "env {var}"),
            Source::Flag { flag } => write!(f, "flag {flag}"),
        }
    }
}

/// What went wrong reading the configuration. Each names the key and its source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or of the wrong type.
    #[error("{}:{line}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the fault.
        line: usize,
        /// What is wrong, with the key's name.
        message: String,
    },
    /// The layers merged into something that is not a valid configuration. Each layer is
    /// checked on its own first, so this only reports what serde says of the whole.
    #[error("invalid configuration: {message}")]
    Merged {
        /// What serde reported.
        message: String,
    },
    /// An environment variable or flag names no known key, or holds a bad value.
    #[error("{origin}: {message}")]
    Override {
        /// `env STEWARD_...` or `flag --...`.
        origin: Source,
        /// What is wrong, with the key's name.
        message: String,
    },
}

/// One value set from outside the file: an environment variable or a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// `section.key`.
    pub key: String,
    /// The value as text; parsed to the key's type.
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

impl Override {
    /// An override from a command-line flag.
    pub fn flag(flag: &str, key: &str, value: impl Into<String>) -> Override {
        Override {
            key: key.to_string(),
            value: value.into(),
            source: Source::Flag {
                flag: flag.to_string(),
            },
        }
    }

    /// Parses `section.key=value`, the form of `--set`.
    pub fn parse_assignment(flag: &str, assignment: &str) -> Result<Override, ConfigError> {
        let (key, value) = assignment
            .split_once('=')
            .ok_or_else(|| ConfigError::Override {
                origin: Source::Flag {
                    flag: flag.to_string(),
                },
                message: format!("expected SECTION.KEY=VALUE, got {assignment:?}"),
            })?;
        Ok(Override::flag(flag, key.trim(), value))
    }
}

/// The effective configuration and where each key came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The values.
    pub config: Config,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// `section.key` to the layer that set it.
    pub sources: BTreeMap<String, Source>,
}

impl LoadedConfig {
    /// Every key with its value (as TOML) and source, in section order.
    pub fn entries(&self) -> Vec<(String, toml::Value, Source)> {
        let table = to_table(&self.config);
        let mut out = Vec::new();
        for (section, keys) in &table {
            let Some(keys) = keys.as_table() else {
                continue;
            };
            for (key, value) in keys {
                let dotted = format!("{section}.{key}");
                let source_of = |k: &str| {
                    self.sources
                        .get(k)
                        .or_else(|| self.sources.get(&dotted))
                        .cloned()
                        .unwrap_or(Source::Default)
                };
                // A list of tables (`[[watch.scrape]]`) reads best one entry per item.
                match value.as_array() {
                    Some(items) if !items.is_empty() && items.iter().all(toml::Value::is_table) => {
                        for (i, item) in items.iter().enumerate() {
                            let indexed = format!("{dotted}[{i}]");
                            let source = source_of(&indexed);
                            out.push((indexed, item.clone(), source));
                        }
                    }
                    _ => out.push((dotted.clone(), value.clone(), source_of(&dotted))),
                }
            }
        }
        out
    }
}

/// Where to look for configuration.
#[derive(Debug, Clone, Default)]
pub struct ConfigInputs {
    /// `--config PATH`; when `None`, `steward.toml` in `dir` is read if present.
    pub explicit_file: Option<PathBuf>,
    /// The directory searched for `steward.toml`.
    pub dir: PathBuf,
    /// The process environment (only `STEWARD_<SECTION>_<KEY>` variables are read).
    pub env: Vec<(String, String)>,
    /// Flags, applied last.
    pub flags: Vec<Override>,
}

/// Reads the four layers and returns the effective configuration.
pub fn load(inputs: &ConfigInputs) -> Result<LoadedConfig, ConfigError> {
    let mut table = to_table(&Config::default());
    let mut sources = BTreeMap::new();

    let file = match &inputs.explicit_file {
        Some(path) => Some(path.clone()),
        None => {
            let candidate = inputs.dir.join(DEFAULT_FILE_NAME);
            candidate.is_file().then_some(candidate)
        }
    };
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        apply_file(&mut table, &mut sources, path, &text)?;
    }

    for ov in env_overrides(&inputs.env)? {
        apply_override(&mut table, &mut sources, &ov)?;
    }
    for ov in &inputs.flags {
        apply_override(&mut table, &mut sources, ov)?;
    }

    let config: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Merged {
            message: e.message().to_string(),
        })?;
    Ok(LoadedConfig {
        config,
        file,
        sources,
    })
}

fn to_table(config: &Config) -> toml::Table {
    // Serialising plain structs of strings and numbers cannot fail.
    toml::Table::try_from(config).unwrap_or_default()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Checks the whole file against [`Config`] first, so that an unknown key or a wrong
/// type is reported with the file's own line, then merges its keys.
fn apply_file(
    table: &mut toml::Table,
    sources: &mut BTreeMap<String, Source>,
    path: &Path,
    text: &str,
) -> Result<(), ConfigError> {
    let file_error = |e: toml::de::Error| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        let message = e.message().trim();
        ConfigError::File {
            path: path.to_path_buf(),
            line,
            message: match key_at_line(text, line) {
                Some(key) => format!("`{key}`: {message}"),
                None => message.to_string(),
            },
        }
    };
    toml::from_str::<Config>(text).map_err(file_error)?;
    let spanned: BTreeMap<String, BTreeMap<String, toml::Spanned<toml::Value>>> =
        toml::from_str(text).map_err(file_error)?;
    let at = |line: usize| Source::File {
        path: path.to_path_buf(),
        line,
    };
    for (section, keys) in spanned {
        for (key, value) in keys {
            let line = line_of(text, value.span().start);
            let dotted = format!("{section}.{key}");
            // Each `[[section.key]]` item gets the line of its own header.
            let headers = table_array_lines(text, &dotted);
            for (i, header) in headers.iter().enumerate() {
                sources.insert(format!("{dotted}[{i}]"), at(*header));
            }
            let line = headers.first().copied().unwrap_or(line);
            set(table, &section, &key, value.into_inner());
            sources.insert(dotted, at(line));
        }
    }
    Ok(())
}

/// The 1-based lines of every `[[dotted]]` header in the file, in order.
fn table_array_lines(text: &str, dotted: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| table_header(l).is_some_and(|(name, array)| array && name == dotted))
        .map(|(n, _)| n + 1)
        .collect()
}

/// A `[name]` or `[[name]]` header line: the name, and whether it is an array item.
fn table_header(line: &str) -> Option<(String, bool)> {
    let l = line.trim();
    let l = l.split_once('#').map_or(l, |(before, _)| before).trim();
    if let Some(inner) = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
        return Some((inner.replace(' ', ""), true));
    }
    let inner = l.strip_prefix('[')?.strip_suffix(']')?;
    Some((inner.replace(' ', ""), false))
}

/// The dotted `section.key` assigned on a 1-based line, found by the nearest
/// `[section]` header above it. Serde's type errors do not name the key; this does.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let (key, _) = lines.get(line.checked_sub(1)?)?.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let above = &lines[..line - 1];
    let Some((at, (section, array))) = above
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| table_header(l).map(|h| (i, h)))
    else {
        return Some(key.to_string());
    };
    if !array {
        return Some(format!("{section}.{key}"));
    }
    // An item of a list of tables: say which, `watch.scrape[1].url`.
    let index = above[..at]
        .iter()
        .filter(|l| table_header(l).is_some_and(|(name, a)| a && name == section))
        .count();
    Some(format!("{section}[{index}].{key}"))
}

/// Turns `STEWARD_<SECTION>_<KEY>` variables into overrides. Variables whose second
/// word is not a section (`STEWARD_LOG`, say) belong to something else and are skipped;
/// a known section with an unknown key is an error.
fn env_overrides(env: &[(String, String)]) -> Result<Vec<Override>, ConfigError> {
    let sections = to_table(&Config::default());
    let mut out = Vec::new();
    let mut vars: Vec<_> = env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (var, value) in vars {
        let rest = var[ENV_PREFIX.len()..].to_ascii_lowercase();
        let Some((section, key)) = sections
            .keys()
            .find_map(|s| Some((s.as_str(), rest.strip_prefix(&format!("{s}_"))?)))
        else {
            continue;
        };
        out.push(Override {
            key: format!("{section}.{key}"),
            value: value.clone(),
            source: Source::Env { var: var.clone() },
        });
    }
    Ok(out)
}

fn apply_override(
    table: &mut toml::Table,
    sources: &mut BTreeMap<String, Source>,
    ov: &Override,
) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Override {
        origin: ov.source.clone(),
        message,
    };
    let (section, key) = ov
        .key
        .split_once('.')
        .ok_or_else(|| err(format!("expected SECTION.KEY, got {:?}", ov.key)))?;
    let current = table
        .get(section)
        .and_then(toml::Value::as_table)
        .ok_or_else(|| err(format!("unknown section `{section}`")))?
        .get(key)
        .ok_or_else(|| err(format!("unknown key `{key}` in section `[{section}]`")))?;
    let value = typed_like(current, &ov.value).map_err(|expected| {
        err(format!(
            "invalid value {:?} for `{section}.{key}`: expected {expected}",
            ov.value
        ))
    })?;
    set(table, section, key, value);
    sources.insert(ov.key.clone(), ov.source.clone());
    Ok(())
}

/// Parses `raw` as a value of the same TOML type as `like`, naming the type on failure.
fn typed_like(like: &toml::Value, raw: &str) -> Result<toml::Value, &'static str> {
    let raw = raw.trim();
    match like {
        toml::Value::String(_) => Ok(toml::Value::String(raw.to_string())),
        toml::Value::Integer(_) => raw
            .replace('_', "")
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| "an integer"),
        toml::Value::Float(_) => raw
            .parse::<f64>()
            .map(toml::Value::Float)
            .map_err(|_| "a number"),
        toml::Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err("true or false"),
        },
        toml::Value::Array(_) | toml::Value::Table(_) | toml::Value::Datetime(_) => {
            toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .filter(|v| v.type_str() == like.type_str())
                .ok_or("a TOML value of the same type")
        }
    }
}

fn set(table: &mut toml::Table, section: &str, key: &str, value: toml::Value) {
    if let Some(toml::Value::Table(keys)) = table.get_mut(section) {
        keys.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs_with_file(text: &str) -> (tempfile_like::Dir, ConfigInputs) {
        let dir = tempfile_like::Dir::new();
        std::fs::write(dir.path().join(DEFAULT_FILE_NAME), text).unwrap();
        let inputs = ConfigInputs {
            dir: dir.path().to_path_buf(),
            ..ConfigInputs::default()
        };
        (dir, inputs)
    }

    /// A throwaway directory, so this crate needs no dev-dependency for one test.
    mod tempfile_like {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let p = std::env::temp_dir()
                    .join(format!("steward-core-cfg-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn defaults_need_no_file() {
        let loaded = load(&ConfigInputs::default()).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert!(
            loaded
                .entries()
                .iter()
                .all(|(_, _, s)| *s == Source::Default)
        );
    }

    #[test]
    fn file_then_env_then_flag() {
        let (_dir, mut inputs) =
            inputs_with_file("[watch]\nlisten = \"0.0.0.0:1\"\nretention_days = 3\n");
        inputs.env = vec![("STEWARD_WATCH_RETENTION_DAYS".into(), "5".into())];
        inputs.flags = vec![Override::flag("--listen", "watch.listen", "127.0.0.1:9")];
        let loaded = load(&inputs).unwrap();
        assert_eq!(loaded.config.watch.listen, "127.0.0.1:9");
        assert_eq!(loaded.config.watch.retention_days, 5);
        assert_eq!(
            loaded.sources["watch.retention_days"],
            Source::Env {
                var: "STEWARD_WATCH_RETENTION_DAYS".into()
            }
        );
    }

    #[test]
    fn unknown_file_key_names_key_and_line() {
        let (_dir, inputs) = inputs_with_file("[watch]\nlisten = \"a\"\nlistn = \"b\"\n");
        let err = load(&inputs).unwrap_err().to_string();
        assert!(err.contains("steward.toml:3:"), "{err}");
        assert!(err.contains("listn"), "{err}");
    }

    #[test]
    fn wrong_type_in_env_names_variable() {
        let inputs = ConfigInputs {
            env: vec![("STEWARD_LOGS_MAX_TEMPLATES".into(), "many".into())],
            ..ConfigInputs::default()
        };
        let err = load(&inputs).unwrap_err().to_string();
        assert!(err.contains("STEWARD_LOGS_MAX_TEMPLATES"), "{err}");
        assert!(err.contains("an integer"), "{err}");
    }

    #[test]
    fn unknown_env_key_in_known_section_is_an_error() {
        let inputs = ConfigInputs {
            env: vec![
                ("STEWARD_LOG".into(), "debug".into()),
                ("STEWARD_WATCH_LISTN".into(), "x".into()),
            ],
            ..ConfigInputs::default()
        };
        let err = load(&inputs).unwrap_err().to_string();
        assert!(err.contains("unknown key `listn`"), "{err}");
    }

    const SOURCES: &str = "[watch]\nscrape_interval = \"30s\"\n\n\
        [[watch.scrape]]\nurl = \"http://127.0.0.1:9100/metrics\"\njob = \"node\"\n\
        interval = \"5s\"\nlabels = { env = \"prod\" }\n\n\
        [[watch.scrape]]\nurl = \"https://app.internal/metrics\"\n\n\
        [[watch.tail]]\npath = \"/var/log/app/*.log\"\nservice = \"app\"\nformat = \"json\"\n\n\
        [[watch.webhook]]\nurl = \"https://hooks.slack.com/services/T/B/X\"\nkind = \"slack\"\n\
        min_severity = \"high\"\n";

    #[test]
    fn lists_of_sources_and_sinks_with_their_lines() {
        let (_dir, inputs) = inputs_with_file(SOURCES);
        let loaded = load(&inputs).unwrap();
        let watch = &loaded.config.watch;
        assert_eq!(watch.scrape.len(), 2);
        assert_eq!(watch.scrape[0].job.as_deref(), Some("node"));
        assert_eq!(watch.scrape[0].interval.as_deref(), Some("5s"));
        assert_eq!(watch.scrape[0].labels["env"], "prod");
        assert_eq!(watch.scrape[1].interval, None);
        assert_eq!(watch.tail[0].service.as_deref(), Some("app"));
        assert_eq!(watch.tail[0].format, "json");
        assert_eq!(watch.webhook[0].kind, WebhookKind::Slack);
        assert_eq!(watch.webhook[0].min_severity, crate::Severity::High);
        let entries = loaded.entries();
        let line = |key: &str| match entries.iter().find(|(k, _, _)| k == key) {
            Some((_, _, Source::File { line, .. })) => *line,
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(line("watch.scrape[0]"), 4);
        assert_eq!(line("watch.scrape[1]"), 10);
        assert_eq!(line("watch.tail[0]"), 13);
        assert_eq!(line("watch.webhook[0]"), 18);
        assert_eq!(line("watch.scrape_interval"), 2);
    }

    #[test]
    fn a_fault_inside_a_list_item_names_the_item_key_and_line() {
        let cases = [
            (
                "[[watch.scrape]]\nurl = \"http://a/metrics\"\n[[watch.scrape]]\nurll = \"http://b\"\n",
                4,
                "watch.scrape[1].urll",
            ),
            (
                "[[watch.webhook]]\nurl = \"http://a/\"\nkind = \"teams\"\n",
                3,
                "watch.webhook[0].kind",
            ),
            (
                "[[watch.webhook]]\nurl = \"ftp://a/\"\n",
                2,
                "watch.webhook[0].url",
            ),
            (
                "[[watch.scrape]]\nurl = \"http://a/\"\ninterval = \"often\"\n",
                3,
                "watch.scrape[0].interval",
            ),
            ("[[watch.tail]]\npath = 7\n", 2, "watch.tail[0].path"),
            (
                "[watch]\nscrape_interval = \"0s\"\n",
                2,
                "watch.scrape_interval",
            ),
        ];
        for (text, line, key) in cases {
            let (_dir, inputs) = inputs_with_file(text);
            let err = load(&inputs).unwrap_err().to_string();
            assert!(err.contains(&format!("steward.toml:{line}:")), "{err}");
            assert!(err.contains(key), "{err}");
        }
    }
}
