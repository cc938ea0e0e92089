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
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            threshold: 0.5,
            horizon: "7d".into(),
            enabled: true,
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
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            listen: "127.0.0.1:8080".into(),
            otlp: "127.0.0.1:4318".into(),
            data_dir: PathBuf::from("steward-data"),
            store: "embedded".into(),
            retention_days: 7,
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
                let source = self
                    .sources
                    .get(&dotted)
                    .cloned()
                    .unwrap_or(Source::Default);
                out.push((dotted, value.clone(), source));
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
    for (section, keys) in spanned {
        for (key, value) in keys {
            let line = line_of(text, value.span().start);
            set(table, &section, &key, value.into_inner());
            sources.insert(
                format!("{section}.{key}"),
                Source::File {
                    path: path.to_path_buf(),
                    line,
                },
            );
        }
    }
    Ok(())
}

/// The dotted `section.key` assigned on a 1-based line, found by the nearest
/// `[section]` header above it. Serde's type errors do not name the key; this does.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let (key, _) = lines.get(line.checked_sub(1)?)?.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let section = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        l.strip_prefix('[')?.strip_suffix(']').map(str::trim)
    });
    Some(match section {
        Some(section) => format!("{section}.{key}"),
        None => key.to_string(),
    })
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
}
