//! Simulcast through a real Janus: the browser client publishes its 1280×720 camera in three
//! VP8 layers in an SFU room, and the server forwards each subscriber the layer its rendered
//! size needs (docs/sfu.md, "Simulcast"):
//! - a Rust subscriber that says nothing of its size receives the full layer (decoded at
//!   1280×720);
//! - one that renders the video as a 320×180, then 640×360, then 1280×720 picture
//!   (`Session::set_rendered_size`, an `sfu_view` frame) is forwarded the quarter, the half
//!   and the full layer (`/sfu/status`) and decodes each at its size;
//! - a second browser page, a viewer with a small window, gets the layer covering its tile
//!   (the web app reports each tile's size: `setRenderedSize`);
//! - a Rust subscriber whose downlink is limited to [`SLOW_LINK_KBPS`] (`tc` htb + tbf on
//!   its ICE ports) is forwarded the quarter layer, while an unlimited one keeps the full
//!   layer; once the limit is lifted, probes take it back up to the full layer.
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

/// The limited subscriber's downlink: room for the quarter layer (150 kbit/s) and the audio,
/// not for the half layer (500 kbit/s).
const SLOW_LINK_KBPS: u32 = 300;
/// The limited subscriber's ICE ports (libnice), the ports `tc` matches: 0x5000–0x50ff.
const SLOW_PORTS: (u16, u16) = (0x5000, 0x50ff);
/// How long the limited subscriber is watched at the quarter layer (a probe one layer up
/// comes 8 s after the step down, fails, and the stream is back at once).
const STAY: Duration = Duration::from_secs(20);
/// Its frames decoded meanwhile, at least, as a share of the unlimited subscriber's (the
/// layers have the same frame rate, which load on the machine lowers for both). A failed
/// probe one layer up interrupts the limited one's picture until it is back down with a
/// keyframe: it decoded 178 and 307 frames where the unlimited one decoded 400.
const STAY_SHARE: f64 = 0.25;
/// The longest climb back to the full layer once the limit is lifted: the wait before the
/// next probe has doubled (8, 16, 32 s) after the failed ones while limited; the second
/// step waits 8 s more.
const CLIMB: Duration = Duration::from_secs(90);

/// Limit what reaches [`janus_support::CLIENT_ADDR`] on [`SLOW_PORTS`] to `kbps` (the two
/// veth ends are local addresses of the namespace: their traffic goes over `lo`). Everything
/// else on `lo` (signalling, Janus's API, the other subscribers) is left alone.
fn limit_slow_ports(kbps: u32) {
    netns_support::sh(&format!(
        "tc qdisc add dev lo root handle 1: htb default 10 r2q 1000 \
         && tc class add dev lo parent 1: classid 1:10 htb rate 10gbit \
         && tc class add dev lo parent 1: classid 1:30 htb rate {kbps}kbit ceil {kbps}kbit \
         && tc qdisc add dev lo parent 1:30 handle 30: tbf rate {kbps}kbit burst 4kb latency 100ms \
         && tc filter add dev lo parent 1: protocol ip prio 1 u32 \
            match ip dst {}/32 match ip dport {} 0xff00 flowid 1:30",
        janus_support::CLIENT_ADDR,
        SLOW_PORTS.0
    ));
}

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

