//! `GET /report?room=R[&since=1h]`: the room's HTML performance report rendered from the
//! telemetry store ([`crate::report::generate`]), for a token of room `R` with the `admin`
//! grant (`Authorization: Bearer <jwt>` or the `token` query parameter).

use super::http::{TEXT, query_param, response, room_param};
use super::telemetry::SharedStore;
use crate::signalling::protocol::Grant;
use crate::signalling::token::{TokenError, verify};

/// Answer `GET /report?room=R[&since=D]`.
pub(super) async fn serve(
    secret: &[u8],
    authorization: Option<&str>,
    query: &str,
    store: Option<SharedStore>,
) -> Vec<u8> {
    let room = match room_param("/report", query) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Some(token) = request_token(authorization, query) else {
        return unauthorized(format!(
            "/report: a token for room `{room}` with the `admin` grant is required \
             (Authorization: Bearer <token>, or the `token` query parameter)\n"
        ));
    };
    let claims = match verify(secret, &token, &room) {
        Ok(c) => c,
        Err(e @ TokenError::WrongRoom { .. }) => {
            return response("403 Forbidden", TEXT, format!("/report: {e}\n"));
        }
        Err(e) => return unauthorized(format!("/report: {e}\n")),
    };
    if !claims.grants.contains(&Grant::Admin) {
        return response(
            "403 Forbidden",
            TEXT,
            format!(
                "/report: the token of user `{}` lacks the `admin` grant needed for reports\n",
                claims.sub
            ),
        );
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
    let r = room.clone();
    let html = tokio::task::spawn_blocking(move || {
        let st = store.lock();
        crate::report::generate(&st, &r, since_ms)
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

/// The `Authorization: Bearer` token of the request, else the `token` query parameter.
pub(super) fn request_token(authorization: Option<&str>, query: &str) -> Option<String> {
    let bearer = authorization.and_then(|v| {
        let (scheme, tok) = v.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| tok.trim().to_owned())
    });
    bearer
        .or_else(|| query_param(query, "token"))
        .filter(|t| !t.is_empty())
}

fn unauthorized(body: String) -> Vec<u8> {
    format!(
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: {TEXT}\r\nWWW-Authenticate: Bearer realm=\"streamwire\"\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_bearer_header_or_query() {
        assert_eq!(
            request_token(Some("Bearer abc.def"), "room=r&token=q").unwrap(),
            "abc.def"
        );
        assert_eq!(request_token(None, "room=r&token=q").unwrap(), "q");
        assert!(request_token(None, "room=r&token=").is_none());
        assert!(request_token(Some("Basic eA=="), "").is_none());
    }
}
