//! The whiteboard panel's tools in real Chromium pages against the real server: undo/redo
//! per user, line/arrow/ellipse/text tools, the laser pointer (awareness: relayed, faded,
//! rate-limited, never stored) and the export of a page as PNG and SVG and of the board as
//! PDF (checked outside the browser: parsed here, its JPEGs decoded by GStreamer's jpegdec).
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test web_whiteboard_tools'

mod browser_support;
mod common;
mod web_whiteboard_support;

use std::time::Duration;

use browser_support::Browser;
use gst::prelude::*;
use gststreamwire::whiteboard::Kind;
use serde_json::{Value, json};
use streamwire::signalling::protocol::Grant;
use web_whiteboard_support::{DARK_AT, LONG, drag, key, line, open, rust_member};

/// `[id, author, points]` of every item of the page's board, in paint order.
const ITEMS: &str = "JSON.stringify(window.streamwireApp.whiteboard.board.itemList().map(i => [i.id, i.author, (i.pts ?? []).length]))";

async fn items(b: &mut Browser) -> Vec<(String, String, u64)> {
    let s = b.eval(ITEMS).await;
    let v: Vec<(String, String, u64)> =
        serde_json::from_str(s.as_str().expect("a JSON string")).expect("items JSON");
    v
}

/// Wait until page `b` holds exactly the items `want` (ids, in paint order).
async fn wait_ids(b: &mut Browser, who: &str, want: &[String]) {
    let js = serde_json::to_string(want).expect("ids");
    b.wait_for(
        &format!("{who} holds exactly {js}"),
        &format!("JSON.stringify(window.streamwireApp.whiteboard.board.itemList().map(i => i.id)) === {}", serde_json::to_string(&js).expect("js")),
        LONG,
    )
    .await;
}

#[tokio::test]
async fn undo_takes_back_only_the_own_last_stroke_and_redo_restores_it() {
    let srv = common::start(common::config()).await;
    let mut a = open(&srv, "ann", &[Grant::Draw, Grant::Subscribe]).await;
    let mut b = open(&srv, "bob", &[Grant::Draw, Grant::Subscribe]).await;
    // Nothing to undo yet.
    assert_eq!(
        a.eval("document.querySelector('.wb-bar [data-action=undo]').disabled")
            .await,
        json!(true)
    );
    line(&mut a, (40.0, 60.0), (240.0, 60.0)).await;
    line(&mut a, (40.0, 120.0), (240.0, 120.0)).await;
    line(&mut b, (40.0, 180.0), (240.0, 180.0)).await;
    // Every stroke complete (11 points of 3 numbers) on both pages.
    for (who, p) in [("ann", &mut a), ("bob", &mut b)] {
        p.wait_for(
            &format!("{who} has the three strokes"),
            "(() => { const l = window.streamwireApp.whiteboard.board.itemList(); return l.length === 3 && l.every(i => i.pts.length === 33); })()",
            LONG,
        )
        .await;
    }
    let all = items(&mut a).await;
    assert_eq!(all, items(&mut b).await);
    let ann: Vec<String> = all
        .iter()
        .filter(|i| i.1 == "ann")
        .map(|i| i.0.clone())
        .collect();
    let bob: Vec<String> = all
        .iter()
        .filter(|i| i.1 == "bob")
        .map(|i| i.0.clone())
        .collect();
    assert_eq!((ann.len(), bob.len()), (2, 1), "{all:?}");

    // Ann presses Ctrl+Z once: her last stroke goes, on both pages and on the server; bob's
    // stroke, drawn after it, stays.
    key(&mut a, "z", "KeyZ", 90, 2).await;
    let after_undo = vec![ann[0].clone(), bob[0].clone()];
    wait_ids(&mut a, "ann", &after_undo).await;
    wait_ids(&mut b, "bob", &after_undo).await;
    let server = rust_member(&srv, "late", &[Grant::Subscribe]).await;
    let mut on_server: Vec<String> = server.items(None).into_iter().map(|i| i.id).collect();
    on_server.sort();
    let mut want = after_undo.clone();
    want.sort();
    assert_eq!(on_server, want);

    // Redo (the toolbar button) brings it back whole, with its id and every point.
    a.click(".wb-bar [data-action=redo]").await;
    for (who, p) in [("ann", &mut a), ("bob", &mut b)] {
        p.wait_for(
            &format!("{who} has ann's stroke again"),
            "window.streamwireApp.whiteboard.board.itemList().length === 3",
            LONG,
        )
        .await;
        assert_eq!(items(p).await, all, "{who}");
    }
    assert_eq!(
        a.eval("document.querySelector('.wb-bar [data-action=redo]').disabled")
            .await,
        json!(true)
    );

    // Bob's undo (the button) takes back bob's stroke only; Ctrl+Shift+Z redoes it.
    b.click(".wb-bar [data-action=undo]").await;
    wait_ids(&mut a, "ann", &ann).await;
    wait_ids(&mut b, "bob", &ann).await;
    key(&mut b, "Z", "KeyZ", 90, 2 | 8).await;
    let ids: Vec<String> = all.iter().map(|i| i.0.clone()).collect();
    wait_ids(&mut a, "ann", &ids).await;
    a.assert_no_console_errors().await;
    b.assert_no_console_errors().await;
}

