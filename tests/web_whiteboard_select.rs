//! The whiteboard panel's select and area-erase tools in real Chromium pages against the real
//! server: a member selects (click or area) and moves or deletes only its own items, the move
//! reaches the others and the server as the item's offset, undo brings deleted items back;
//! the area eraser removes the own items in the area and leaves the others'.
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test web_whiteboard_select'

mod browser_support;
mod common;
mod web_whiteboard_support;

use std::time::Duration;

use browser_support::Browser;
use serde_json::{Value, json};
use streamwire::signalling::protocol::Grant;
use streamwire::whiteboard::Whiteboard;
use web_whiteboard_support::{LONG, drag, key, line, open, rust_member};

const SELECTION: &str = "JSON.stringify(window.streamwireApp.whiteboard.selection)";

/// Ids of the page's items by author, in paint order.
async fn ids_of(b: &mut Browser, author: &str) -> Vec<String> {
    let v = b
        .eval(&format!(
            "window.streamwireApp.whiteboard.board.itemList().filter(i => i.author === '{author}').map(i => i.id)"
        ))
        .await;
    serde_json::from_value(v).expect("ids")
}

async fn wait_count(b: &mut Browser, who: &str, n: usize) {
    b.wait_for(
        &format!("{who} holds {n} items"),
        &format!("window.streamwireApp.whiteboard.board.itemList().length === {n}"),
        LONG,
    )
    .await;
}

