//! The whiteboard panel's pages and view in real Chromium pages against the real server:
//! add, reorder and delete pages, following the presenter's page with an opt-out, clearing a
//! page (the presenter only: the server refuses it to a member), zoom and pan, and the panel
//! at phone width.
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test web_whiteboard_pages'

mod browser_support;
mod common;
mod web_whiteboard_support;

use browser_support::Browser;
use serde_json::{Value, json};
use streamwire::signalling::protocol::Grant;
use web_whiteboard_support::{LONG, drag, line, open, rust_member};

const PAGES: &str = "window.streamwireApp.whiteboard.board.pageList().map(p => p.id)";
const SHOWN: &str = "window.streamwireApp.whiteboard.page";

async fn pages(b: &mut Browser) -> Value {
    b.eval(PAGES).await
}

async fn wait_pages(b: &mut Browser, who: &str, want: &Value) {
    b.wait_for(
        &format!("{who}'s pages are {want}"),
        &format!(
            "JSON.stringify({PAGES}) === {}",
            serde_json::to_string(&want.to_string()).expect("json")
        ),
        LONG,
    )
    .await;
}

async fn wait_shown(b: &mut Browser, who: &str, page: &Value) {
    b.wait_for(
        &format!("{who} shows {page}"),
        &format!("{SHOWN} === {page}"),
        LONG,
    )
    .await;
}

#[tokio::test]
async fn pages_are_added_followed_reordered_and_deleted() {
    let srv = common::start(common::config()).await;
    // Ann presents (`admin`); bob draws.
    let mut a = open(&srv, "ann", &[Grant::Admin, Grant::Draw, Grant::Subscribe]).await;
    let mut b = open(&srv, "bob", &[Grant::Draw, Grant::Subscribe]).await;
    assert_eq!(
        a.eval("document.querySelector('.wb-follow').hidden").await,
        json!(true),
        "the presenter follows nobody"
    );
    // Bob may not delete or move the server's first page.
    for action in ["delete-page", "page-earlier", "page-later"] {
        assert_eq!(
            b.eval(&format!(
                "document.querySelector('.wb-bar [data-action={action}]').disabled"
            ))
            .await,
            json!(true),
            "{action}"
        );
    }

    // Ann adds a page and turns to it: bob follows.
    a.click(".wb-bar [title='Add a page']").await;
    let two = pages(&mut a).await;
    let p2 = two[1].clone();
    assert_eq!(a.eval(SHOWN).await, p2);
    wait_pages(&mut b, "bob", &two).await;
    wait_shown(&mut b, "bob", &p2).await;
    // Back to page 1: bob follows again.
    a.click(".wb-bar [title='Previous page']").await;
    wait_shown(&mut b, "bob", &json!("p1")).await;

    // Bob opts out: ann's next page turn leaves bob where he is.
    b.click(".wb-follow input").await;
    a.click(".wb-bar [title='Next page']").await;
    a.wait_for("ann on page 2", &format!("{SHOWN} === {p2}"), LONG)
        .await;
    // Bob is on page 1 still after ann's state has reached him.
    b.wait_for(
        "bob knows ann's page",
        &format!("window.streamwireApp.whiteboard.board.presence.presenterPage() === {p2}"),
        LONG,
    )
    .await;
    assert_eq!(b.eval(SHOWN).await, json!("p1"));
    // Opting in again follows at once.
    b.click(".wb-follow input").await;
    wait_shown(&mut b, "bob", &p2).await;

    // Ann moves page 2 before page 1: both see the new order.
    a.click(".wb-bar [data-action=page-earlier]").await;
    let swapped = json!([p2, "p1"]);
    wait_pages(&mut a, "ann", &swapped).await;
    wait_pages(&mut b, "bob", &swapped).await;

    // A member's own page: bob adds one, then deletes it (allowed: his, empty).
    b.click(".wb-follow input").await;
    b.click(".wb-bar [title='Add a page']").await;
    let three = pages(&mut b).await;
    assert_eq!(three.as_array().map(Vec::len), Some(3));
    wait_pages(&mut a, "ann", &three).await;
    b.click(".wb-bar [data-action=delete-page]").await;
    wait_pages(&mut a, "ann", &swapped).await;
    wait_pages(&mut b, "bob", &swapped).await;

    // Bob deleting the server's page anyway is refused by the server: ann keeps it.
    b.eval("window.streamwireApp.whiteboard.board.deletePage('p1')")
        .await;
    b.wait_for(
        "bob's deletion is refused",
        "window.streamwireApp.whiteboard.board.errors.some(e => e.code === 'forbidden')",
        LONG,
    )
    .await;
    assert_eq!(pages(&mut a).await, swapped);

    // The presenter deletes page 2 (with a stroke of bob's on it): gone for everyone.
    a.wait_for("ann on page 2", &format!("{SHOWN} === {p2}"), LONG)
        .await;
    b.eval(&format!(
        "window.streamwireApp.whiteboard.board.startStroke({p2}, 'pen', '#000000', 4, [10, 10, 0.5])"
    ))
    .await;
    a.wait_for(
        "ann has bob's stroke",
        "window.streamwireApp.whiteboard.board.itemList().length === 1",
        LONG,
    )
    .await;
    a.click(".wb-bar [data-action=delete-page]").await;
    wait_pages(&mut a, "ann", &json!(["p1"])).await;
    let server = rust_member(&srv, "late", &[Grant::Subscribe]).await;
    assert_eq!(server.pages().len(), 1);
    assert!(server.items(None).is_empty());
    wait_shown(&mut a, "ann", &json!("p1")).await;
    a.assert_no_console_errors().await;
}