#[tokio::test]
async fn line_arrow_ellipse_and_text_tools_draw_for_everyone() {
    let srv = common::start(common::config()).await;
    let mut a = open(&srv, "ann", &[Grant::Draw, Grant::Subscribe]).await;
    let mut v = open(&srv, "vic", &[Grant::Subscribe]).await;
    let bot = rust_member(&srv, "bot", &[Grant::Subscribe]).await;
    // A wide line (12 board units; text then 8 × 12 = 96 high), set on the toolbar's slider.
    a.eval("(() => { const w = document.querySelector('.wb-bar input[type=range]'); w.value = '12'; w.dispatchEvent(new Event('input')); })()")
        .await;

    for (tool, from, to) in [
        ("line", (40.0, 40.0), (200.0, 80.0)),
        ("arrow", (40.0, 120.0), (200.0, 120.0)),
        ("ellipse", (240.0, 40.0), (340.0, 120.0)),
    ] {
        a.click(&format!(".wb-bar [data-tool={tool}]")).await;
        line(&mut a, from, to).await;
    }
    // A text box: click with the text tool, type, Enter.
    a.click(".wb-bar [data-tool=text]").await;
    drag(&mut a, &[(300.0, 200.0)]).await;
    a.wait_for(
        "the text editor has the focus",
        "document.activeElement?.classList.contains('wb-text')",
        LONG,
    )
    .await;
    a.cmd("Input.insertText", json!({"text": "Hello"})).await;
    a.press("Enter").await;

    let deadline = tokio::time::Instant::now() + LONG;
    let got = loop {
        let got = bot.items(None);
        if got.len() == 4 {
            break got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot has {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let kinds: Vec<Kind> = got.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, [Kind::Line, Kind::Arrow, Kind::Ellipse, Kind::Text]);
    for i in &got {
        assert_eq!(i.author, "ann");
    }
    // Shapes go from where the drag started to where it ended, left to right.
    let [x1, y1, x2, y2] = got[0].bounds;
    assert!(x2 > x1 + 100.0 && y2 > y1, "{:?}", got[0].bounds);
    let text = &got[3];
    assert_eq!(text.text, "Hello");
    assert_eq!(text.size, 96.0, "{text:?}");
    assert_eq!(got[1].width, 12.0);

    // The viewer paints the text and the arrow's barbs where ann put them.
    v.wait_for(
        "the viewer paints the text",
        &format!("{DARK_AT}(306, 208) > 3"),
        LONG,
    )
    .await;
    // A barb leaves the tip (200, 120) back at 26.6° above the shaft; the tail has none.
    let barb = |tip_x: f64| {
        format!(
            "(() => {{ const c = document.querySelector('.wb-canvas'); const r = c.getBoundingClientRect(); const h = 48 * r.width / 1600; const k = c.width / r.width;
               const d = c.getContext('2d').getImageData(Math.round(({tip_x} - 0.9 * h) * k), Math.round((120 - 0.45 * h) * k), Math.round(0.3 * h * k), Math.round(0.15 * h * k)).data;
               let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128 && d[i + 1] < 128 && d[i + 2] < 128) n++; return n; }})()"
        )
    };
    assert!(
        v.eval(&barb(200.0)).await.as_u64() > Some(3),
        "no arrow barb painted"
    );
    assert_eq!(v.eval(&barb(40.0 + 48.0)).await, json!(0));
    assert_eq!(v.eval(&format!("{DARK_AT}(120, 260)")).await, json!(0));

    // Editing the text box: the text tool on it opens the editor with its text.
    drag(&mut a, &[(304.0, 206.0)]).await;
    a.wait_for(
        "the editor holds the text",
        "document.activeElement?.classList.contains('wb-text') && document.activeElement.value === 'Hello'",
        LONG,
    )
    .await;
    a.cmd("Input.insertText", json!({"text": " world"})).await;
    a.press("Enter").await;
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let t = bot.items(None).into_iter().find(|i| i.id == text.id);
        if t.as_ref().is_some_and(|t| t.text == "Hello world") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the text box is {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.assert_no_console_errors().await;
}

