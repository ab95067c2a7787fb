//! Errors reported for bad presets: every one names where the problem is.

use std::fmt;
use std::path::PathBuf;

/// Where a preset value came from: a line and column in a file, or a `--set` override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A position in a preset file (line and column are 1-based; the column counts characters).
    File {
        /// The preset file as given (or the bundled preset's name, e.g. `pipelines/test-to-file.toml`).
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// The text of that line (for showing the error in context).
        text: String,
    },
    /// A command-line override, `--set key.path=value`.
    Override {
        /// The override exactly as given.
        arg: String,
    },
    /// A validated preset as a whole (its [`Preset::source`](super::Preset::source)): for what
    /// a consuming layer refuses when it converts a preset built in code rather than loaded
    /// (a loaded preset is refused at its line when it is validated). The error's
    /// [`ErrorKind`] names the key.
    Preset {
        /// The preset's `source`.
        source: String,
    },
}

impl Origin {
    /// The place `offset` (in bytes) of `text`, the contents of the file `path`: 1-based line
    /// and character column, and the line's text.
    ///
    /// ```
    /// use streamwire::preset::Origin;
    /// let o = Origin::in_text("a.toml", "x = 1\ny = oops\n", 10);
    /// assert_eq!(o.to_string(), "a.toml:2:5");
    /// assert_eq!(o.snippet().unwrap(), "  2 | y = oops\n    |     ^");
    /// ```
    pub fn in_text(path: &str, text: &str, offset: usize) -> Origin {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before
            .get(line_start..)
            .map(|s| s.chars().count())
            .unwrap_or(0)
            + 1;
        let line_end = text
            .get(line_start..)
            .and_then(|rest| rest.find('\n'))
            .map_or(text.len(), |i| line_start + i);
        Origin::File {
            path: path.to_owned(),
            line,
            column,
            text: text
                .get(line_start..line_end)
                .unwrap_or("")
                .trim_end_matches('\r')
                .to_owned(),
        }
    }

    /// The line with a caret under the column, rustc-style, for a place in a file.
    pub fn snippet(&self) -> Option<String> {
        let Origin::File {
            line, column, text, ..
        } = self
        else {
            return None;
        };
        let num = line.to_string();
        let pad = " ".repeat(num.len());
        let before: String = text
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        Some(format!("  {num} | {text}\n  {pad} | {before}^"))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                path, line, column, ..
            } => write!(f, "{path}:{line}:{column}"),
            Origin::Override { arg } => write!(f, "--set {arg}"),
            Origin::Preset { source } => write!(f, "{source}"),
        }
    }
}