#[tokio::test]
async fn only_the_presenter_clears_a_page() {
    let srv = common::start(common::config()).await;
    let mut a = open(&srv, "ann", &[Grant::Admin, Grant::Draw, Grant::Subscribe]).await;
    let mut b = open(&srv, "bob", &[Grant::Draw, Grant::Subscribe]).await;
    line(&mut a, (40.0, 60.0), (240.0, 60.0)).await;
    line(&mut b, (40.0, 120.0), (240.0, 120.0)).await;
    for (who, p) in [("ann", &mut a), ("bob", &mut b)] {
        p.wait_for(
            &format!("{who} has both strokes"),
            "window.streamwireApp.whiteboard.board.itemList().length === 2",
            LONG,
        )
        .await;
    }
    assert_eq!(
        b.eval("document.querySelector('.wb-bar [title^=\"Remove everything\"]').disabled")
            .await,
        json!(true)
    );
    // Bob clearing anyway (ann's stroke is on the page): refused, nothing changes elsewhere.
    b.eval("window.streamwireApp.whiteboard.board.clearPage('p1')")
        .await;
    b.wait_for(
        "bob's clear is refused",
        "window.streamwireApp.whiteboard.board.errors.some(e => e.code === 'forbidden')",
        LONG,
    )
    .await;
    let server = rust_member(&srv, "late", &[Grant::Subscribe]).await;
    assert_eq!(server.items(None).len(), 2);
    // The presenter's clear empties the page for everyone.
    a.click(".wb-bar [title^='Remove everything']").await;
    a.wait_for(
        "ann's page is empty",
        "window.streamwireApp.whiteboard.board.itemList().length === 0",
        LONG,
    )
    .await;
    let deadline = tokio::time::Instant::now() + LONG;
    while !server.items(None).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server still has {:?}",
            server.items(None)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    a.assert_no_console_errors().await;
}

/// The board point under CSS point (x, y) of the canvas, as the panel maps it now: a pen dot
/// drawn there with a real click, read back from the board.
async fn dot(b: &mut Browser, x: f64, y: f64) -> (f64, f64) {
    let before = b
        .eval("window.streamwireApp.whiteboard.board.itemList().length")
        .await;
    drag(b, &[(x, y)]).await;
    let it = b
        .wait_for(
            "the dot",
            &format!("(() => {{ const l = window.streamwireApp.whiteboard.board.itemList(); return l.length > {before} && l.at(-1).pts; }})()"),
            LONG,
        )
        .await;
    (it[0].as_f64().expect("x"), it[1].as_f64().expect("y"))
}

