//! The client's error type.

use super::super::protocol::ErrorCode;

/// Client errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server refused the join (token problems, room full, ...).
    #[error("join refused ({code}): {message}")]
    Refused {
        /// Code.
        code: ErrorCode,
        /// Explanation.
        message: String,
    },
    /// Could not connect within the attempt budget.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The URL is unusable.
    #[error("invalid URL `{url}`: {reason}")]
    Url {
        /// URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The client is closed or failed.
    #[error("client is closed")]
    Closed,
    /// The session was lost before the message got a result (it may or may not have arrived).
    #[error("session lost before a delivery result for seq {seq}")]
    SessionLost {
        /// The message's seq.
        seq: u64,
    },
    /// `limit` frames are already waiting for the connection (while disconnected); the frame
    /// was not queued, and nothing queued before it was dropped.
    #[error(
        "{limit} frames are already waiting for the connection (ClientConfig::max_backlog); not queued"
    )]
    Backlog {
        /// `ClientConfig::max_backlog`.
        limit: usize,
    },
    /// `limit` `message` frames are already waiting for their delivery result (sent or
    /// queued while disconnected); the message was not queued.
    #[error(
        "{limit} messages are already waiting for their delivery result (ClientConfig::max_pending_messages); not queued"
    )]
    PendingMessages {
        /// `ClientConfig::max_pending_messages`.
        limit: usize,
    },
    /// A telemetry batch at consent `none` was refused before anything was sent.
    #[error("telemetry at consent `none` is never sent")]
    NoConsent,
    /// A frame or payload above the server's limit (from `welcome.limits`) was refused before
    /// anything was sent.
    #[error("{what} of {bytes} bytes exceeds the server's {limit_name} = {limit}; not sent")]
    TooLarge {
        /// `message payload`, or the frame's type (`message`, `offer`, `telemetry`, ...).
        what: &'static str,
        /// Its size (for a frame, as sent, with its `seq`).
        bytes: usize,
        /// `max_payload_bytes` or `max_frame_bytes`.
        limit_name: &'static str,
        /// The limit.
        limit: usize,
    },
}
