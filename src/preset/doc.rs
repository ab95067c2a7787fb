//! A TOML document as a tree of located values, so every later check can say where a value came from.

use std::collections::BTreeMap;

use toml::de::{DeTable, DeValue};

use super::error::{ErrorKind, Origin, PresetError};

/// A value with its origin.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) value: Value,
    /// Where the value starts.
    pub(crate) at: Origin,
    /// Where its key starts (for unknown-key errors); same as `at` for overrides.
    pub(crate) key_at: Origin,
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    String(String),
    Integer(i64),
    Float,
    Bool,
    Table(BTreeMap<String, Node>),
    /// An array (each element located, e.g. `room.ice_servers`).
    Array(Vec<Node>),
    /// Datetimes and out-of-range integers: not used by the schema, kept to report their type.
    Other(&'static str),
}

impl Value {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float => "a float",
            Value::Bool => "a boolean",
            Value::Table(_) => "a table",
            Value::Array(_) => "an array",
            Value::Other(t) => t,
        }
    }
}

/// Maps byte offsets to 1-based line and character column.
struct Lines<'a> {
    text: &'a str,
    path: &'a str,
}

impl Lines<'_> {
    fn origin(&self, offset: usize) -> Origin {
        Origin::in_text(self.path, self.text, offset)
    }
}

/// Parse TOML text into a located tree. `path` is only used in error positions.
pub(crate) fn parse(text: &str, path: &str) -> Result<BTreeMap<String, Node>, PresetError> {
    let lines = Lines { text, path };
    let table = DeTable::parse(text).map_err(|e| PresetError::Invalid {
        origin: lines.origin(e.span().map(|s| s.start).unwrap_or(0)),
        kind: Box::new(ErrorKind::Syntax {
            message: e.message().trim().to_owned(),
        }),
    })?;
    Ok(convert_table(table.get_ref(), &lines))
}

fn convert_table(table: &DeTable<'_>, lines: &Lines<'_>) -> BTreeMap<String, Node> {
    table
        .iter()
        .map(|(k, v)| {
            let node = Node {
                value: convert_value(v.get_ref(), lines),
                at: lines.origin(v.span().start),
                key_at: lines.origin(k.span().start),
            };
            (k.get_ref().to_string(), node)
        })
        .collect()
}

fn convert_value(value: &DeValue<'_>, lines: &Lines<'_>) -> Value {
    match value {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Value::Integer(n),
            Err(_) => Value::Other("an integer out of range"),
        },
        DeValue::Float(_) => Value::Float,
        DeValue::Boolean(_) => Value::Bool,
        DeValue::Datetime(_) => Value::Other("a datetime"),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| {
                    let at = lines.origin(v.span().start);
                    Node {
                        value: convert_value(v.get_ref(), lines),
                        key_at: at.clone(),
                        at,
                    }
                })
                .collect(),
        ),
        DeValue::Table(t) => Value::Table(convert_table(t, lines)),
    }
}

/// Apply one `key.path=value` override. The value is read as a TOML value when it parses as one
/// (`30`, `true`, `"x"`), otherwise as a bare string (`vp9`, `file:out.mp4`).
pub(crate) fn apply_override(
    root: &mut BTreeMap<String, Node>,
    arg: &str,
) -> Result<(), PresetError> {
    let bad = |reason: &str| PresetError::BadOverride {
        arg: arg.to_owned(),
        reason: reason.to_owned(),
    };
    let (path, raw) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected key.path=value"))?;
    let path = path.trim();
    let raw = raw.trim();
    if path.is_empty() || path.split('.').any(|p| p.trim().is_empty()) {
        return Err(bad("empty key"));
    }
    let origin = Origin::Override {
        arg: arg.to_owned(),
    };
    let value = match DeValue::parse(raw) {
        Ok(v) if !matches!(v.get_ref(), DeValue::Table(_)) => {
            let lines = Lines { text: raw, path };
            convert_value(v.get_ref(), &lines)
        }
        _ => Value::String(raw.to_owned()),
    };
    // Array items point at the override too, not into the bare value text.
    let value = match value {
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|n| Node {
                    value: n.value,
                    at: origin.clone(),
                    key_at: origin.clone(),
                })
                .collect(),
        ),
        v => v,
    };
    let parts: Vec<&str> = path.split('.').map(str::trim).collect();
    let (last, parents) = parts.split_last().ok_or_else(|| bad("empty key"))?;
    let mut table = root;
    for (i, part) in parents.iter().enumerate() {
        let entry = table.entry((*part).to_owned()).or_insert_with(|| Node {
            value: Value::Table(BTreeMap::new()),
            at: origin.clone(),
            key_at: origin.clone(),
        });
        table = match &mut entry.value {
            Value::Table(t) => t,
            other => {
                return Err(bad(&format!(
                    "`{}` is {}, not a table",
                    parts[..=i].join("."),
                    other.type_name()
                )));
            }
        };
    }
    table.insert(
        (*last).to_owned(),
        Node {
            value,
            at: origin.clone(),
            key_at: origin,
        },
    );
    Ok(())
}
