// SPDX-License-Identifier: MIT OR Apache-2.0
//! `whiteboardsrc` pixel checks: strokes of a saved update log appear where they were drawn
//! (board coordinates mapped into the frame) and from the first frame at or after the time
//! they were drawn, not before; live, a pushed update shows in the next frames; the element
//! runs from `gst-launch-1.0`.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use gst::prelude::*;
use gststreamwire::whiteboard::log::{Entry, write_entry};
use gststreamwire::whiteboard::{Item, insert_item, insert_page};
use yrs::{Doc, ReadTxn, Transact};

/// The update of one change of `doc`.
fn change(doc: &Doc, f: impl FnOnce(&mut yrs::TransactionMut)) -> Vec<u8> {
    let before = doc.transact().state_vector();
    f(&mut doc.transact_mut());
    doc.transact().encode_state_as_update_v1(&before)
}

fn stroke(id: &str, color: &str, from: [f32; 2], to: [f32; 2]) -> Item {
    Item::pen(
        id,
        "p1",
        "ann",
        color,
        24.0,
        &[[from[0], from[1], 0.5], [to[0], to[1], 0.5]],
    )
}

/// A log: the page at 0 ms, a red stroke at 500 ms, a blue one at 1000 ms.
fn write_log() -> PathBuf {
    let doc = Doc::new();
    let entries = [
        (0, change(&doc, |t| insert_page(t, "p1", 1.0, "", None))),
        (
            500,
            change(&doc, |t| {
                insert_item(t, &stroke("r", "#ff0000", [200.0, 200.0], [600.0, 200.0]))
            }),
        ),
        (
            1000,
            change(&doc, |t| {
                insert_item(t, &stroke("b", "#0000ff", [800.0, 600.0], [1200.0, 600.0]))
            }),
        ),
    ];
    // One file per call: the tests run in parallel and each removes its own log.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("wbsrc-{}-{n}.log", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    for (t_ms, update) in entries {
        write_entry(&mut f, &Entry { t_ms, update }).unwrap();
    }
    path
}

/// RGB at (x, y) of a 640x360 RGBA frame.
fn rgb(buf: &gst::Buffer, x: usize, y: usize) -> [u8; 3] {
    let map = buf.map_readable().unwrap();
    let i = (y * 640 + x) * 4;
    [map[i], map[i + 1], map[i + 2]]
}

fn is_red(p: [u8; 3]) -> bool {
    p[0] > 200 && p[1] < 60 && p[2] < 60
}

fn is_blue(p: [u8; 3]) -> bool {
    p[2] > 200 && p[0] < 60 && p[1] < 60
}

const WHITE: [u8; 3] = [255, 255, 255];

#[test]
fn strokes_appear_where_and_when_they_were_drawn() {
    support::init();
    let log = write_log();
    let mut h = gst_check::Harness::new_parse(&format!(
        "whiteboardsrc location={} ! capsfilter caps=\"video/x-raw,width=640,height=360,framerate=10/1\"",
        log.display()
    ));
    h.play();
    // 640x360 shows the 1600x900 page at scale 0.4: board (400, 200) is pixel (160, 80),
    // board (1000, 600) is pixel (400, 240).
    let mut frames = 0;
    loop {
        let Some(buf) = h
            .pull_until_eos()
            .expect("a frame or the end of the stream")
        else {
            break;
        };
        let pts = buf.pts().unwrap();
        assert_eq!(pts, gst::ClockTime::from_mseconds(100 * frames));
        let (red, blue) = (rgb(&buf, 160, 80), rgb(&buf, 400, 240));
        if pts < gst::ClockTime::from_mseconds(500) {
            assert_eq!(red, WHITE, "frame at {pts}: red stroke too early");
        } else {
            assert!(
                is_red(red),
                "frame at {pts}: no red stroke at (160, 80): {red:?}"
            );
        }
        if pts < gst::ClockTime::from_mseconds(1000) {
            assert_eq!(blue, WHITE, "frame at {pts}: blue stroke too early");
        } else {
            assert!(
                is_blue(blue),
                "frame at {pts}: no blue stroke at (400, 240): {blue:?}"
            );
        }
        // Outside the strokes: the white page.
        assert_eq!(rgb(&buf, 600, 40), WHITE, "frame at {pts}");
        // Just outside the red stroke's ends and width (24 board units = 9.6 px).
        assert_eq!(rgb(&buf, 160, 100), WHITE, "frame at {pts}");
        frames += 1;
        if frames > 40 {
            break;
        }
    }
    // The stream ends one second after the last entry (1000 ms): frames at 0..=2000 ms.
    assert!(
        (20..=21).contains(&frames),
        "{frames} frames before the end of the stream"
    );
    let _ = std::fs::remove_file(log);
}

