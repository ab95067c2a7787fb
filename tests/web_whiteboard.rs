//! The whiteboard panel in real Chromium: a stroke drawn with the mouse in one page reaches a
//! Rust member and is painted in another page; the Rust member's stroke reaches both pages;
//! all three end with the same document (canonical state vectors); a member without the
//! `draw` grant sees the board but cannot change it; a board of the shape before the packed
//! one (every attribute an entry of the item's map) is read and painted by the page.
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test web_whiteboard'

mod browser_support;
mod common;
mod web_whiteboard_support;
mod whiteboard_support;

use std::time::Duration;

use gststreamwire::whiteboard::Item;
use serde_json::json;
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::Grant;
use streamwire::whiteboard::Whiteboard;
use web_whiteboard_support::{DARK_AT, LONG, drag, hex, open, rust_member};
use whiteboard_support::member;

#[tokio::test]
async fn a_stroke_drawn_in_one_page_reaches_a_rust_member_and_another_page() {
    let srv = common::start(common::config()).await;
    let mut a = open(&srv, "ann", &[Grant::Draw, Grant::Subscribe]).await;
    let mut v = open(&srv, "vic", &[Grant::Subscribe]).await;
    // The Rust member.
    let client = member(&srv.url, "wbr", "bot", &[Grant::Draw]).await;
    let bot = client.board.clone();

    // Ann draws with the mouse.
    let path: Vec<(f64, f64)> = (0..=10).map(|i| (40.0 + 20.0 * i as f64, 60.0)).collect();
    drag(&mut a, &path).await;
    let deadline = tokio::time::Instant::now() + LONG;
    let stroke = loop {
        let items = bot.items(None);
        if let Some(s) = items
            .iter()
            .find(|i| i.author == "ann" && i.points.len() >= 10)
        {
            break s.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot never got ann's stroke: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stroke.kind.as_str(), "pen");
    assert_eq!(stroke.page, "p1");
    // Left to right along one line: the board coordinates grow in x, stay in y.
    let (first, last) = (stroke.points[0], *stroke.points.last().unwrap());
    assert!(last[0] > first[0] + 100.0, "{first:?} -> {last:?}");
    assert!((last[1] - first[1]).abs() < 1.0, "{first:?} -> {last:?}");

    // The viewer's page paints it where ann drew it (both canvases have the same size).
    v.wait_for(
        "the viewer paints ann's stroke",
        &format!("{DARK_AT}(140, 60) > 3"),
        LONG,
    )
    .await;
    assert_eq!(v.eval(&format!("{DARK_AT}(140, 200)")).await, json!(0));

    // The bot draws; both pages get it.
    bot.draw(&Item::pen(
        "bot-1",
        "p1",
        "",
        "#000000",
        6.0,
        &[[200.0, 600.0, 0.5], [1200.0, 600.0, 0.5]],
    ))
    .unwrap();
    for (who, b) in [("ann", &mut a), ("vic", &mut v)] {
        b.wait_for(
            &format!("{who} has both strokes"),
            "window.streamwireApp.whiteboard.board.itemList().length === 2",
            LONG,
        )
        .await;
    }

    // The viewer cannot draw: the tools are disabled, and a change it makes anyway is refused
    // by the server and reaches nobody.
    assert_eq!(
        v.eval("document.querySelector('.wb-bar [data-tool=pen]').disabled")
            .await,
        json!(true)
    );
    v.eval("(() => { const b = window.streamwireApp.whiteboard.board; b.startStroke('p1', 'pen', '#000000', 4, [1, 1, 0.5]); })()")
        .await;
    v.wait_for(
        "the viewer's change is refused",
        "window.streamwireApp.whiteboard.board.errors.some(e => e.code === 'forbidden')",
        LONG,
    )
    .await;

    // Ann, the bot and the server hold the same document (a late Rust joiner checks the
    // server's copy): equal canonical state vectors.
    let late_client = member(&srv.url, "wbr", "late", &[Grant::Subscribe]).await;
    let late = late_client.board.clone();
    assert_eq!(
        late.items(None).len(),
        2,
        "the viewer's stroke is not on the server"
    );
    let want = hex(&late.state_vector());
    assert_eq!(hex(&bot.state_vector()), want);
    a.wait_for(
        "ann's state vector equals the server's",
        &format!("window.streamwireApp.whiteboard.board.stateVectorHex() === '{want}'"),
        LONG,
    )
    .await;
    a.assert_no_console_errors().await;
}

/// A board larger than the default signalling queue limit (4 MiB) reaches a browser that
/// joins late, in sync chunks, and the page holds the same document as the Rust member.
#[tokio::test]
async fn a_browser_joining_late_gets_a_board_larger_than_the_queue_limit() {
    let cfg = common::config();
    let queue = cfg.limits.max_queue_bytes;
    let srv = common::start(cfg).await;
    let client = member(&srv.url, "wbr", "bot", &[Grant::Draw]).await;
    let bot = client.board.clone();
    // 13,000 strokes of 16 points (about 4.8 MB), in updates of 100 (under max_payload_bytes).
    let n = 13_000;
    for start in (0..n).step_by(100) {
        let batch: Vec<Item> = (start..start + 100)
            .map(|i| {
                let (x, y) = ((i % 1500) as f32, ((i / 1500) % 800) as f32);
                let pts: Vec<[f32; 3]> = (0..16)
                    .map(|k| [x + k as f32 * 3.0, y + k as f32 * 2.0, 0.5])
                    .collect();
                Item::pen(&format!("s{i}"), "p1", "", "#1f1f1f", 3.0, &pts)
            })
            .collect();
        bot.draw_all(&batch);
        tokio::task::yield_now().await;
    }
    let doc = bot.encode_state().len();
    assert!(doc > queue, "document {doc} bytes, queue limit {queue}");
    // The server holds every stroke once a fresh Rust member sees them all.
    let check_cfg = ClientConfig::new(
        &srv.url,
        "wbr",
        &common::token("wbr", "check", &[Grant::Subscribe]),
    );
    let (check_client, mut check_events) = common::within("check", Client::connect(check_cfg))
        .await
        .unwrap();
    let check = Whiteboard::open(&check_client, "main", "check").unwrap();
    let c2 = check.clone();
    tokio::spawn(async move {
        while let Some(ev) = check_events.recv().await {
            if let Event::Whiteboard { data, .. } = ev {
                c2.receive(&data).unwrap();
            }
        }
    });
    let deadline = tokio::time::Instant::now() + LONG;
    while check.items(None).len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server has {} of {n} strokes",
            check.items(None).len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut v = open(&srv, "vic", &[Grant::Subscribe]).await;
    let want = hex(&bot.state_vector());
    v.wait_for(
        "the browser holds the whole board",
        &format!(
            "window.streamwireApp.whiteboard.board.items.size === {n} && window.streamwireApp.whiteboard.board.stateVectorHex() === '{want}'"
        ),
        LONG,
    )
    .await;
    v.assert_no_console_errors().await;
    drop((client, check_client));
}

/// Items written in the shape before the packed one (as saved boards hold them) reach a page
/// that reads them with their attributes and paints them.
#[tokio::test]
async fn a_page_reads_and_paints_items_of_the_shape_before() {
    use yrs::{ArrayPrelim, Map, MapPrelim, Transact};
    let srv = common::start(common::config()).await;
    let bot = rust_member(&srv, "bot", &[Grant::Draw]).await;
    {
        let items = bot.doc().get_or_insert_map("items");
        let mut t = bot.doc().transact_mut();
        // A black stroke across the middle of the page, 40 board units wide.
        let stroke: Vec<(&str, yrs::In)> = vec![
            ("page", "p1".into()),
            ("kind", "pen".into()),
            ("color", "#000000".into()),
            ("width", 40.0.into()),
            ("author", "bot".into()),
            ("z", 1.0.into()),
            (
                "pts",
                ArrayPrelim::from(vec![0.0, 450.0, 0.5, 1600.0, 450.0, 0.5]).into(),
            ),
        ];
        items.insert(&mut t, "old-s", MapPrelim::from_iter(stroke));
        let text: Vec<(&str, yrs::In)> = vec![
            ("page", "p1".into()),
            ("kind", "text".into()),
            ("color", "#0000ff".into()),
            ("width", 1.0.into()),
            ("author", "bot".into()),
            ("z", 2.0.into()),
            ("x1", 100.0.into()),
            ("y1", 100.0.into()),
            ("text", "old".into()),
            ("size", 24.0.into()),
        ];
        items.insert(&mut t, "old-t", MapPrelim::from_iter(text));
    }
    let mut v = open(&srv, "vic", &[Grant::Subscribe]).await;
    v.wait_for(
        "the page has both items",
        "window.streamwireApp.whiteboard.board.itemList('p1').length === 2",
        LONG,
    )
    .await;
    let got = v
        .eval(
            "window.streamwireApp.whiteboard.board.itemList('p1').map(({ id, kind, author, width, pts, text, size, x1 }) => ({ id, kind, author, width, pts, text, size, x1 }))",
        )
        .await;
    assert_eq!(
        got,
        json!([
            {"id": "old-s", "kind": "pen", "author": "bot", "width": 40, "pts": [0, 450, 0.5, 1600, 450, 0.5]},
            {"id": "old-t", "kind": "text", "author": "bot", "width": 1, "text": "old", "size": 24, "x1": 100},
        ])
    );
    // The page is fitted into the canvas, centred: the stroke crosses the canvas's centre.
    v.wait_for(
        "the old stroke is painted",
        &format!(
            "(() => {{ const r = document.querySelector('.wb-canvas').getBoundingClientRect(); return {DARK_AT}(r.width / 2, r.height / 2) > 50; }})()"
        ),
        LONG,
    )
    .await;
    v.assert_no_console_errors().await;
}
