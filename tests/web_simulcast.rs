//! Simulcast through a real Janus: the browser client publishes its 1280×720 camera in three
//! VP8 layers in an SFU room, and the server forwards each subscriber the layer its rendered
//! size needs (docs/sfu.md, "Simulcast"):
//! - a Rust subscriber that says nothing of its size receives the full layer (decoded at
//!   1280×720);
//! - one that renders the video as a 320×180, then 640×360, then 1280×720 picture
//!   (`Session::set_rendered_size`, an `sfu_view` frame) is forwarded the quarter, the half
//!   and the full layer (`/sfu/status`) and decodes each at its size;
//! - a second browser page, a viewer with a small window, gets the layer covering its tile
//!   (the web app reports each tile's size: `setRenderedSize`).
//!
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test web_simulcast'
//! (the test re-runs itself in a namespace of its own with a veth pair: Janus gathers no ICE
//! candidates on loopback).

mod browser_support;
mod common;
mod janus_support;
mod netns_support;
mod session_support;

use std::collections::HashMap;
use std::time::Duration;

use browser_support::{Browser, page_url};
use janus_support::{Janus, on_veth};
use netns_support::isolated;
use serde_json::{Value, json};
use session_support::{Joined, join};
use streamwire::webrtc::MediaKind;

const LONG: Duration = Duration::from_secs(60);

/// The viewer page's window (CSS pixels, device scale 1): its one tile is well under 1280
/// pixels wide.
const VIEWER_WINDOW: (u32, u32) = (480, 400);

#[test]
fn browser_simulcast_layer_per_rendered_size() {
    if !isolated("browser_simulcast_layer_per_rendered_size") {
        return;
    }
    janus_support::veth();
    let janus = Janus::start("40000-40100");
    janus_support::runtime().block_on(async {
        let mut cfg = common::config();
        cfg.sfu = Some(janus.sfu_config());
        let srv = common::start(cfg).await;
        let room = "simulcast";
        let mut b = Browser::launch().await;
        let token = common::token(room, "web", &common::all());
        let url = format!("{}&res=1280x720", page_url(srv.addr, room, &token, "web", true));
        b.goto(&url).await;
        b.wait_for(
            "browser joined",
            "window.streamwireApp?.client?.state === 'joined'",
            LONG,
        )
        .await;
        let web_id = b.eval("window.streamwireApp.client.peerId").await;
        let web_id = web_id.as_str().unwrap().to_owned();
        let sdp = b
            .wait_for(
                "the browser's SFU offer",
                "window.streamwireApp.client.pcs.get('sfu-publish')?.pc.localDescription?.sdp ?? false",
                LONG,
            )
            .await;
        let sdp = sdp.as_str().unwrap();
        assert!(
            sdp.contains("a=simulcast:send h;m;l"),
            "the camera is offered in three layers: {sdp}"
        );

        let full = join(&srv.url, room, "full", None, on_veth).await;
        let thumb = join(&srv.url, room, "thumb", None, on_veth).await;
        let size = |j: &Joined| {
            let c = j.session.subscriber().counters(&web_id, MediaKind::Video);
            (c.width, c.height)
        };
        session_support::wait_for("the thumbnail subscriber decoding", LONG, || {
            size(&thumb).0 > 0
        })
        .await;
        session_support::wait_for("the full layer for a subscriber of no size", LONG, || {
            size(&full) == (1280, 720)
        })
        .await;
        // The thumbnail subscriber's rendered size picks its layer, and it decodes each.
        let thumb_id = thumb.session.peer_id().unwrap();
        let full_id = full.session.peer_id().unwrap();
        for ((w, h), want) in [
            ((320, 180), json!([0, "size"])),
            ((640, 360), json!([1, "size"])),
            ((1280, 720), json!([2, "none"])),
        ] {
            thumb.session.set_rendered_size(&web_id, w, h);
            wait_layers(&srv, room, &thumb_id, want).await;
            let switched = session_support::wait_for("the new layer decoded", LONG, || {
                size(&thumb) == (w as i32, h as i32)
            })
            .await;
            eprintln!("{w}x{h}: decoded {switched:?} after the request");
        }
        assert_eq!(layers(&srv, room).await[&full_id], json!([2, "none"]));
        assert_eq!(size(&full), (1280, 720), "the full subscriber keeps its layer");

        // A viewer page in a small window: the web app reports its tile's size, and the
        // server forwards the layer covering it.
        let mut viewer = Browser::launch().await;
        viewer
            .set_viewport(VIEWER_WINDOW.0, VIEWER_WINDOW.1, false)
            .await;
        let vtoken = common::token(room, "viewer", &common::all());
        viewer
            .goto(&page_url(srv.addr, room, &vtoken, "viewer", false))
            .await;
        let shown = viewer
            .wait_for(
                "the viewer playing the browser's camera at its tile's layer",
                "(() => { const v = document.querySelector('.tile:not([data-peer=local]) video');
                   if (!v || !v.videoWidth || !v.clientWidth) return false;
                   const w = v.clientWidth * devicePixelRatio, h = v.clientHeight * devicePixelRatio;
                   const layer = [320, 640].find((lw) => w <= lw && h <= lw * 9 / 16) ?? 1280;
                   return v.videoWidth === layer && {tile: [w, h], video: [v.videoWidth, v.videoHeight]}; })()",
                LONG,
            )
            .await;
        eprintln!("viewer: {shown}");
        let tile_w = shown["tile"][0].as_f64().unwrap();
        assert!(tile_w < 640.0, "the tile is small: {shown}");
        let vw = shown["video"][0].as_u64().unwrap();
        assert!(vw < 1280, "a layer below the full one: {shown}");
        let viewer_id = viewer.eval("window.streamwireApp.client.peerId").await;
        assert_eq!(
            layers(&srv, room).await[viewer_id.as_str().unwrap()],
            json!([if vw == 320 { 0 } else { 1 }, "size"])
        );
        b.assert_no_console_errors().await;
        viewer.assert_no_console_errors().await;
        for j in [full, thumb] {
            j.session.leave().await;
        }
    });
}

/// Wait until `/sfu/status` shows `want` (`[substream, limited_by]`) for `subscriber`.
async fn wait_layers(srv: &common::TestServer, room: &str, subscriber: &str, want: Value) {
    let t0 = std::time::Instant::now();
    loop {
        let now = layers(srv, room).await;
        if now.get(subscriber) == Some(&want) {
            return;
        }
        assert!(t0.elapsed() < LONG, "{subscriber} never at {want}: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/sfu/status`'s simulcast streams of the room: subscriber → `[substream, limited_by]`.
async fn layers(srv: &common::TestServer, room: &str) -> HashMap<String, Value> {
    let st = janus_support::sfu_status(srv, room).await;
    st["simulcast"]
        .as_array()
        .expect("simulcast streams")
        .iter()
        .map(|s| {
            (
                s["subscriber"].as_str().unwrap().to_owned(),
                json!([s["substream"], s["limited_by"]]),
            )
        })
        .collect()
}