#[test]
fn live_pushed_updates_show_in_the_next_frames() {
    support::init();
    let mut h = gst_check::Harness::new_parse(
        "whiteboardsrc name=wb is-live=true ! capsfilter caps=\"video/x-raw,width=640,height=360,framerate=30/1\"",
    );
    // A live source waits for the clock: the real one, not the harness's test clock, from a
    // base time of now (a harness is no pipeline: it would leave the base time at 0, far in
    // the clock's past, and the source would not wait at all).
    h.use_systemclock();
    if let Some(el) = h.element() {
        el.set_start_time(gst::ClockTime::NONE);
        el.set_base_time(gst::SystemClock::obtain().time());
    }
    h.play();
    let src = h
        .element()
        .and_then(|e| e.downcast::<gst::Bin>().ok())
        .and_then(|b| b.by_name("wb"))
        .expect("the whiteboardsrc");
    let first = h.pull().unwrap();
    assert_eq!(rgb(&first, 160, 80), WHITE);
    let doc = Doc::new();
    let u = change(&doc, |t| {
        insert_page(t, "p1", 1.0, "", None);
        insert_item(t, &stroke("r", "#ff0000", [200.0, 200.0], [600.0, 200.0]));
    });
    src.emit_by_name::<()>("push-update", &[&gst::glib::Bytes::from_owned(u)]);
    // Within the next two frames.
    let mut seen = false;
    for _ in 0..2 {
        if is_red(rgb(&h.pull().unwrap(), 160, 80)) {
            seen = true;
            break;
        }
    }
    assert!(seen, "the pushed stroke is not painted within two frames");
}

#[test]
fn runs_from_gst_launch_with_a_saved_log() {
    let log = write_log();
    let registry =
        std::env::temp_dir().join(format!("sw-gst-registry-wb-{}.bin", std::process::id()));
    let mut child = std::process::Command::new("gst-launch-1.0")
        .args([
            "-q",
            "whiteboardsrc",
            &format!("location={}", log.display()),
            "!",
            "video/x-raw,width=320,height=180,framerate=10/1",
            "!",
            "videoconvert",
            "!",
            "fakesink",
        ])
        .env("GST_PLUGIN_PATH", support::plugin_dir())
        .env("GST_REGISTRY", &registry)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gst-launch-1.0 did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "gst-launch-1.0 failed: {status}");
    let _ = std::fs::remove_file(log);
    let _ = std::fs::remove_file(registry);
}

/// A board saved in the shape before the packed one (every attribute an entry of the item's
/// map, docs/whiteboard.md "Model") is painted like a new one.
#[test]
fn a_board_in_the_shape_before_is_painted() {
    use yrs::{ArrayPrelim, Map, MapPrelim, WriteTxn};
    support::init();
    let doc = Doc::new();
    let u = change(&doc, |t| {
        insert_page(t, "p1", 1.0, "", None);
        let items = t.get_or_insert_map("items");
        let stroke: Vec<(&str, yrs::In)> = vec![
            ("page", "p1".into()),
            ("kind", "pen".into()),
            ("color", "#ff0000".into()),
            ("width", 24.0.into()),
            ("author", "ann".into()),
            ("z", 1.0.into()),
            (
                "pts",
                ArrayPrelim::from(vec![200.0, 200.0, 0.5, 600.0, 200.0, 0.5]).into(),
            ),
        ];
        items.insert(t, "r", MapPrelim::from_iter(stroke));
        let rect: Vec<(&str, yrs::In)> = vec![
            ("page", "p1".into()),
            ("kind", "rect".into()),
            ("color", "#0000ff".into()),
            ("width", 24.0.into()),
            ("author", "ann".into()),
            ("z", 2.0.into()),
            ("x1", 800.0.into()),
            ("y1", 400.0.into()),
            ("x2", 1200.0.into()),
            ("y2", 600.0.into()),
        ];
        items.insert(t, "b", MapPrelim::from_iter(rect));
    });
    let path = std::env::temp_dir().join(format!("wbsrc-old-{}.log", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    write_entry(&mut f, &Entry { t_ms: 0, update: u }).unwrap();
    drop(f);
    let mut h = gst_check::Harness::new_parse(&format!(
        "whiteboardsrc location={} ! capsfilter caps=\"video/x-raw,width=640,height=360,framerate=10/1\"",
        path.display()
    ));
    h.play();
    let buf = h.pull().unwrap();
    // The stroke through board (400, 200), pixel (160, 80); the rectangle's bottom edge
    // through board (1000, 600), pixel (400, 240); its inside stays white.
    assert!(is_red(rgb(&buf, 160, 80)), "{:?}", rgb(&buf, 160, 80));
    assert!(is_blue(rgb(&buf, 400, 240)), "{:?}", rgb(&buf, 400, 240));
    assert_eq!(rgb(&buf, 400, 200), WHITE);
    let _ = std::fs::remove_file(path);
}
