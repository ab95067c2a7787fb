//! The seam between the signalling hub and the services the server composes beside it.
//!
//! The hub speaks the protocol, enforces grants and knows rooms and sessions; it stores
//! nothing. Requests that need a service (telemetry, feedback and the privacy operations,
//! today) go through a [`Service`] the server hands to the hub, which answers each with the
//! reply frame. Without a service the hub answers them with `not_implemented`.

use std::net::IpAddr;

use futures::future::BoxFuture;

use super::protocol::ServerMsg;
use super::protocol::telemetry::{Batch, Feedback};

/// Who sent a request: the joined session's room, peer id, token subject and display name, and
/// address.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Room name.
    pub room: String,
    /// Server-assigned peer id (also the session id of the telemetry store).
    pub peer: String,
    /// The token's user identity (`sub`).
    pub user: String,
    /// The token's display name (`name`).
    pub name: String,
    /// The connection's remote address.
    pub addr: IpAddr,
}

/// A request the hub passes on. Grants are already checked (the privacy operations need
/// `admin`).
#[derive(Debug, Clone)]
pub(crate) enum Request {
    /// `telemetry`: store a batch.
    Telemetry(Batch),
    /// `feedback`: store the user's feedback.
    Feedback(Feedback),
    /// `privacy_export`: everything held about `user`.
    PrivacyExport {
        /// User identity.
        user: String,
    },
    /// `privacy_delete`: delete everything held about `user`.
    PrivacyDelete {
        /// User identity.
        user: String,
    },
}

/// Why a service refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ServiceError {
    /// Part of the request is invalid; answered with `invalid_field` naming `what`, the
    /// dotted path of the value in the frame, as the field.
    #[error("{what}: {reason}")]
    Invalid {
        /// `batch`, `records[3].ts_ms`, `feedback.rating`, ...
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The service failed (already logged by the service); answered with `internal`.
    #[error("{0}")]
    Failed(String),
}

/// Answers the requests the hub does not handle itself.
pub(crate) trait Service: Send + Sync + 'static {
    /// Handle one request and return the reply frame for the caller.
    fn call(
        &self,
        from: Caller,
        request: Request,
    ) -> BoxFuture<'static, Result<ServerMsg, ServiceError>>;
}

/// Mints per-peer ICE server credentials (TURN with time-limited credentials; the server's
/// `server::turn::TurnConfig`). The hub adds them to `welcome`, mints fresh ones for
/// `resumed`, and pushes an `ice_servers` frame to every live session each
/// [`IceMinter::refresh_every`].
pub(crate) trait IceMinter: Send + Sync + std::fmt::Debug {
    /// Credentials for `peer_id`, valid from now.
    fn mint_for(&self, peer_id: &str) -> super::protocol::IceServer;
    /// How often a live session gets fresh credentials.
    fn refresh_every(&self) -> std::time::Duration;
}