/// What is wrong with a preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file is not valid TOML.
    Syntax {
        /// The TOML parser's message.
        message: String,
    },
    /// A key the schema does not know.
    UnknownKey {
        /// Full dotted key, e.g. `video.widht`.
        key: String,
        /// Closest known key in the same table, if one is close enough.
        suggestion: Option<String>,
        /// All keys allowed in that table.
        expected: Vec<&'static str>,
    },
    /// A value of the wrong TOML type.
    WrongType {
        /// Full dotted key.
        key: String,
        /// Type the schema wants (e.g. "integer").
        expected: &'static str,
        /// Type found (e.g. "string").
        found: &'static str,
    },
    /// A codec name no encoder family is known for.
    UnknownCodec {
        /// Full dotted key (`video.codec` or `audio.codec`).
        key: String,
        /// The codec as written.
        value: String,
        /// Known codecs for that key.
        expected: Vec<&'static str>,
        /// Closest known codec, if close enough.
        suggestion: Option<String>,
    },
    /// A value of the right type that is not allowed (e.g. an unknown source kind).
    InvalidValue {
        /// Full dotted key.
        key: String,
        /// The value as written.
        value: String,
        /// What is allowed.
        expected: String,
        /// Closest allowed word, if close enough.
        suggestion: Option<String>,
    },
    /// Settings that no pipeline can satisfy (odd sizes, out-of-range rates, codec/container mismatch).
    ImpossibleCaps {
        /// Full dotted key the problem is reported at.
        key: String,
        /// Why it is impossible.
        reason: String,
    },
    /// A required key is missing.
    Missing {
        /// Full dotted key.
        key: String,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Syntax { message } => write!(f, "invalid TOML: {message}"),
            ErrorKind::UnknownKey {
                key,
                suggestion,
                expected,
            } => {
                write!(f, "unknown key `{key}`")?;
                if let Some(s) = suggestion {
                    write!(f, ", did you mean `{s}`?")?;
                }
                write!(f, " (expected one of: {})", expected.join(", "))
            }
            ErrorKind::WrongType {
                key,
                expected,
                found,
            } => write!(f, "`{key}` must be {expected}, found {found}"),
            ErrorKind::UnknownCodec {
                key,
                value,
                expected,
                suggestion,
            } => {
                write!(f, "unknown codec `{value}` for `{key}`")?;
                if let Some(s) = suggestion {
                    write!(f, ", did you mean `{s}`?")?;
                }
                write!(f, " (expected one of: {})", expected.join(", "))
            }
            ErrorKind::InvalidValue {
                key,
                value,
                expected,
                suggestion,
            } => {
                write!(f, "invalid value `{value}` for `{key}`")?;
                if let Some(s) = suggestion {
                    write!(f, ", did you mean `{s}`?")?;
                }
                write!(f, " (expected {expected})")
            }
            ErrorKind::ImpossibleCaps { key, reason } => {
                write!(f, "impossible settings at `{key}`: {reason}")
            }
            ErrorKind::Missing { key } => write!(f, "missing required key `{key}`"),
        }
    }
}

/// Error loading, overriding or validating a preset.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    /// The preset is wrong at a known place.
    #[error("{origin}: {kind}")]
    Invalid {
        /// Where.
        origin: Origin,
        /// What.
        kind: Box<ErrorKind>,
    },
    /// The file could not be read.
    #[error("cannot read preset {}: {source}", path.display())]
    Io {
        /// The path tried.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A name that is neither a file nor a bundled preset.
    #[error("no preset file or bundled preset named `{name}`{}; bundled presets: {}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), available.join(", "))]
    NotFound {
        /// The name given.
        name: String,
        /// Closest bundled name.
        suggestion: Option<String>,
        /// Bundled preset names.
        available: Vec<&'static str>,
    },
    /// The room token could not be obtained (unreadable token file, no token anywhere).
    #[error("room token: {reason}")]
    Token {
        /// What is wrong, naming the file or variable.
        reason: String,
    },
    /// A `--set` argument that is not `key.path=value`.
    #[error("invalid override `--set {arg}`: {reason}")]
    BadOverride {
        /// The argument as given.
        arg: String,
        /// Why it is malformed.
        reason: String,
    },
}

impl PresetError {
    /// The error's kind, when it points at a place in the preset.
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            PresetError::Invalid { kind, .. } => Some(&**kind),
            _ => None,
        }
    }

    /// Where the error is, when it points at a place in the preset.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            PresetError::Invalid { origin, .. } => Some(origin),
            _ => None,
        }
    }

    /// The offending line with a caret under the column, rustc-style, when the error points into
    /// a preset file.
    ///
    /// ```
    /// let e = streamwire::preset::Preset::from_str("output = 3\n", "p.toml", &[]).unwrap_err();
    /// assert_eq!(e.snippet().unwrap(), "  1 | output = 3\n    |          ^");
    /// ```
    pub fn snippet(&self) -> Option<String> {
        self.origin()?.snippet()
    }

    /// `(line, column)` (1-based) when the error points into a preset file.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        match self.origin() {
            Some(Origin::File { line, column, .. }) => Some((*line, *column)),
            _ => None,
        }
    }
}

/// Closest candidate to `word` by Jaro-Winkler similarity, if it is close enough to be a useful hint.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
