//! `hookrelay.toml`: the configuration file, layered under the environment and the flags.
//!
//! Precedence, lowest first: built-in defaults, the file, `HOOKRELAY_*` variables, flags. The
//! file needs no schema of its own: its keys are the server's flag names with `_` for `-`
//! (`retry_base` for `--retry-base`), and each value it sets becomes that flag's default before
//! the command line is parsed, so clap still applies the environment and the flags over it and
//! parses every value with the same parser. A key that is not a setting, or a value its parser
//! refuses, stops the start with an error naming the key.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{ArgMatches, Command, parser::ValueSource};

/// The subcommands that read the file: the server and the commands sharing its settings.
const READERS: &[&str] = &["serve", "config", "migrate", "rotate-encryption-key"];

/// Where the file setting keys are looked up: `serve` has every server setting.
const SCHEMA: &str = "serve";

pub const CONFIG_ENV: &str = "HOOKRELAY_CONFIG";

/// The path given by `--config <path>` / `--config=<path>`, else `HOOKRELAY_CONFIG`. Read
/// before clap parses, since the file changes what clap parses with.
pub fn path_from(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV).map(PathBuf::from)
}

/// A parsed file: each setting's id and the value as a flag would spell it.
#[derive(Debug, Clone, Default)]
pub struct FileSettings {
    pub path: PathBuf,
    pub values: Vec<(String, String)>,
}

/// Reads and checks `path` against the settings `command` knows.
pub fn load(path: &Path, command: &Command) -> anyhow::Result<FileSettings> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read configuration file {}: {e}", path.display()))?;
    parse(&text, path, command)
}

/// Parses file `text` (named `path` in errors).
pub fn parse(text: &str, path: &Path, command: &Command) -> anyhow::Result<FileSettings> {
    let shown = path.display();
    let table: toml::Table = toml::from_str(text).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let schema = command
        .find_subcommand(SCHEMA)
        .ok_or_else(|| anyhow::anyhow!("the `{SCHEMA}` command is missing"))?;
    let mut values = Vec::with_capacity(table.len());
    for (key, value) in table {
        let arg = schema
            .get_arguments()
            .chain(command.get_arguments())
            .find(|a| a.get_id() == key.as_str());
        let Some(arg) = arg.filter(|a| a.get_long().is_some() && a.get_id() != "config") else {
            anyhow::bail!("{shown}: `{key}` is not a setting (see hookrelay.example.toml)");
        };
        let raw = flag_text(&value).ok_or_else(|| {
            anyhow::anyhow!("{shown}: `{key}` must be a string, number, boolean or list of them")
        })?;
        // The value goes through the flag's own parser, so the file accepts exactly what the
        // flag does; the error is reworded to name the key, not the flag.
        let long = arg.get_long().unwrap_or(key.as_str()).to_owned();
        Command::new("hookrelay.toml")
            .arg(arg.clone().required(false))
            .try_get_matches_from(["hookrelay.toml".to_owned(), format!("--{long}={raw}")])
            .map_err(|e| {
                let why = e.to_string();
                let why = why
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ");
                anyhow::anyhow!("{shown}: `{key}` = {value}: {why}")
            })?;
        values.push((key, raw));
    }
    Ok(FileSettings {
        path: path.to_owned(),
        values,
    })
}

/// A TOML value as the flag would be written: lists joined with commas.
fn flag_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|v| match v {
                toml::Value::Array(_) | toml::Value::Table(_) => None,
                other => flag_text(other),
            })
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.join(",")),
        toml::Value::Datetime(_) | toml::Value::Table(_) => None,
    }
}

/// `command` with the file's values as the defaults of the commands that read it.
pub fn apply(mut command: Command, file: &FileSettings) -> Command {
    for (key, raw) in &file.values {
        if command.get_arguments().any(|a| a.get_id() == key.as_str()) {
            let raw = raw.clone();
            command = command.mut_arg(key.as_str(), move |a| a.default_value(raw));
            continue;
        }
        for name in READERS {
            let has = command
                .find_subcommand(name)
                .is_some_and(|sc| sc.get_arguments().any(|a| a.get_id() == key.as_str()));
            if has {
                let (key, raw) = (key.clone(), raw.clone());
                command = command.mut_subcommand(*name, move |sc| {
                    sc.mut_arg(key.as_str(), move |a| a.default_value(raw))
                });
            }
        }
    }
    command
}

