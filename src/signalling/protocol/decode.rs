//! Decoding client frames, with a diagnosis naming the message type and field at fault.

use serde_json::Value;

use super::messages::{CLIENT_TYPES, RESERVED_TYPES};
use super::{ClientMsg, ErrorCode, ServerMsg};

/// A client frame that could not be decoded: names the message type and field when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    /// `bad_json`, `unknown_type`, `missing_field`, `invalid_field`, `not_implemented`.
    pub code: ErrorCode,
    /// What is wrong.
    pub message: String,
    /// The frame's `type`, when it has one.
    pub in_type: Option<String>,
    /// The offending field, when known.
    pub field: Option<String>,
}

impl DecodeError {
    /// The error frame to send back.
    pub fn to_server_msg(&self) -> ServerMsg {
        ServerMsg::Error {
            code: self.code,
            message: self.message.clone(),
            in_type: self.in_type.clone(),
            field: self.field.clone(),
        }
    }
}

/// Decode a client frame; on failure, diagnose which message type and field is wrong. The
/// field is the dotted path of the offending value inside the frame: `seq`, `track.kind`,
/// `payload.binary`, `batch.records[3].ts_ms`.
pub fn decode_client(text: &str) -> Result<ClientMsg, DecodeError> {
    match serde_json::from_str::<ClientMsg>(text) {
        Ok(m) => Ok(m),
        Err(first) => Err(diagnose(text, &first)),
    }
}

fn err(
    code: ErrorCode,
    message: String,
    in_type: Option<&str>,
    field: Option<&str>,
) -> DecodeError {
    DecodeError {
        code,
        message,
        in_type: in_type.map(str::to_owned),
        field: field.map(str::to_owned),
    }
}

