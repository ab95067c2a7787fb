//! Decoding client frames, with a diagnosis naming the message type and field at fault.

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

/// Decode a client frame; on failure, diagnose which message type and field is wrong.
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

fn diagnose(text: &str, first: &serde_json::Error) -> DecodeError {
    let value: serde_json::Value = match serde_json::from_str(text) {
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
        Some(serde_json::Value::String(t)) => t.as_str(),
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
    if let Some(field) = missing_field_name(first) {
        return err(
            ErrorCode::MissingField,
            format!("`{ty}` is missing required field `{field}`"),
            Some(ty),
            Some(&field),
        );
    }
    // Find the culprit: drop one field at a time; the one whose removal turns the error into
    // "missing field `k`" (or makes it decode) is the field with the invalid value.
    for (k, _) in obj.iter().filter(|(k, _)| k.as_str() != "type").take(32) {
        let mut probe = obj.clone();
        probe.remove(k);
        match serde_json::from_value::<ClientMsg>(serde_json::Value::Object(probe)) {
            Ok(_) => {
                return err(
                    ErrorCode::InvalidField,
                    format!("`{ty}` field `{k}` is invalid: {first}"),
                    Some(ty),
                    Some(k),
                );
            }
            Err(e) if missing_field_name(&e).as_deref() == Some(k.as_str()) => {
                return err(
                    ErrorCode::InvalidField,
                    format!("`{ty}` field `{k}` is invalid: {first}"),
                    Some(ty),
                    Some(k),
                );
            }
            Err(_) => {}
        }
    }
    err(
        ErrorCode::InvalidField,
        format!("`{ty}` is invalid: {first}"),
        Some(ty),
        None,
    )
}