/// The configuration in effect, as a TOML document a file could hold, each value with where it
/// came from. Secret values (`hide_env_values`) print as `***`.
pub fn describe(
    root: &Command,
    subcommand: &str,
    globals: &ArgMatches,
    file: Option<&FileSettings>,
) -> String {
    let empty = ArgMatches::default();
    let matches = globals.subcommand_matches(subcommand).unwrap_or(&empty);
    let sub_args = root
        .find_subcommand(subcommand)
        .into_iter()
        .flat_map(Command::get_arguments);
    let from_file = |id: &str| file.is_some_and(|f| f.values.iter().any(|(k, _)| k == id));
    let mut out = String::from("# hookrelay: the configuration in effect (secrets hidden)\n");
    match file {
        Some(f) => out.push_str(&format!("# file: {}\n", f.path.display())),
        None => out.push_str("# file: none (give one with --config or HOOKRELAY_CONFIG)\n"),
    }
    let args = root.get_arguments().chain(sub_args).filter(|a| {
        a.get_long().is_some() && !matches!(a.get_id().as_str(), "config" | "help" | "version")
    });
    let mut lines = Vec::new();
    for arg in args {
        let id = arg.get_id().as_str();
        // Root (global) settings live in the root's matches, the rest in the subcommand's.
        let source_matches = if matches.try_get_raw(id).is_ok() {
            matches
        } else {
            globals
        };
        let raw = source_matches.try_get_raw(id).ok().flatten().map(|values| {
            values
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(",")
        });
        let source = match source_matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag".to_owned(),
            Some(ValueSource::EnvVariable) => arg.get_env().map_or("environment".to_owned(), |e| {
                e.to_string_lossy().into_owned()
            }),
            Some(ValueSource::DefaultValue) if from_file(id) => "file".to_owned(),
            _ => "default".to_owned(),
        };
        let value = match raw {
            None => {
                lines.push((format!("# {id} ="), "not set".to_owned()));
                continue;
            }
            Some(_) if arg.is_hide_env_values_set() => "\"***\"".to_owned(),
            Some(raw) => toml_literal(&raw),
        };
        lines.push((format!("{id} = {value}"), source));
    }
    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (line, source) in lines {
        out.push_str(&format!("{line:width$}  # {source}\n"));
    }
    out
}

/// `raw` as TOML: numbers and booleans bare, anything else a quoted string.
fn toml_literal(raw: &str) -> String {
    if raw.parse::<i64>().is_ok() || raw.parse::<f64>().is_ok_and(f64::is_finite) {
        return raw.to_owned();
    }
    if raw == "true" || raw == "false" {
        return raw.to_owned();
    }
    toml::Value::String(raw.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn cli() -> Command {
        crate::cli::Cli::command()
    }

    fn parse_str(text: &str) -> anyhow::Result<FileSettings> {
        parse(text, Path::new("hookrelay.toml"), &cli())
    }

    #[test]
    fn reads_settings_by_flag_name_with_lists_joined() {
        let file = parse_str(
            "listen = \"0.0.0.0:9000\"\nconcurrency = 64\nretry_jitter = 0.2\n\
             allow_private_targets = [\"10.0.0.0/8\", \"127.0.0.0/8\"]\nlog_format = \"json\"\n",
        )
        .unwrap();
        let get = |k: &str| {
            file.values
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("listen"), Some("0.0.0.0:9000"));
        assert_eq!(get("concurrency"), Some("64"));
        assert_eq!(get("retry_jitter"), Some("0.2"));
        assert_eq!(get("allow_private_targets"), Some("10.0.0.0/8,127.0.0.0/8"));
        assert_eq!(get("log_format"), Some("json"));
    }

    #[test]
    fn errors_name_the_key() {
        let err = parse_str("retry_bsae = \"1s\"\n").unwrap_err().to_string();
        assert!(err.contains("`retry_bsae` is not a setting"), "{err}");
        let err = parse_str("retry_base = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`retry_base`"), "{err}");
        let err = parse_str("concurrency = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`concurrency`"), "{err}");
        let err = parse_str("listen = { host = \"x\" }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`listen`"), "{err}");
        let err = parse_str("listen = \n").unwrap_err().to_string();
        assert!(err.contains("hookrelay.toml"), "{err}");
        // `config` itself is not a setting a file can hold.
        assert!(parse_str("config = \"x.toml\"\n").is_err());
    }

    #[test]
    fn finds_the_path_in_flags_before_the_environment() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            path_from(&args(&["hookrelay", "serve", "--config", "a.toml"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            path_from(&args(&["hookrelay", "--config=b.toml", "serve"])),
            Some(PathBuf::from("b.toml"))
        );
    }

    #[test]
    fn the_example_file_is_complete_and_valid() {
        let text = include_str!("../../../hookrelay.example.toml");
        // Every setting is shown commented out with its default; uncommented, they all parse.
        let uncommented: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                l.split_once(" = ").is_some_and(|(key, _)| {
                    !key.is_empty()
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let file = parse_str(&uncommented).unwrap();
        let command = cli();
        let serve = command.find_subcommand(SCHEMA).unwrap();
        for arg in serve.get_arguments().chain(command.get_arguments()) {
            let id = arg.get_id().as_str();
            if arg.get_long().is_none() || matches!(id, "config" | "help" | "version") {
                continue;
            }
            assert!(
                file.values.iter().any(|(k, _)| k == id),
                "hookrelay.example.toml does not show `{id}`"
            );
        }
    }

    #[test]
    fn every_setting_is_documented_in_operations_md() {
        let doc = include_str!("../../../docs/operations.md");
        let command = cli();
        let serve = command.find_subcommand(SCHEMA).unwrap();
        for arg in serve.get_arguments().chain(command.get_arguments()) {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            assert!(
                doc.contains(&format!("| `--{long}` |")),
                "docs/operations.md has no row for --{long}"
            );
        }
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../../docs/operations.md");
        let block = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/operations.md shows a TOML example");
        let file = parse_str(block).unwrap();
        assert!(
            file.values
                .iter()
                .any(|(k, v)| k == "allow_private_targets" && v == "10.20.0.0/16")
        );
    }
}