/// Red pixels of the canvas around CSS point (x, y) (radius 10 px).
const RED_AT: &str = "((x, y) => { const c = document.querySelector('.wb-canvas'); const k = c.width / c.getBoundingClientRect().width;
    const d = c.getContext('2d').getImageData(Math.round((x - 10) * k), Math.round((y - 10) * k), Math.round(20 * k), Math.round(20 * k)).data;
    let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 90 && d[i + 2] < 90) n++; return n; })";

#[tokio::test]
async fn the_laser_pointer_reaches_others_fades_and_is_never_stored() {
    let srv = common::start(common::config()).await;
    let mut a = open(&srv, "ann", &[Grant::Draw, Grant::Subscribe]).await;
    // A viewer: no `draw`, yet the laser tool is on (it changes no document).
    let mut v = open(&srv, "vic", &[Grant::Subscribe]).await;
    assert_eq!(
        v.eval("document.querySelector('.wb-bar [data-tool=laser]').disabled")
            .await,
        json!(false)
    );

    a.click(".wb-bar [data-tool=laser]").await;
    let r = a
        .eval("(() => { const r = document.querySelector('.wb-canvas').getBoundingClientRect(); return [r.x, r.y]; })()")
        .await;
    let (ox, oy) = (r[0].as_f64().unwrap_or(0.0), r[1].as_f64().unwrap_or(0.0));
    let mouse = |kind: &str, x: f64, y: f64| json!({"type": kind, "x": ox + x, "y": oy + y, "button": "left", "buttons": 1, "clickCount": 1});
    a.cmd(
        "Input.dispatchMouseEvent",
        mouse("mouseMoved", 200.0, 100.0),
    )
    .await;
    a.cmd(
        "Input.dispatchMouseEvent",
        mouse("mousePressed", 200.0, 100.0),
    )
    .await;
    for i in 1..=5 {
        a.cmd(
            "Input.dispatchMouseEvent",
            mouse(
                "mouseMoved",
                200.0 + 20.0 * f64::from(i),
                100.0 + 10.0 * f64::from(i),
            ),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // Vic sees it where ann holds it (board units), painted red there.
    let mine = a
        .eval("window.streamwireApp.whiteboard.board.presence.awareness.getLocalState().laser")
        .await;
    assert!(mine.is_array(), "{mine}");
    v.wait_for(
        "vic sees ann's laser",
        &format!(
            "(() => {{ const l = window.streamwireApp.whiteboard.lasers(); return l.length === 1 && l[0].user === 'ann' && JSON.stringify([l[0].x, l[0].y]) === '{mine}'; }})()"
        ),
        LONG,
    )
    .await;
    v.wait_for(
        "vic paints the laser",
        &format!("{RED_AT}(300, 150) > 5"),
        LONG,
    )
    .await;
    // Held still, it fades out (1.5 s) and is painted no more.
    v.wait_for(
        "the laser fades",
        &format!(
            "window.streamwireApp.whiteboard.lasers().length === 0 && {RED_AT}(300, 150) === 0"
        ),
        Duration::from_secs(5),
    )
    .await;
    a.cmd(
        "Input.dispatchMouseEvent",
        mouse("mouseReleased", 300.0, 150.0),
    )
    .await;
    a.wait_for(
        "ann's laser is off",
        "window.streamwireApp.whiteboard.board.presence.awareness.getLocalState().laser === null",
        LONG,
    )
    .await;

    // At most 20 awareness updates a second leave the page, however fast the pointer moves;
    // the last position still arrives.
    let sent = a
        .eval("(async () => { const p = window.streamwireApp.whiteboard.board.presence; const s0 = p.sent; const t0 = performance.now(); let i = 0;
                 while (performance.now() - t0 < 1000) { for (let k = 0; k < 5; k++) { p.setLaser('p1', 100 + (i % 1000), 300); i++; } await new Promise(r => setTimeout(r, 4)); }
                 await new Promise(r => setTimeout(r, 120)); return [p.sent - s0, i, 100 + ((i - 1) % 1000)]; })()")
        .await;
    let (n, moves, last) = (
        sent[0].as_u64().unwrap_or(0),
        sent[1].as_u64().unwrap_or(0),
        sent[2].as_u64().unwrap_or(0),
    );
    // Far more changes than the limit lets through (5 every 4 ms; fewer on a loaded machine).
    assert!(moves >= 100, "only {moves} moves");
    // At most 20 a second over the 1.12 s, plus the first at once; and updates do flow.
    assert!(
        (5..=23).contains(&n),
        "{n} updates sent for {moves} moves in 1.1 s"
    );
    v.wait_for(
        "vic has ann's last laser position",
        &format!("window.streamwireApp.whiteboard.board.presence.seen.size === 1 && [...window.streamwireApp.whiteboard.board.presence.seen.values()][0].laser?.[0] === {last}"),
        LONG,
    )
    .await;

    // The server's document (a late joiner's copy) holds no awareness: no item, no laser.
    let late = rust_member(&srv, "late", &[Grant::Subscribe]).await;
    assert!(late.items(None).is_empty());
    let state = late.encode_state();
    assert!(
        !state.windows(5).any(|w| w == b"laser"),
        "the stored document mentions a laser"
    );
    assert_eq!(
        a.eval("window.streamwireApp.whiteboard.board.itemList().length")
            .await,
        json!(0)
    );
    a.assert_no_console_errors().await;
    v.assert_no_console_errors().await;
}

/// The objects of a PDF as this crate's exporter writes them (checked: every xref offset
/// starts its object): object number → its bytes from `N 0 obj` to `endobj`.
fn pdf_objects(pdf: &[u8]) -> Vec<(usize, Vec<u8>)> {
    assert!(pdf.starts_with(b"%PDF-1.4\n"), "no PDF header");
    // Byte offsets: the JPEG streams are binary, so search bytes, not (lossy) text.
    let sx = pdf
        .windows(10)
        .rposition(|w| w == b"startxref\n")
        .expect("startxref");
    let tail = std::str::from_utf8(&pdf[sx..]).expect("an ASCII trailer");
    assert!(tail.trim_end().ends_with("%%EOF"), "no %%EOF");
    let start: usize = tail
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("startxref offset");
    let table = std::str::from_utf8(&pdf[start..]).expect("an ASCII xref");
    assert!(table.starts_with("xref\n"), "startxref misses the xref");
    let mut lines = table.lines().skip(1);
    let count: usize = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .expect("xref count");
    assert!(table.contains(&format!("/Size {count} /Root 1 0 R")));
    let mut out = Vec::new();
    for (n, l) in lines.take(count).enumerate().skip(1) {
        let off: usize = l[..10].parse().expect("xref offset");
        let head = format!("{n} 0 obj\n");
        assert_eq!(&pdf[off..off + head.len()], head.as_bytes(), "object {n}");
        let end = pdf[off..]
            .windows(6)
            .position(|w| w == b"endobj")
            .expect("endobj");
        out.push((n, pdf[off..off + end].to_vec()));
    }
    out
}

/// The stream of a PDF object (exactly `/Length` bytes after `stream\n`).
fn pdf_stream(obj: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(obj);
    let len: usize = text
        .split("/Length ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("/Length");
    let at = obj
        .windows(7)
        .position(|w| w == b"stream\n")
        .expect("stream")
        + 7;
    assert_eq!(
        &obj[at + len..at + len + 10],
        b"\nendstream",
        "/Length is wrong"
    );
    obj[at..at + len].to_vec()
}

/// Decode a JPEG with GStreamer (jpegdec): (width, height, RGB bytes).
fn decode_jpeg(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
    gst::init().expect("gst init");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("page.jpg");
    std::fs::write(&path, jpeg).expect("write jpeg");
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false",
        path.display()
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let sink = pipeline
        .by_name("sink")
        .expect("sink")
        .downcast::<gst_app::AppSink>()
        .expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("play");
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(10))
        .expect("a decoded frame");
    let info = gst_video::VideoInfo::from_caps(sample.caps().expect("caps")).expect("video caps");
    let buf = sample
        .buffer()
        .expect("buffer")
        .map_readable()
        .expect("map");
    let (w, h, stride) = (
        info.width() as usize,
        info.height() as usize,
        info.stride()[0] as usize,
    );
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        rgb.extend_from_slice(&buf[row * stride..row * stride + w * 3]);
    }
    drop(buf);
    pipeline.set_state(gst::State::Null).expect("stop");
    (w, h, rgb)
}

