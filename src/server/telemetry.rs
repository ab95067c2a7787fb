//! The telemetry service: telemetry batches, feedback and the privacy operations of joined
//! peers go into the SQLite store ([`crate::telemetry::Store`]), on the blocking pool; expired
//! data is purged at start and then every [`TelemetryConfig::purge_every`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::signalling::protocol::ServerMsg;
#[cfg(doc)]
use crate::signalling::service::Service;
use crate::signalling::service::{Caller, Request, ServiceError};
use crate::telemetry::store::{Scope, Tags, now_ms};
use crate::telemetry::{Store, StoreError};

/// The store, shared by the signalling connections, the `/report` endpoint and the purge.
pub(super) type SharedStore = Arc<Mutex<Store>>;

/// Where and how long the server keeps telemetry.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// SQLite database file.
    pub db: PathBuf,
    /// Retention; expired data is purged at start and every [`TelemetryConfig::purge_every`].
    pub retention: Duration,
    /// Interval of the automatic purge. Default 1 h.
    pub purge_every: Duration,
}

impl TelemetryConfig {
    /// `db` with the default retention (30 days) and an hourly purge.
    pub fn new(db: PathBuf) -> Self {
        Self {
            db,
            retention: crate::telemetry::DEFAULT_RETENTION,
            purge_every: Duration::from_secs(3600),
        }
    }
}

/// [`Service`] over the telemetry store.
pub(super) struct TelemetryService {
    store: SharedStore,
}

impl TelemetryService {
    /// Open (or create) the store.
    pub(super) fn open(cfg: &TelemetryConfig) -> Result<Self, StoreError> {
        Ok(Self {
            store: Arc::new(Mutex::new(Store::open(&cfg.db, cfg.retention)?)),
        })
    }

    /// The shared store.
    pub(super) fn store(&self) -> SharedStore {
        self.store.clone()
    }
}

impl TelemetryService {
    /// Answer one telemetry, feedback or privacy request (the [`Service`] of the server
    /// composes this with the whiteboards, `services.rs`).
    pub(super) fn call(
        &self,
        from: Caller,
        request: Request,
    ) -> BoxFuture<'static, Result<ServerMsg, ServiceError>> {
        let store = self.store.clone();
        Box::pin(async move {
            let result = tokio::task::spawn_blocking(move || {
                let mut st = store.lock();
                apply(&mut st, &from, request)
            })
            .await;
            match result {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(StoreError::Invalid { what, reason })) => {
                    Err(ServiceError::Invalid { what, reason })
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "telemetry store failed");
                    Err(ServiceError::Failed("telemetry store failed".into()))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "telemetry task failed");
                    Err(ServiceError::Failed("telemetry task failed".into()))
                }
            }
        })
    }
}

/// One request against the store, and its reply frame.
fn apply(st: &mut Store, from: &Caller, request: Request) -> Result<ServerMsg, StoreError> {
    let tags = Tags {
        room: &from.room,
        session: &from.peer,
        peer: &from.peer,
        user: &from.user,
        name: &from.name,
        addr: Some(from.addr),
    };
    match request {
        Request::Telemetry(batch) => {
            st.ingest(&tags, &batch, now_ms())
                .map(|r| ServerMsg::TelemetryAck {
                    stored: r.stored,
                    dropped: r.dropped,
                })
        }
        Request::Feedback(feedback) => st
            .add_feedback(&tags, &feedback, now_ms())
            .map(|()| ServerMsg::FeedbackAck {}),
        Request::PrivacyExport { user } => st
            .export_user(&user, Scope::Room(&from.room))
            .map(|data| ServerMsg::PrivacyExport { user, data }),
        Request::PrivacyDelete { user } => st
            .delete_user(&user, Scope::Room(&from.room), now_ms())
            .map(|r| ServerMsg::PrivacyDeleted {
                user,
                records: r.records,
                feedback: r.feedback,
                sessions: r.sessions,
                strokes: 0,
            }),
    }
}

/// Purges expired telemetry now and then every `every`, until shutdown.
pub(super) async fn purge_task(
    store: SharedStore,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let store = store.clone();
                let res = tokio::task::spawn_blocking(move || store.lock().purge(now_ms())).await;
                match res {
                    Ok(Ok(r)) => tracing::info!(records = r.records, feedback = r.feedback, sessions = r.sessions, "telemetry retention purge"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "telemetry retention purge failed"),
                    Err(e) => tracing::warn!(error = %e, "telemetry purge task panicked"),
                }
            }
        }
    }
}
