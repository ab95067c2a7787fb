//! `GET /report?room=R[&since=1h]`: the room's HTML performance report rendered from the
//! telemetry store ([`crate::report::generate`]), with the room's SFU load now when it is on
//! the SFU, for a token of room `R` with the `admin` grant (`Authorization: Bearer <jwt>` or
//! the `token` query parameter).

use super::http::{TEXT, query_param, response, room_param};
use super::telemetry::SharedStore;

/// Answer `GET /report?room=R[&since=D]`.
pub(super) async fn serve(
    secret: &[u8],
    authorization: Option<&str>,
    query: &str,
    store: Option<SharedStore>,
    sfu: Option<std::sync::Arc<super::sfu::Bridge>>,
) -> Vec<u8> {
    let room = match room_param("/report", query) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if let Err(resp) =
        super::room_admin::check("/report", "reports", secret, authorization, query, &room)
    {
        return resp;
    }
    let since_ms = match query_param(query, "since").filter(|s| !s.is_empty()) {
        None => 0,
        Some(s) => match humantime::parse_duration(&s) {
            Ok(d) => crate::telemetry::store::now_ms()
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(_) => {
                return response(
                    "400 Bad Request",
                    TEXT,
                    format!(
                        "/report: invalid `since` value `{s}`: expected a duration like 1h or 2d\n"
                    ),
                );
            }
        },
    };
    let Some(store) = store else {
        return response(
            "404 Not Found",
            TEXT,
            "/report: this server keeps no telemetry (start it with --db)\n".to_owned(),
        );
    };
    let load = match &sfu {
        Some(bridge) => bridge.status(&room).await.map(|s| s.load()),
        None => None,
    };
    let r = room.clone();
    let html = tokio::task::spawn_blocking(move || {
        let st = store.lock();
        crate::report::generate(&st, &r, since_ms, load.as_ref())
    })
    .await;
    match html {
        Ok(Ok(html)) => response("200 OK", "text/html; charset=utf-8", html),
        Ok(Err(e @ crate::report::ReportError::Empty { .. })) => {
            response("404 Not Found", TEXT, format!("/report: {e}\n"))
        }
        Ok(Err(e)) => {
            tracing::warn!(room = %room, error = %e, "report failed");
            response(
                "500 Internal Server Error",
                TEXT,
                format!("/report: rendering the report failed: {e}\n"),
            )
        }
        Err(e) => response(
            "500 Internal Server Error",
            TEXT,
            format!("/report: the report task failed: {e}\n"),
        ),
    }
}