#[tokio::test]
async fn zoom_and_pan_map_the_pointer_to_the_right_board_point_and_the_panel_fits_a_phone() {
    let srv = common::start(common::config()).await;
    let mut a = open(&srv, "ann", &[Grant::Draw, Grant::Subscribe]).await;
    let size = a
        .eval("(() => { const r = document.querySelector('.wb-canvas').getBoundingClientRect(); return [r.width, r.height]; })()")
        .await;
    let (w, h) = (size[0].as_f64().expect("w"), size[1].as_f64().expect("h"));
    let s0 = w / 1600.0; // CSS pixels per board unit at zoom 1 (the canvas is 16:9)
    let near = |got: (f64, f64), want: (f64, f64)| {
        assert!(
            (got.0 - want.0).abs() < 1.5 && (got.1 - want.1).abs() < 1.5,
            "board point {got:?}, expected {want:?}"
        );
    };
    // Zoom 1: the page fills the canvas.
    near(dot(&mut a, 100.0, 100.0).await, (100.0 / s0, 100.0 / s0));
    // Zoom in twice (1.25 each) about the centre: (100, 100) is now nearer the centre.
    a.click(".wb-bar [data-action=zoom-in]").await;
    a.click(".wb-bar [data-action=zoom-in]").await;
    let z = 1.25 * 1.25;
    assert_eq!(
        a.eval("window.streamwireApp.whiteboard.zoom").await,
        json!(z)
    );
    let want = |cx: f64, cy: f64, x: f64, y: f64| {
        (cx + (x - w / 2.0) / (s0 * z), cy + (y - h / 2.0) / (s0 * z))
    };
    near(
        dot(&mut a, 100.0, 100.0).await,
        want(800.0, 450.0, 100.0, 100.0),
    );
    // Pan with the pan tool: drag the page 100 px left, so the view moves right.
    a.click(".wb-bar [data-tool=pan]").await;
    line(&mut a, (300.0, 200.0), (200.0, 200.0)).await;
    a.click(".wb-bar [data-tool=pen]").await;
    let cx = 800.0 + 100.0 / (s0 * z);
    near(
        dot(&mut a, 100.0, 100.0).await,
        want(cx, 450.0, 100.0, 100.0),
    );
    // Fit: back to the whole page.
    a.click(".wb-bar [data-action=zoom-fit]").await;
    near(dot(&mut a, 100.0, 100.0).await, (100.0 / s0, 100.0 / s0));

    // Phone width: the toolbar wraps, nothing is wider than the screen, and a touch draws.
    a.set_viewport(390, 844, true).await;
    a.wait_for(
        "the panel fits 390 px",
        "(() => { const c = document.querySelector('.wb-canvas').getBoundingClientRect(); const bar = document.querySelector('.wb-bar');
            return document.documentElement.scrollWidth <= 390 && c.width > 200 && c.right <= 390 && bar.scrollWidth <= bar.clientWidth
              && [...bar.children].every(e => e.getBoundingClientRect().right <= 390); })()",
        LONG,
    )
    .await;
    let before = a
        .eval("window.streamwireApp.whiteboard.board.itemList().length")
        .await;
    let r = a
        .eval("(() => { const r = document.querySelector('.wb-canvas').getBoundingClientRect(); r.y < 0 || r.bottom > innerHeight ? document.querySelector('.wb-canvas').scrollIntoView() : 0; const q = document.querySelector('.wb-canvas').getBoundingClientRect(); return [q.x, q.y]; })()")
        .await;
    let (ox, oy) = (r[0].as_f64().unwrap_or(0.0), r[1].as_f64().unwrap_or(0.0));
    let touch = |kind: &str, x: f64| json!({"type": kind, "touchPoints": if kind == "touchEnd" { json!([]) } else { json!([{"x": ox + x, "y": oy + 40.0}]) }});
    a.cmd("Input.dispatchTouchEvent", touch("touchStart", 40.0))
        .await;
    for i in 1..=8 {
        a.cmd(
            "Input.dispatchTouchEvent",
            touch("touchMove", 40.0 + 20.0 * f64::from(i)),
        )
        .await;
    }
    a.cmd("Input.dispatchTouchEvent", touch("touchEnd", 200.0))
        .await;
    a.wait_for(
        "a touch stroke",
        &format!("(() => {{ const l = window.streamwireApp.whiteboard.board.itemList(); return l.length > {before} && l.at(-1).pts.length >= 9; }})()"),
        LONG,
    )
    .await;
    a.assert_no_console_errors().await;
}

#[tokio::test]
async fn a_late_joiner_follows_the_presenter_at_once() {
    let srv = common::start(common::config()).await;
    let mut a = open(&srv, "ann", &[Grant::Admin, Grant::Draw, Grant::Subscribe]).await;
    a.click(".wb-bar [title='Add a page']").await;
    let p2 = a.eval(SHOWN).await;
    assert_ne!(p2, json!("p1"));
    // Ann's state went out before cat was there; cat's own state makes ann send it again,
    // well before the 15 s awareness renewal.
    let mut c = open(&srv, "cat", &[Grant::Subscribe]).await;
    c.wait_for(
        "cat shows the presenter's page",
        &format!("{SHOWN} === {p2}"),
        std::time::Duration::from_secs(5),
    )
    .await;
    c.assert_no_console_errors().await;
}
