//! `streamwire serve --config FILE`: a TOML file mirroring the command line. Every flag
//! `--name` of `streamwire serve` is the key `name` (same value syntax; switches such as
//! `dev` are booleans; repeatable flags such as `ice-server` take an array); a flag given on
//! the command line overrides the file's key. The file is turned into those flags and parsed
//! with the command line's own parser, so a flag added to `serve` is a key at once, and a bad
//! value is reported at its line and column.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches};
use streamwire::preset::Origin;
use toml::de::{DeTable, DeValue};

use super::serve::ServeArgs;

/// Where each flag taken from the file was written, by flag name.
#[derive(Debug, Default)]
pub struct Origins(HashMap<String, Origin>);

impl Origins {
    /// How to name `flag` in an error: its place in the file, or the flag.
    pub fn describe(&self, flag: &str) -> String {
        match self.0.get(flag) {
            Some(o) => format!("{o}: `{flag}`"),
            None => format!("--{flag}"),
        }
    }

    /// The line of `flag` in the file, under an error about it.
    pub fn snippet(&self, flag: &str) -> Option<String> {
        self.0.get(flag)?.snippet()
    }
}

/// A located error: place, message and the line with a caret.
fn located(origin: &Origin, message: impl std::fmt::Display) -> anyhow::Error {
    match origin.snippet() {
        Some(s) => anyhow!("{origin}: {message}\n{s}"),
        None => anyhow!("{origin}: {message}"),
    }
}

/// The `serve` arguments of `argv` (the whole command line, `streamwire ... serve ...`) with
/// the file `path` underneath: the command line's flags win.
pub fn resolve(path: &Path, argv: Vec<OsString>) -> anyhow::Result<(ServeArgs, Origins)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let name = path.display().to_string();
    let at = |offset: usize| Origin::in_text(&name, &text, offset);
    let table = DeTable::parse(&text).map_err(|e| {
        located(
            &at(e.span().map(|s| s.start).unwrap_or(0)),
            format!("invalid TOML: {}", e.message().trim()),
        )
    })?;
    let cli = super::Cli::command();
    let serve_cmd = cli
        .find_subcommand("serve")
        .context("the `serve` command")?
        .clone();
    // What the command line itself sets (those keys of the file are overridden).
    let matches = cli.clone().try_get_matches_from(&argv)?;
    let serve_matches = matches
        .subcommand_matches("serve")
        .context("`--config` belongs to `streamwire serve`")?;
    let mut from_file: Vec<OsString> = Vec::new();
    let mut origins = Origins::default();
    for (key, value) in table.get_ref().iter() {
        let k = key.get_ref().as_ref();
        if k == "config" {
            return Err(located(
                &at(key.span().start),
                "`config` cannot be set in a config file",
            ));
        }
        let Some(arg) = serve_cmd.get_arguments().find(|a| a.get_long() == Some(k)) else {
            // Not a flag of `serve`: the parser below refuses it, with its "similar argument"
            // tip, and the error is reported at this key.
            from_file.push(format!("--{k}").into());
            origins.0.insert(k.to_owned(), at(key.span().start));
            continue;
        };
        let origin = at(value.span().start);
        if serve_matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine) {
            tracing::debug!(key = k, "config file key overridden by the command line");
            continue;
        }
        let switch = matches!(arg.get_action(), ArgAction::SetTrue);
        let repeatable = matches!(arg.get_action(), ArgAction::Append);
        let scalar = |v: &DeValue<'_>| -> Option<String> {
            match v {
                DeValue::String(s) => Some(s.to_string()),
                DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                    .ok()
                    .map(|n| n.to_string()),
                DeValue::Float(f) => Some(f.as_str().to_owned()),
                _ => None,
            }
        };
        match value.get_ref() {
            DeValue::Boolean(b) if switch => {
                if *b {
                    from_file.push(format!("--{k}").into());
                }
            }
            _ if switch => {
                return Err(located(
                    &origin,
                    format!("`{k}` is a switch: true or false"),
                ));
            }
            DeValue::Array(items) if repeatable => {
                for item in items.iter() {
                    let Some(v) = scalar(item.get_ref()) else {
                        return Err(located(
                            &at(item.span().start),
                            format!("`{k}` items must be strings or numbers"),
                        ));
                    };
                    from_file.push(format!("--{k}={v}").into());
                }
            }
            v => {
                let Some(v) = scalar(v) else {
                    let expected = if repeatable {
                        "a string, a number or an array of them"
                    } else {
                        "a string or a number"
                    };
                    return Err(located(&origin, format!("`{k}` must be {expected}")));
                };
                from_file.push(format!("--{k}={v}").into());
            }
        }
        origins.0.insert(k.to_owned(), origin);
    }
    // The file's flags go right after `serve`, before the command line's own.
    let at_serve = argv
        .iter()
        .position(|a| a == "serve")
        .context("no `serve` in the command line")?;
    let mut full = argv[..=at_serve].to_vec();
    full.extend(from_file);
    full.extend_from_slice(&argv[at_serve + 1..]);
    let matches = match cli.try_get_matches_from(&full) {
        Ok(m) => m,
        Err(e) => {
            let flag = e
                .get(clap::error::ContextKind::InvalidArg)
                .map(|v| v.to_string())
                .and_then(|s| {
                    s.strip_prefix("--")
                        .map(|s| s.split([' ', '=']).next().unwrap_or("").to_owned())
                });
            return match flag
                .as_deref()
                .and_then(|f| origins.0.get(f).map(|o| (f, o)))
            {
                Some((f, o)) => Err(located(o, format!("`{f}`: {}", clap_message(&e)))),
                None => Err(e.into()),
            };
        }
    };
    let serve = matches
        .subcommand_matches("serve")
        .context("`serve` arguments")?;
    let args = ServeArgs::from_arg_matches(serve)?;
    if args.config.is_none() {
        bail!("the config file was lost while merging the command line");
    }
    Ok((args, origins))
}

/// A clap error as one line: the message and its tip, without usage and help lines.
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| {
        !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
    });
    let first = lines.next().unwrap_or("").trim_start_matches("error: ");
    match lines.next() {
        Some(tip) => format!("{first} ({tip})"),
        None => first.to_owned(),
    }
}