fn missing_field_name(e: &serde_json::Error) -> Option<String> {
    let s = e.to_string();
    let rest = s.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Work allowed to locate the culprit of one frame: about 1 MiB of re-decoding, at least 4
/// and at most 48 trial decodes. A larger frame gets a shallower (still correct) path.
fn probe_budget(text_len: usize) -> usize {
    (1024 * 1024 / text_len.max(1)).clamp(4, 48)
}

/// One step of a path into the frame: an object key or an array index.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `batch.records[3].ts_ms`.
fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn node_mut<'a>(root: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut node = root;
    for seg in path {
        node = match (seg, node) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

fn node<'a>(root: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut node = root;
    for seg in path {
        node = match (seg, node) {
            (Seg::Key(k), Value::Object(m)) => m.get(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// Trial decodes of edited copies of the frame: does an edit change the decoding error?
struct Prober<'a> {
    root: &'a Value,
    error: String,
    budget: usize,
}

impl Prober<'_> {
    /// Apply `edit` to a copy of the frame at `path`; true when the copy decodes, or fails
    /// with a different error. False (and no decode) once the budget is spent.
    fn changes(&mut self, path: &[Seg], edit: impl FnOnce(&mut Value)) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        let mut copy = self.root.clone();
        let Some(n) = node_mut(&mut copy, path) else {
            return false;
        };
        edit(n);
        match serde_json::from_value::<ClientMsg>(copy) {
            Ok(_) => true,
            Err(e) => e.to_string() != self.error,
        }
    }

    /// The path of the value that makes decoding fail: descend into the member whose removal
    /// changes the error, as deep as it goes (serde reports the first bad value it meets, so
    /// removing a good member leaves the error as it is).
    fn invalid_value(&mut self) -> Vec<Seg> {
        let mut path = Vec::new();
        while let Some(here) = node(self.root, &path) {
            let next = match here {
                Value::Object(m) => {
                    let keys: Vec<String> = m
                        .keys()
                        .filter(|k| !(path.is_empty() && k.as_str() == "type"))
                        .cloned()
                        .collect();
                    let by_removal = keys.iter().find(|k| {
                        self.changes(&path, |n| {
                            if let Value::Object(m) = n {
                                m.remove(*k);
                            }
                        })
                    });
                    // Two bad members with the same message: removing either leaves the
                    // error as it is. The culprit is then the member that, alone, still
                    // fails that way.
                    match by_removal {
                        Some(k) => Some(Seg::Key(k.clone())),
                        None => keys
                            .into_iter()
                            .find(|k| self.fails_alone(&path, k))
                            .map(Seg::Key),
                    }
                }
                Value::Array(a) => self.bisect(&path, a.len(), |items, range| {
                    items.drain(range);
                }),
                _ => None,
            };
            match next {
                Some(seg) => path.push(seg),
                None => break,
            }
        }
        path
    }

    /// True when a copy of the frame pruned to `path` and then `key` (every other member of
    /// the objects on the way removed, `type` kept) fails with the same error.
    fn fails_alone(&mut self, path: &[Seg], key: &str) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        let mut copy = self.root.clone();
        let keep: Vec<Option<&str>> = path
            .iter()
            .map(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .chain([Some(key)])
            .collect();
        let mut node = &mut copy;
        for (depth, k) in keep.iter().enumerate() {
            if let (Value::Object(m), Some(k)) = (&mut *node, k) {
                m.retain(|name, _| name == k || (depth == 0 && name == "type"));
            }
            let Some(seg) = path.get(depth) else { break };
            node = match (seg, node) {
                (Seg::Key(k), Value::Object(m)) => match m.get_mut(k) {
                    Some(n) => n,
                    None => return false,
                },
                (Seg::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                    Some(n) => n,
                    None => return false,
                },
                _ => return false,
            };
        }
        match serde_json::from_value::<ClientMsg>(copy) {
            Ok(_) => false,
            Err(e) => e.to_string() == self.error,
        }
    }

    /// The element of the array at `path` (of length `len`) whose edit changes the error,
    /// found by editing halves.
    fn bisect(
        &mut self,
        path: &[Seg],
        len: usize,
        edit: impl Fn(&mut Vec<Value>, std::ops::Range<usize>),
    ) -> Option<Seg> {
        let (mut lo, mut hi) = (0, len);
        if len == 0 {
            return None;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let first_half = self.changes(path, |n| {
                if let Value::Array(a) = n {
                    edit(a, lo..mid);
                }
            });
            if first_half {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        self.changes(path, |n| {
            if let Value::Array(a) = n {
                edit(a, lo..lo + 1);
            }
        })
        .then_some(Seg::Index(lo))
    }

    /// Where the required member `field` is missing: the first object (breadth first) where
    /// adding `field` changes the error.
    fn missing(&mut self, field: &str) -> Vec<Seg> {
        let mut queue: std::collections::VecDeque<Vec<Seg>> = [Vec::new()].into();
        while let Some(path) = queue.pop_front() {
            match node(self.root, &path) {
                Some(Value::Object(m)) => {
                    if !m.contains_key(field)
                        && self.changes(&path, |n| {
                            if let Value::Object(m) = n {
                                m.insert(field.to_owned(), Value::Null);
                            }
                        })
                    {
                        let mut p = path;
                        p.push(Seg::Key(field.to_owned()));
                        return p;
                    }
                    for (k, v) in m {
                        if v.is_object() || v.is_array() {
                            let mut p = path.clone();
                            p.push(Seg::Key(k.clone()));
                            queue.push_back(p);
                        }
                    }
                }
                Some(Value::Array(a)) => {
                    // Adding the member to every element of a half finds the element.
                    let add = |items: &mut Vec<Value>, r: std::ops::Range<usize>| {
                        for v in &mut items[r] {
                            if let Value::Object(m) = v
                                && !m.contains_key(field)
                            {
                                m.insert(field.to_owned(), Value::Null);
                            }
                        }
                    };
                    if let Some(seg) = self.bisect(&path, a.len(), add) {
                        let mut p = path;
                        p.push(seg);
                        p.push(Seg::Key(field.to_owned()));
                        return p;
                    }
                }
                _ => {}
            }
            if self.budget == 0 {
                break;
            }
        }
        vec![Seg::Key(field.to_owned())]
    }
}

fn diagnose(text: &str, first: &serde_json::Error) -> DecodeError {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return err(
                ErrorCode::BadJson,
                format!("frame is not valid JSON: {e}"),
                None,
                None,
            );
        }
    };
    let Some(obj) = value.as_object() else {
        return err(
            ErrorCode::BadJson,
            "frame must be a JSON object".into(),
            None,
            None,
        );
    };
    let ty = match obj.get("type") {
        None => {
            return err(
                ErrorCode::MissingField,
                "frame has no `type` field".into(),
                None,
                Some("type"),
            );
        }
        Some(Value::String(t)) => t.as_str(),
        Some(_) => {
            return err(
                ErrorCode::InvalidField,
                "`type` must be a string".into(),
                None,
                Some("type"),
            );
        }
    };
    if RESERVED_TYPES.contains(&ty) {
        return err(
            ErrorCode::NotImplemented,
            format!("message type `{ty}` is reserved and not implemented by this server"),
            Some(ty),
            None,
        );
    }
    if !CLIENT_TYPES.contains(&ty) {
        return err(
            ErrorCode::UnknownType,
            format!(
                "unknown message type `{ty}` (known: {})",
                CLIENT_TYPES.join(", ")
            ),
            Some(ty),
            None,
        );
    }
    // The error of the parsed tree (no line/column), which every trial decode compares with.
    let error = match serde_json::from_value::<ClientMsg>(value.clone()) {
        Err(e) => e,
        // Valid as a tree but not as text (cannot happen with serde_json; be safe).
        Ok(_) => {
            return err(
                ErrorCode::InvalidField,
                format!("`{ty}` is invalid: {first}"),
                Some(ty),
                None,
            );
        }
    };
    let mut prober = Prober {
        root: &value,
        error: error.to_string(),
        budget: probe_budget(text.len()),
    };
    if let Some(field) = missing_field_name(&error) {
        let path = dotted(&prober.missing(&field));
        return err(
            ErrorCode::MissingField,
            format!("`{ty}` is missing required field `{path}`"),
            Some(ty),
            Some(&path),
        );
    }
    let path = prober.invalid_value();
    if path.is_empty() {
        return err(
            ErrorCode::InvalidField,
            format!("`{ty}` is invalid: {error}"),
            Some(ty),
            None,
        );
    }
    let path = dotted(&path);
    err(
        ErrorCode::InvalidField,
        format!("`{ty}` field `{path}` is invalid: {error}"),
        Some(ty),
        Some(&path),
    )
}
