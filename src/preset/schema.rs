//! Typed access to one TOML table with schema checks (unknown keys, types) that report positions.

use std::collections::BTreeMap;

use super::doc::{Node, Value};
use super::error::{ErrorKind, Origin, PresetError, suggest};

/// One table of the preset, with the keys it may contain.
pub(crate) struct Section<'a> {
    /// Dotted prefix (`""` for the top level, `"video"` for `[video]`).
    pub(crate) prefix: &'static str,
    pub(crate) table: &'a BTreeMap<String, Node>,
    /// Where the table itself starts (used when a required key is missing).
    pub(crate) at: Origin,
}

pub(crate) fn invalid(origin: &Origin, kind: ErrorKind) -> PresetError {
    PresetError::Invalid {
        origin: origin.clone(),
        kind: Box::new(kind),
    }
}

impl<'a> Section<'a> {
    pub(crate) fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// Reject keys not in `allowed`; `reserved` keys get a message saying what they are for.
    pub(crate) fn check_keys(
        &self,
        allowed: &[&'static str],
        reserved: &[(&'static str, &'static str)],
    ) -> Result<(), PresetError> {
        for (key, node) in self.table {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            if let Some((_, what)) = reserved.iter().find(|(k, _)| k == key) {
                return Err(invalid(
                    &node.key_at,
                    ErrorKind::InvalidValue {
                        key: self.full_key(key),
                        value: key.clone(),
                        expected: format!(
                            "one of: {} (`{key}` is reserved for {what})",
                            allowed.join(", ")
                        ),
                        suggestion: None,
                    },
                ));
            }
            return Err(invalid(
                &node.key_at,
                ErrorKind::UnknownKey {
                    key: self.full_key(key),
                    suggestion: suggest(key, allowed).map(|s| self.full_key(s)),
                    expected: allowed.to_vec(),
                },
            ));
        }
        Ok(())
    }

    pub(crate) fn node(&self, key: &str) -> Option<&'a Node> {
        self.table.get(key)
    }

    fn wrong_type(&self, key: &str, node: &Node, expected: &'static str) -> PresetError {
        invalid(
            &node.at,
            ErrorKind::WrongType {
                key: self.full_key(key),
                expected,
                found: node.value.type_name(),
            },
        )
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<(&'a str, &'a Node)>, PresetError> {
        match self.node(key) {
            None => Ok(None),
            Some(node) => match &node.value {
                Value::String(s) => Ok(Some((s.as_str(), node))),
                _ => Err(self.wrong_type(key, node, "a string")),
            },
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<(bool, &'a Node)>, PresetError> {
        match self.node(key) {
            None => Ok(None),
            Some(node) => match node.value {
                Value::Bool(b) => Ok(Some((b, node))),
                _ => Err(self.wrong_type(key, node, "a boolean")),
            },
        }
    }

    pub(crate) fn table(&self, key: &'static str) -> Result<Option<Section<'a>>, PresetError> {
        match self.node(key) {
            None => Ok(None),
            Some(node) => match &node.value {
                Value::Table(t) => Ok(Some(Section {
                    prefix: key,
                    table: t,
                    at: node.key_at.clone(),
                })),
                _ => Err(self.wrong_type(key, node, "a table")),
            },
        }
    }

    /// An integer within `min..=max`; out of range is reported as [`ErrorKind::ImpossibleCaps`]
    /// when `caps` is true (sizes, rates) or [`ErrorKind::InvalidValue`] otherwise.
    pub(crate) fn uint(
        &self,
        key: &str,
        min: u32,
        max: u32,
        caps: bool,
    ) -> Result<Option<(u32, &'a Node)>, PresetError> {
        let Some(node) = self.node(key) else {
            return Ok(None);
        };
        let Value::Integer(n) = node.value else {
            return Err(self.wrong_type(key, node, "an integer"));
        };
        if n < i64::from(min) || n > i64::from(max) {
            let full = self.full_key(key);
            let kind = if caps {
                ErrorKind::ImpossibleCaps {
                    key: full,
                    reason: format!("{n} is outside {min}..={max}"),
                }
            } else {
                ErrorKind::InvalidValue {
                    key: full,
                    value: n.to_string(),
                    expected: format!("an integer in {min}..={max}"),
                    suggestion: None,
                }
            };
            return Err(invalid(&node.at, kind));
        }
        Ok(Some((n as u32, node)))
    }

    /// A string that must be one of `words`.
    pub(crate) fn word(
        &self,
        key: &str,
        words: &[&'static str],
    ) -> Result<Option<(&'static str, &'a Node)>, PresetError> {
        let Some((s, node)) = self.string(key)? else {
            return Ok(None);
        };
        match words.iter().find(|w| **w == s) {
            Some(w) => Ok(Some((w, node))),
            None => Err(invalid(
                &node.at,
                ErrorKind::InvalidValue {
                    key: self.full_key(key),
                    value: s.to_owned(),
                    expected: format!("one of: {}", words.join(", ")),
                    suggestion: suggest(s, words).map(str::to_owned),
                },
            )),
        }
    }
}
