//! The web side of telemetry: the server's `GET /report?room=R` endpoint (admin token for the
//! room, clear 400/401/403/404 otherwise) over real HTTP, and the demo page in a real headless
//! Chromium sending optional feedback (found in the SQLite store only after it was sent) and
//! following its link to the room's report.
//!
//! Loopback only: `unshare -n sh -c 'ip link set lo up; cargo test --test telemetry_web'`.

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{Browser, output_dir};
use serde_json::json;
use streamwire::server::TelemetryConfig;
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::Grant;
use streamwire::signalling::token::{Claims, mint};
use streamwire::telemetry::Consent;
use streamwire::telemetry::batcher::{Batcher, TrackSample};
use streamwire::telemetry::store::now_ms;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LONG: Duration = Duration::from_secs(20);

/// One HTTP/1.1 GET with extra header lines; the whole response (the server closes).
async fn get(addr: std::net::SocketAddr, path: &str, headers: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    common::within("http response", s.read_to_string(&mut out))
        .await
        .unwrap();
    out
}

fn status(resp: &str) -> &str {
    resp.lines().next().unwrap_or("")
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// Telemetry for `room` through a real client: ten peer-statistics samples at `full`.
async fn seed(url: &str, room: &str, user: &str) {
    let (client, mut ev) = Client::connect(ClientConfig::new(
        url,
        room,
        &common::token(room, user, &[Grant::Publish]),
    ))
    .await
    .unwrap();
    let mut b = Batcher::new(Consent::Full);
    let t = now_ms() - 20_000;
    for i in 0..10 {
        let stats = TrackSample {
            bitrate: Some(800_000.0 + 1000.0 * f64::from(i)),
            fps: Some(30.0),
            rtt_ms: Some(20.0),
            packet_loss_pct: Some(0.5),
            jitter_ms: Some(3.0),
            quality_score: None,
            nack_count: Some(1.0),
        };
        b.push_track_sample("peer2/video-recv-1", &stats, t + i64::from(i) * 2000);
    }
    client.send_telemetry(b.take_batch().unwrap()).unwrap();
    loop {
        match common::within("telemetry ack", ev.recv()).await.unwrap() {
            Event::TelemetryAck { stored, .. } => {
                assert_eq!(stored, 70);
                break;
            }
            Event::ServerError { code, message, .. } => panic!("{code:?}: {message}"),
            _ => {}
        }
    }
    client.leave().await;
}

#[tokio::test]
async fn report_endpoint_needs_an_admin_token_for_the_room() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config();
    cfg.telemetry = Some(TelemetryConfig::new(dir.path().join("telemetry.db")));
    let srv = common::start(cfg).await;
    seed(&srv.url, "rep", "ann").await;
    let admin = common::token("rep", "ops", &[Grant::Admin]);

    // No token.
    let r = get(srv.addr, "/report?room=rep", "").await;
    assert_eq!(status(&r), "HTTP/1.1 401 Unauthorized", "{r}");
    assert!(r.contains("WWW-Authenticate: Bearer"), "{r}");
    assert!(
        body(&r).contains("a token for room `rep` with the `admin` grant is required"),
        "{r}"
    );
    // A token signed with another secret.
    let forged = mint(
        b"another-secret-0123456789abcdef-0123456789",
        &Claims::new(
            "rep",
            "ops",
            "ops",
            Duration::from_secs(60),
            &[Grant::Admin],
        ),
    )
    .unwrap();
    let r = get(
        srv.addr,
        "/report?room=rep",
        &format!("Authorization: Bearer {forged}\r\n"),
    )
    .await;
    assert_eq!(status(&r), "HTTP/1.1 401 Unauthorized", "{r}");
    assert!(body(&r).contains("signature does not verify"), "{r}");
    // An admin token for another room.
    let other = common::token("other", "ops", &[Grant::Admin]);
    let r = get(srv.addr, &format!("/report?room=rep&token={other}"), "").await;
    assert_eq!(status(&r), "HTTP/1.1 403 Forbidden", "{r}");
    assert!(
        body(&r).contains("token is for room `other`, not `rep`"),
        "{r}"
    );
    // The right room without the admin grant.
    let plain = common::token(
        "rep",
        "ann",
        &[Grant::Publish, Grant::Subscribe, Grant::Message],
    );
    let r = get(
        srv.addr,
        "/report?room=rep",
        &format!("Authorization: Bearer {plain}\r\n"),
    )
    .await;
    assert_eq!(status(&r), "HTTP/1.1 403 Forbidden", "{r}");
    assert!(
        body(&r).contains("user `ann` lacks the `admin` grant"),
        "{r}"
    );
    // Missing room, bad `since`.
    let r = get(srv.addr, &format!("/report?token={admin}"), "").await;
    assert_eq!(status(&r), "HTTP/1.1 400 Bad Request", "{r}");
    assert!(body(&r).contains("`room` is missing"), "{r}");
    let r = get(
        srv.addr,
        &format!("/report?room=rep&since=yesterday&token={admin}"),
        "",
    )
    .await;
    assert_eq!(status(&r), "HTTP/1.1 400 Bad Request", "{r}");
    assert!(
        body(&r).contains("invalid `since` value `yesterday`"),
        "{r}"
    );

    // OK, with the header and with the query parameter: the rendered report.
    for (path, header) in [
        (
            "/report?room=rep".to_owned(),
            format!("Authorization: Bearer {admin}\r\n"),
        ),
        (
            format!("/report?room=rep&since=1h&token={admin}"),
            String::new(),
        ),
    ] {
        let r = get(srv.addr, &path, &header).await;
        assert_eq!(status(&r), "HTTP/1.1 200 OK", "{r}");
        assert!(r.contains("Content-Type: text/html"), "{r}");
        let html = body(&r);
        assert!(html.contains("Streamwire performance report: room rep"));
        assert!(html.contains("<figure data-metric=\"Bitrate\"><svg"));
        assert!(html.contains("<td>peer2/video-recv-1</td><td>bitrate</td><td>10</td>"));
    }
    // An admin token for a room without telemetry.
    let empty = common::token("quiet", "ops", &[Grant::Admin]);
    let r = get(srv.addr, &format!("/report?room=quiet&token={empty}"), "").await;
    assert_eq!(status(&r), "HTTP/1.1 404 Not Found", "{r}");
    assert!(body(&r).contains("no telemetry for room \"quiet\""), "{r}");

    // A server without a telemetry store.
    let bare = common::start(common::config()).await;
    let r = get(bare.addr, &format!("/report?room=rep&token={admin}"), "").await;
    assert_eq!(status(&r), "HTTP/1.1 404 Not Found", "{r}");
    assert!(
        body(&r).contains("keeps no telemetry (start it with --db)"),
        "{r}"
    );
}

