//! Helpers of the whiteboard panel tests (web_whiteboard, web_whiteboard_tools): a Chromium
//! page in the call with its board synced, real mouse and keyboard input, canvas probes, and
//! a Rust member of the board.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::json;
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::Grant;
use streamwire::whiteboard::Whiteboard;

use crate::browser_support::{Browser, page_url};
use crate::common;

pub const LONG: Duration = Duration::from_secs(45);

/// The room of these tests.
pub const ROOM: &str = "wbr";

/// A page of `user` in the call of room `ROOM`, with the whiteboard panel open and synced.
pub async fn open(srv: &common::TestServer, user: &str, grants: &[Grant]) -> Browser {
    let mut b = Browser::launch().await;
    let token = common::token(ROOM, user, grants);
    b.goto(&page_url(srv.addr, ROOM, &token, user, false)).await;
    b.wait_for(
        &format!("{user} in the call"),
        "window.streamwireApp?.view === 'call' && window.streamwireApp.client.state === 'joined'",
        LONG,
    )
    .await;
    // The board is mounted and synced when its panel is first opened.
    b.click("#wb-btn").await;
    b.wait_for(
        &format!("{user}'s board synced"),
        "window.streamwireApp.whiteboard?.board.synced === true",
        LONG,
    )
    .await;
    b
}

/// The canvas's top left in CSS pixels of the viewport.
async fn origin(b: &mut Browser) -> (f64, f64) {
    let r = b
        .eval("(() => { const r = document.querySelector('.wb-canvas').getBoundingClientRect(); return [r.x, r.y]; })()")
        .await;
    (
        r[0].as_f64().expect("canvas x"),
        r[1].as_f64().expect("canvas y"),
    )
}

/// Press, drag through `points` (CSS pixels relative to the canvas) and release, with real
/// mouse input.
pub async fn drag(b: &mut Browser, points: &[(f64, f64)]) {
    let (ox, oy) = origin(b).await;
    let ev = |kind: &str, (x, y): (f64, f64)| json!({"type": kind, "x": ox + x, "y": oy + y, "button": "left", "buttons": 1, "clickCount": 1});
    b.cmd("Input.dispatchMouseEvent", ev("mouseMoved", points[0]))
        .await;
    b.cmd("Input.dispatchMouseEvent", ev("mousePressed", points[0]))
        .await;
    for p in &points[1..] {
        b.cmd("Input.dispatchMouseEvent", ev("mouseMoved", *p))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.cmd(
        "Input.dispatchMouseEvent",
        ev("mouseReleased", *points.last().expect("a point")),
    )
    .await;
}

/// A straight drag from `a` to `b` in 10 steps.
pub async fn line(b: &mut Browser, from: (f64, f64), to: (f64, f64)) {
    let pts: Vec<(f64, f64)> = (0..=10)
        .map(|i| {
            let t = f64::from(i) / 10.0;
            (from.0 + (to.0 - from.0) * t, from.1 + (to.1 - from.1) * t)
        })
        .collect();
    drag(b, &pts).await;
}

/// One key with modifiers (CDP: 2 Ctrl, 8 Shift) on the focused element, e.g. Ctrl+Z.
pub async fn key(b: &mut Browser, key: &str, code: &str, vk: u32, modifiers: u32) {
    for kind in ["rawKeyDown", "keyUp"] {
        b.cmd(
            "Input.dispatchKeyEvent",
            json!({"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": vk, "modifiers": modifiers}),
        )
        .await;
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Dark pixels of the canvas around CSS point (x, y) (radius 6 px).
pub const DARK_AT: &str = "((x, y) => { const c = document.querySelector('.wb-canvas'); const k = c.width / c.getBoundingClientRect().width;
    const d = c.getContext('2d').getImageData(Math.round((x - 6) * k), Math.round((y - 6) * k), Math.round(12 * k), Math.round(12 * k)).data;
    let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128 && d[i + 1] < 128 && d[i + 2] < 128) n++; return n; })";

/// A Rust member of board `main` of `ROOM` (its frames fed to it by a task), synced.
pub async fn rust_member(srv: &common::TestServer, user: &str, grants: &[Grant]) -> Whiteboard {
    let cfg = ClientConfig::new(&srv.url, ROOM, &common::token(ROOM, user, grants));
    let (client, mut events) = common::within(user, Client::connect(cfg))
        .await
        .expect("connect");
    let wb = Whiteboard::open(&client, "main", user).expect("open the board");
    let w2 = wb.clone();
    tokio::spawn(async move {
        // Keeps the client alive as long as the task runs.
        let _client = client;
        while let Some(ev) = events.recv().await {
            if let Event::Whiteboard { data, .. } = ev {
                w2.receive(&data).expect("a board message");
            }
        }
    });
    common::within(&format!("{user} synced"), wb.synced()).await;
    wb
}
