//! The token check of the HTTP endpoints for a room's admin (`/report`, `/sfu/status`): a
//! token for the room named in the query with the `admin` grant, as
//! `Authorization: Bearer <jwt>` or the `token` query parameter. 401 without a valid token,
//! 403 for a token of another room or without `admin`.

use super::http::{TEXT, query_param, response};
use crate::signalling::protocol::Grant;
use crate::signalling::token::{TokenError, verify};

/// Whether the request may read `endpoint` of `room`: `Ok`, or the 401/403 answer saying
/// why not (`what` names what the grant is needed for, e.g. "reports").
pub(super) fn check(
    endpoint: &str,
    what: &str,
    secret: &[u8],
    authorization: Option<&str>,
    query: &str,
    room: &str,
) -> Result<(), Vec<u8>> {
    let Some(token) = request_token(authorization, query) else {
        return Err(unauthorized(format!(
            "{endpoint}: a token for room `{room}` with the `admin` grant is required \
             (Authorization: Bearer <token>, or the `token` query parameter)\n"
        )));
    };
    let claims = match verify(secret, &token, room) {
        Ok(c) => c,
        Err(e @ TokenError::WrongRoom { .. }) => {
            return Err(response(
                "403 Forbidden",
                TEXT,
                format!("{endpoint}: {e}\n"),
            ));
        }
        Err(e) => return Err(unauthorized(format!("{endpoint}: {e}\n"))),
    };
    if !claims.grants.contains(&Grant::Admin) {
        return Err(response(
            "403 Forbidden",
            TEXT,
            format!(
                "{endpoint}: the token of user `{}` lacks the `admin` grant needed for {what}\n",
                claims.sub
            ),
        ));
    }
    Ok(())
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