fn feedback_rows(db: &std::path::Path) -> Vec<(String, i64, Option<String>)> {
    let c = rusqlite::Connection::open(db).unwrap();
    c.prepare(
        "SELECT s.user_id, f.rating, f.comment FROM feedback f JOIN sessions s ON s.id = f.session_id",
    )
    .unwrap()
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[tokio::test]
async fn page_sends_feedback_and_links_to_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let mut cfg = common::config();
    cfg.telemetry = Some(TelemetryConfig::new(db.clone()));
    let srv = common::start(cfg).await;
    seed(&srv.url, "fb", "ann").await;

    let token = common::token("fb", "web", &common::all());
    let mut b = Browser::launch().await;
    b.goto(&browser_support::page_url(
        srv.addr, "fb", &token, "Web", false,
    ))
    .await;
    b.wait_for(
        "browser joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    b.wait_for(
        "feedback form shown",
        "!document.getElementById('feedback').hidden && !document.getElementById('report').hidden",
        LONG,
    )
    .await;
    // Nothing is stored before the user sends anything.
    assert!(feedback_rows(&db).is_empty());

    // Submitting without a rating is refused on the page; nothing is sent.
    b.eval("document.getElementById('fbsend').click()").await;
    b.wait_for(
        "rating asked for",
        "document.getElementById('fbstatus').textContent.includes('Pick a rating')",
        LONG,
    )
    .await;
    // The client API checks the rating before sending.
    let err = b
        .eval(
            "window.streamwireApp.client.sendFeedback(9).then(() => null, (e) => ({code: e.code, field: e.field}))",
        )
        .await;
    assert_eq!(err, json!({"code": "invalid_field", "field": "rating"}));
    assert!(feedback_rows(&db).is_empty());

    // The user picks 4 stars, writes a comment and sends.
    b.eval(
        "document.querySelector('#rating input[value=\"4\"]').click();
         document.getElementById('comment').value = 'crisp video, some echo';
         document.getElementById('fbsend').click();",
    )
    .await;
    let st = b
        .wait_for(
            "feedback acknowledged",
            "window.streamwireApp.feedback && document.getElementById('fbstatus').textContent",
            LONG,
        )
        .await;
    assert_eq!(st, json!("Thank you, feedback sent."));
    assert_eq!(
        feedback_rows(&db),
        [(
            "web".to_owned(),
            4,
            Some("crisp video, some echo".to_owned())
        )]
    );
    b.screenshot(&output_dir().join("telemetry-feedback.png"))
        .await;

    // Follow the report link: the room's report, rendered by the server from its store.
    let href = b
        .eval("document.getElementById('report').href")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        href.starts_with(&format!("http://{}/report?room=fb&token=", srv.addr)),
        "{href}"
    );
    b.goto(&href).await;
    let title = b
        .wait_for(
            "report page",
            // Fully parsed (a large report arrives and is parsed progressively).
            "document.readyState === 'complete' && document.querySelector('figure[data-metric=\"Bitrate\"] svg') && document.querySelector('h1').textContent",
            LONG,
        )
        .await;
    assert_eq!(title, json!("Streamwire performance report: room fb"));
    let charts = b
        .eval("[...document.querySelectorAll('figure')].map((f) => f.dataset.metric)")
        .await;
    for m in [
        "Bitrate",
        "Frames per second",
        "Round-trip time",
        "Quality score",
    ] {
        assert!(
            charts.as_array().unwrap().contains(&json!(m)),
            "{m} not in {charts}"
        );
    }
    b.screenshot(&output_dir().join("telemetry-report.png"))
        .await;
}