/// Poll the Rust member until `ok` holds for its items.
async fn server_until(
    wb: &Whiteboard,
    what: &str,
    ok: impl Fn(&[gststreamwire::whiteboard::Item]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let items = wb.items(None);
        if ok(&items) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: the server has {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_member_selects_moves_and_deletes_only_its_own_items() {
    let srv = common::start(common::config()).await;
    let mut a = open(&srv, "ann", &[Grant::Draw, Grant::Subscribe]).await;
    let mut b = open(&srv, "bob", &[Grant::Draw, Grant::Subscribe]).await;
    let server = rust_member(&srv, "late", &[Grant::Subscribe]).await;
    line(&mut a, (40.0, 60.0), (240.0, 60.0)).await;
    a.click(".wb-bar [data-tool=rect]").await;
    line(&mut a, (60.0, 100.0), (200.0, 160.0)).await;
    line(&mut b, (40.0, 200.0), (240.0, 200.0)).await;
    wait_count(&mut a, "ann", 3).await;
    wait_count(&mut b, "bob", 3).await;
    let ann = ids_of(&mut a, "ann").await;
    let bob = ids_of(&mut a, "bob").await;
    let w = a
        .eval("document.querySelector('.wb-canvas').getBoundingClientRect().width")
        .await
        .as_f64()
        .expect("canvas width");
    let s0 = w / 1600.0;

    // A click on bob's stroke selects nothing; a click on ann's own stroke selects it.
    a.click(".wb-bar [data-tool=select]").await;
    drag(&mut a, &[(140.0, 200.0)]).await;
    assert_eq!(a.eval(SELECTION).await, json!("[]"));
    drag(&mut a, &[(140.0, 60.0)]).await;
    assert_eq!(a.eval(SELECTION).await, json!(format!("[\"{}\"]", ann[0])));
    // Dragging it moves it 100 px right, 50 down: its offset, for everyone.
    line(&mut a, (140.0, 60.0), (240.0, 110.0)).await;
    let (dx, dy) = (100.0 / s0, 50.0 / s0);
    let id = ann[0].clone();
    server_until(&server, "the move", |items| {
        items.iter().any(|i| {
            i.id == id
                && (f64::from(i.offset[0]) - dx).abs() < 1.5
                && (f64::from(i.offset[1]) - dy).abs() < 1.5
        })
    })
    .await;
    b.wait_for(
        "bob has the moved stroke",
        &format!(
            "(() => {{ const i = window.streamwireApp.whiteboard.board.itemList().find(i => i.id === '{id}'); return i && Math.abs(i.dx - {dx}) < 1.5 && Math.abs(i.dy - {dy}) < 1.5; }})()"
        ),
        LONG,
    )
    .await;

    // An area over the whole page selects ann's two items only; Delete removes them.
    drag(&mut a, &[(5.0, 5.0)]).await; // empty spot: clears the selection
    line(&mut a, (5.0, 5.0), (600.0, 300.0)).await;
    let sel: Vec<String> =
        serde_json::from_str(a.eval(SELECTION).await.as_str().expect("json")).expect("ids");
    let mut want = ann.clone();
    want.sort();
    let mut got = sel.clone();
    got.sort();
    assert_eq!(got, want);
    key(&mut a, "Delete", "Delete", 46, 0).await;
    wait_count(&mut b, "bob", 1).await;
    assert_eq!(ids_of(&mut b, "bob").await, bob);
    server_until(&server, "the deletion", |items| {
        items.len() == 1 && items[0].id == bob[0]
    })
    .await;

    // One undo brings both back (one action), the moved stroke where it was moved to.
    key(&mut a, "z", "KeyZ", 90, 2).await;
    wait_count(&mut b, "bob", 3).await;
    server_until(&server, "the undo", |items| {
        items.len() == 3
            && items
                .iter()
                .any(|i| i.id == id && (f64::from(i.offset[0]) - dx).abs() < 1.5)
    })
    .await;
    a.assert_no_console_errors().await;
}

#[tokio::test]
async fn the_area_eraser_removes_own_items_in_the_area_only() {
    let srv = common::start(common::config()).await;
    let mut a = open(&srv, "ann", &[Grant::Draw, Grant::Subscribe]).await;
    let mut b = open(&srv, "bob", &[Grant::Draw, Grant::Subscribe]).await;
    line(&mut b, (40.0, 60.0), (240.0, 60.0)).await;
    line(&mut b, (40.0, 100.0), (240.0, 100.0)).await;
    line(&mut b, (40.0, 250.0), (240.0, 250.0)).await; // outside the area
    line(&mut a, (40.0, 80.0), (240.0, 80.0)).await;
    wait_count(&mut b, "bob", 4).await;
    let bob: Vec<String> = ids_of(&mut b, "bob").await;
    let ann: Vec<String> = ids_of(&mut b, "ann").await;
    b.click(".wb-bar [data-tool=erase-area]").await;
    line(&mut b, (20.0, 40.0), (300.0, 120.0)).await;
    let left = |v: &[String]| -> Value { json!(v) };
    let want = {
        let mut w = vec![ann[0].clone(), bob[2].clone()];
        w.sort();
        w
    };
    for (who, p) in [("ann", &mut a), ("bob", &mut b)] {
        p.wait_for(
            &format!("{who} keeps ann's stroke and bob's outside the area"),
            &format!(
                "JSON.stringify(window.streamwireApp.whiteboard.board.itemList().map(i => i.id).sort()) === {}",
                serde_json::to_string(&left(&want).to_string()).expect("json")
            ),
            LONG,
        )
        .await;
    }
    assert_eq!(
        b.eval("window.streamwireApp.whiteboard.board.errors.length")
            .await,
        json!(0)
    );
    b.assert_no_console_errors().await;
}

/// A page that changes another's item anyway (as a modified client could: the panel offers
/// it only for own items) is refused by the server, and the change is undone in that page
/// too; its next own stroke still reaches the others.
#[tokio::test]
async fn a_page_that_moves_anothers_item_anyway_is_refused_and_undone() {
    let srv = common::start(common::config()).await;
    let ann = rust_member(&srv, "ann", &[Grant::Draw]).await;
    let mut r = gststreamwire::whiteboard::Item::pen(
        "ar",
        "p1",
        "",
        "#000000",
        4.0,
        &[[100.0, 100.0, 0.5], [300.0, 200.0, 0.5]],
    );
    r.kind = gststreamwire::whiteboard::Kind::Rect;
    r.points.clear();
    r.bounds = [100.0, 100.0, 300.0, 200.0];
    ann.draw(&r).unwrap();
    let mut b = open(&srv, "bob", &[Grant::Draw]).await;
    wait_count(&mut b, "bob", 1).await;
    b.eval(
        "(() => { const wb = window.streamwireApp.whiteboard.board; \
         wb.doc.transact(() => { const m = wb.items.get('ar'); m.set('dx', 40); m.set('dy', 30); }); \
         return wb.items.get('ar').get('dx'); })()",
    )
    .await;
    b.wait_for(
        "bob's page refused, its copy undone",
        "(() => { const wb = window.streamwireApp.whiteboard.board; \
         return wb.errors.length === 1 && wb.errors[0].code === 'forbidden' \
         && wb.errors[0].message.includes('user `ann`') && wb.items.get('ar').get('dx') === undefined; })()",
        LONG,
    )
    .await;
    assert_eq!(ann.items(None)[0].offset, [0.0, 0.0]);
    // Bob's own stroke after it arrives at ann (its clocks follow the undone ones).
    b.click(".wb-bar [data-tool=pen]").await;
    line(&mut b, (20.0, 300.0), (200.0, 340.0)).await;
    server_until(&ann, "bob's stroke at ann", |items| items.len() == 2).await;
    let browser_items = b
        .eval("JSON.stringify(window.streamwireApp.whiteboard.board.itemList().map(i => [i.id, i.dx ?? 0, i.dy ?? 0]).sort())")
        .await;
    let mut rust_items: Vec<(String, f32, f32)> = ann
        .items(None)
        .into_iter()
        .map(|i| (i.id, i.offset[0], i.offset[1]))
        .collect();
    rust_items.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        serde_json::from_str::<Vec<(String, f32, f32)>>(browser_items.as_str().expect("json"))
            .expect("items"),
        rust_items
    );
    assert_eq!(
        b.eval("window.streamwireApp.whiteboard.board.errors.length")
            .await,
        json!(1)
    );
}