#[tokio::test]
async fn a_page_exports_as_png_and_svg_and_the_board_as_pdf() {
    let srv = common::start(common::config()).await;
    let mut a = open(&srv, "ann", &[Grant::Draw, Grant::Subscribe]).await;
    line(&mut a, (40.0, 60.0), (240.0, 60.0)).await;
    a.click(".wb-bar [data-tool=rect]").await;
    line(&mut a, (300.0, 100.0), (400.0, 200.0)).await;
    a.eval(
        "window.streamwireApp.whiteboard.board.addText('p1', 900, 600, 'Hi <&>', '#d00000', 40)",
    )
    .await;
    a.wait_for(
        "three items",
        "(() => { const l = window.streamwireApp.whiteboard.board.itemList(); return l.length === 3 && l[0].pts.length === 33; })()",
        LONG,
    )
    .await;
    // The middle point of the pen stroke, in board units.
    let mid = a
        .eval("(() => { const p = window.streamwireApp.whiteboard.board.itemList()[0].pts; return [p[15], p[16]]; })()")
        .await;
    let (mx, my) = (mid[0].as_f64().expect("x"), mid[1].as_f64().expect("y"));

    // PNG: the page size, dark on the stroke, white away from it.
    let png = a
        .eval("(async () => { const blob = await window.streamwireApp.whiteboard.exportPng(); const bmp = await createImageBitmap(blob);
                 const c = new OffscreenCanvas(bmp.width, bmp.height); const g = c.getContext('2d'); g.drawImage(bmp, 0, 0);
                 const px = (x, y) => Array.from(g.getImageData(Math.round(x), Math.round(y), 1, 1).data);
                 const p = window.streamwireApp.whiteboard.board.itemList()[0].pts;
                 return { type: blob.type, w: bmp.width, h: bmp.height, on: px(p[15], p[16]), off: px(800, 850) }; })()")
        .await;
    assert_eq!(png["type"], json!("image/png"));
    assert_eq!(
        (png["w"].clone(), png["h"].clone()),
        (json!(1600), json!(900))
    );
    let on: Vec<u64> = png["on"]
        .as_array()
        .expect("on")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(on[..3].iter().all(|c| *c < 100), "stroke pixel {on:?}");
    assert_eq!(png["off"], json!([255, 255, 255, 255]));

    // SVG: well-formed, one element per item, in paint order, the text escaped.
    let svg = a
        .eval("(async () => { const wb = window.streamwireApp.whiteboard; const svg = await wb.exportSvg();
                 const d = new DOMParser().parseFromString(svg, 'image/svg+xml');
                 return { error: !!d.querySelector('parsererror'), root: d.documentElement.getAttribute('viewBox'),
                          els: [...d.querySelectorAll('[data-id]')].map(e => [e.getAttribute('data-id'), e.tagName, e.textContent]),
                          items: wb.board.itemList().map(i => i.id) }; })()")
        .await;
    assert_eq!(svg["error"], json!(false), "{svg}");
    assert_eq!(svg["root"], json!("0 0 1600 900"));
    let els = svg["els"].as_array().expect("els");
    let ids: Vec<Value> = els.iter().map(|e| e[0].clone()).collect();
    assert_eq!(Value::Array(ids), svg["items"]);
    let tags: Vec<Value> = els.iter().map(|e| e[1].clone()).collect();
    assert_eq!(tags, [json!("path"), json!("rect"), json!("text")]);
    assert_eq!(els[2][2], json!("Hi <&>"));

    // PDF: a second page, then the whole board; parsed here, its JPEGs decoded by jpegdec.
    a.click(".wb-bar [title='Add a page']").await;
    a.wait_for(
        "two pages",
        "window.streamwireApp.whiteboard.board.pageList().length === 2",
        LONG,
    )
    .await;
    let bytes = a
        .eval("(async () => Array.from(await window.streamwireApp.whiteboard.exportPdf()))()")
        .await;
    let pdf: Vec<u8> = bytes
        .as_array()
        .expect("bytes")
        .iter()
        .map(|b| u8::try_from(b.as_u64().expect("a byte")).expect("a byte"))
        .collect();
    let objects = pdf_objects(&pdf);
    let text = |o: &[u8]| String::from_utf8_lossy(o).into_owned();
    assert!(text(&objects[1].1).contains("/Type /Pages /Kids [3 0 R 6 0 R] /Count 2"));
    let mut pages = Vec::new();
    for (n, o) in &objects {
        let t = text(o);
        if t.contains("/Type /Page ") {
            assert!(t.contains("/MediaBox [0 0 960 540]"), "page {n}: {t}");
        }
        if t.contains("/Subtype /Image") {
            assert!(
                t.contains("/Width 1600 /Height 900") && t.contains("/DCTDecode"),
                "{t}"
            );
            pages.push(decode_jpeg(&pdf_stream(o)));
        }
    }
    assert_eq!(pages.len(), 2);
    let px = |p: &(usize, usize, Vec<u8>), x: f64, y: f64| {
        let i = ((y.round() as usize) * p.0 + x.round() as usize) * 3;
        [p.2[i], p.2[i + 1], p.2[i + 2]]
    };
    for p in &pages {
        assert_eq!((p.0, p.1), (1600, 900));
    }
    let on = px(&pages[0], mx, my);
    assert!(on.iter().all(|c| *c < 100), "page 1 stroke pixel {on:?}");
    let off = px(&pages[0], 800.0, 850.0);
    assert!(off.iter().all(|c| *c > 240), "page 1 paper {off:?}");
    // The new page is empty: white everywhere (JPEG: nearly).
    assert!(pages[1].2.iter().all(|c| *c > 240), "page 2 is not blank");
    a.assert_no_console_errors().await;
}