#[test]
fn browser_simulcast_low_layer_for_a_limited_downlink() {
    if !isolated("browser_simulcast_low_layer_for_a_limited_downlink") {
        return;
    }
    janus_support::veth();
    let janus = Janus::start("40000-40100");
    janus_support::runtime().block_on(async {
        let mut cfg = common::config();
        cfg.sfu = Some(janus.sfu_config());
        let srv = common::start(cfg).await;
        let room = "simulcast-bandwidth";
        let mut b = Browser::launch().await;
        let token = common::token(room, "web", &common::all());
        let url = format!(
            "{}&res=1280x720",
            page_url(srv.addr, room, &token, "web", true)
        );
        b.goto(&url).await;
        b.wait_for(
            "browser joined",
            "window.streamwireApp?.client?.state === 'joined'",
            LONG,
        )
        .await;
        let web_id = b.eval("window.streamwireApp.client.peerId").await;
        let web_id = web_id.as_str().unwrap().to_owned();
        let fast = join(&srv.url, room, "fast", None, on_veth).await;
        let slow = join(&srv.url, room, "slow", None, |cfg| {
            on_veth(cfg);
            cfg.ice_port_range = Some(SLOW_PORTS);
            cfg.ice_tcp = false;
        })
        .await;
        let size = |j: &Joined| {
            let c = j.session.subscriber().counters(&web_id, MediaKind::Video);
            (c.width, c.height)
        };
        for j in [&fast, &slow] {
            session_support::wait_for("the full layer on an unlimited link", LONG, || {
                size(j) == (1280, 720)
            })
            .await;
        }
        let fast_id = fast.session.peer_id().unwrap();
        let slow_id = slow.session.peer_id().unwrap();

        limit_slow_ports(SLOW_LINK_KBPS);
        let t0 = std::time::Instant::now();
        wait_layers(&srv, room, &slow_id, json!([0, "bandwidth"])).await;
        eprintln!(
            "limited to {SLOW_LINK_KBPS} kbit/s: quarter layer asked after {:?}",
            t0.elapsed()
        );
        session_support::wait_for("the quarter layer decoded", LONG, || {
            size(&slow) == (320, 180)
        })
        .await;
        assert_eq!(layers(&srv, room).await[&fast_id], json!([2, "none"]));
        assert_eq!(
            size(&fast),
            (1280, 720),
            "the unlimited subscriber keeps its layer"
        );
        // It stays there: the probes one layer up lose again.
        let decoded = |j: &Joined| {
            j.session
                .subscriber()
                .counters(&web_id, MediaKind::Video)
                .decoded
        };
        let (frames, fast_frames) = (decoded(&slow), decoded(&fast));
        tokio::time::sleep(STAY).await;
        let now = layers(&srv, room).await;
        assert_eq!(now[&slow_id][1], "bandwidth", "still limited: {now:?}");
        let c = slow
            .session
            .subscriber()
            .counters(&web_id, MediaKind::Video);
        let (slow_n, fast_n) = (c.decoded - frames, decoded(&fast) - fast_frames);
        eprintln!(
            "limited: {slow_n} frames in {STAY:?} (unlimited: {fast_n}), now {}x{}",
            c.width, c.height
        );
        assert!(
            slow_n as f64 >= STAY_SHARE * fast_n as f64 && slow_n > 0,
            "the quarter layer flows: {slow_n} frames, the unlimited subscriber {fast_n}"
        );

        // The limit lifted: probes take it back to the full layer.
        netns_support::sh("tc qdisc del dev lo root");
        let t1 = std::time::Instant::now();
        wait_layers_within(&srv, room, &slow_id, json!([2, "none"]), CLIMB).await;
        eprintln!("unlimited again: full layer asked after {:?}", t1.elapsed());
        session_support::wait_for("the full layer decoded again", LONG, || {
            size(&slow) == (1280, 720)
        })
        .await;
        b.assert_no_console_errors().await;
        for j in [fast, slow] {
            j.session.leave().await;
        }
    });
}

/// Wait until `/sfu/status` shows `want` (`[substream, limited_by]`) for `subscriber`.
async fn wait_layers(srv: &common::TestServer, room: &str, subscriber: &str, want: Value) {
    wait_layers_within(srv, room, subscriber, want, LONG).await;
}

/// [`wait_layers`] for at most `timeout`.
async fn wait_layers_within(
    srv: &common::TestServer,
    room: &str,
    subscriber: &str,
    want: Value,
    timeout: Duration,
) {
    let t0 = std::time::Instant::now();
    loop {
        let now = layers(srv, room).await;
        if now.get(subscriber) == Some(&want) {
            return;
        }
        assert!(
            t0.elapsed() < timeout,
            "{subscriber} never at {want}: {now:?}"
        );
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
