//! The one [`Service`] the hub gets: the telemetry service (when the server keeps telemetry)
//! and the whiteboard service (always), composed. The privacy operations cover both:
//! `privacy_export` adds the user's whiteboard items under `data.whiteboard`, and
//! `privacy_delete` removes them too (`strokes` in the answer).

use std::sync::{Arc, Weak};

use futures::future::BoxFuture;

use super::telemetry::TelemetryService;
use super::whiteboard::WhiteboardService;
use crate::signalling::protocol::{ErrorCode, ServerMsg};
use crate::signalling::service::{
    Caller, Request, RoomRelay, Service, ServiceError, WhiteboardOutcome, WhiteboardRequest,
};
use crate::telemetry::store::Scope;

pub(super) struct Services {
    pub telemetry: Option<Arc<TelemetryService>>,
    pub whiteboard: Arc<WhiteboardService>,
}

fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> BoxFuture<'static, Result<T, ServiceError>> {
    Box::pin(async move {
        tokio::task::spawn_blocking(f)
            .await
            .unwrap_or_else(|e| Err(ServiceError::Failed(format!("service task failed: {e}"))))
    })
}

impl Service for Services {
    fn call(
        &self,
        from: Caller,
        request: Request,
    ) -> BoxFuture<'static, Result<ServerMsg, ServiceError>> {
        let wb = self.whiteboard.clone();
        let Some(telemetry) = self.telemetry.clone() else {
            // Without a telemetry store, the privacy operations still cover the whiteboards.
            return match request {
                Request::PrivacyExport { user } => blocking(move || {
                    let items = wb.export_user(&user, Scope::Room(&from.room))?;
                    Ok(ServerMsg::PrivacyExport {
                        data: serde_json::json!({ "user": user, "sessions": [], "whiteboard": items }),
                        user,
                    })
                }),
                Request::PrivacyDelete { user } => blocking(move || {
                    let strokes = wb.delete_user(&user, Scope::Room(&from.room))?;
                    Ok(ServerMsg::PrivacyDeleted {
                        user,
                        records: 0,
                        feedback: 0,
                        sessions: 0,
                        strokes,
                    })
                }),
                Request::Telemetry(_) | Request::Feedback(_) => {
                    let t = if matches!(request, Request::Telemetry(_)) {
                        "telemetry"
                    } else {
                        "feedback"
                    };
                    Box::pin(async move {
                        Err(ServiceError::Refused {
                            code: ErrorCode::NotImplemented,
                            reason: format!(
                                "this server stores no telemetry (start it with --db); `{t}` is not kept"
                            ),
                            field: None,
                        })
                    })
                }
            };
        };
        let room = from.room.clone();
        let reply = telemetry.call(from, request);
        Box::pin(async move {
            match reply.await? {
                ServerMsg::PrivacyExport { user, mut data } => {
                    let u = user.clone();
                    let items = blocking(move || wb.export_user(&u, Scope::Room(&room))).await?;
                    if let Some(o) = data.as_object_mut() {
                        o.insert("whiteboard".into(), items);
                    }
                    Ok(ServerMsg::PrivacyExport { user, data })
                }
                ServerMsg::PrivacyDeleted {
                    user,
                    records,
                    feedback,
                    sessions,
                    ..
                } => {
                    let u = user.clone();
                    let strokes = blocking(move || wb.delete_user(&u, Scope::Room(&room))).await?;
                    Ok(ServerMsg::PrivacyDeleted {
                        user,
                        records,
                        feedback,
                        sessions,
                        strokes,
                    })
                }
                other => Ok(other),
            }
        })
    }

    fn whiteboard(
        &self,
        from: Caller,
        request: WhiteboardRequest,
    ) -> BoxFuture<'static, Result<WhiteboardOutcome, ServiceError>> {
        self.whiteboard.call(from, request)
    }

    fn attach_relay(&self, relay: Weak<dyn RoomRelay>) {
        self.whiteboard.set_relay(relay);
    }

    fn room_closed(&self, room: &str) {
        self.whiteboard.unload_room(room);
    }
}
