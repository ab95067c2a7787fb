//! A report generated from real recorded data: a live pipeline through `devicetelemetry`,
//! its bus messages batched at consent `necessary`, stored in SQLite, then rendered; and
//! a report of a real short session: `streamwire serve --db`, two real `Session`s with
//! telemetry at `full` exchanging media, then `streamwire report --room R --out x.html`.
//!
//! Loopback only: `unshare -n sh -c 'ip link set lo up; cargo test --test telemetry_report'`.

mod common;
mod session_support;

use std::time::{Duration, Instant};

use gst::prelude::*;
use streamwire::telemetry::Consent;
use streamwire::telemetry::batcher::Batcher;
use streamwire::telemetry::store::{Store, Tags, now_ms};

fn record(batcher: &mut Batcher, run: Duration) {
    streamwire::gst_init::init().unwrap();
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         devicetelemetry consent=necessary interval=100 ! fakesink",
    )
    .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + run;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Element, gst::MessageType::Error],
        ) else {
            break;
        };
        if let gst::MessageView::Error(e) = msg.view() {
            panic!("{}: {:?}", e.error(), e.debug());
        }
        batcher.push_message(&msg, now_ms());
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn report_from_a_real_session_contains_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let mut store = Store::open(&db, Duration::from_secs(86400)).unwrap();
    let start = now_ms();
    for (peer, name) in [("alice-laptop", "Alice"), ("bob-phone", "Bob")] {
        let mut b = Batcher::new(Consent::Necessary);
        record(&mut b, Duration::from_millis(800));
        let batch = b.take_batch().expect("telemetry was recorded");
        let tags = Tags {
            room: "standup",
            session: peer,
            peer,
            user: peer,
            name,
            addr: Some("127.0.0.1".parse().unwrap()),
        };
        let sum = store.ingest(&tags, &batch, now_ms()).unwrap();
        assert!(sum.stored > 10, "{sum:?}");
        assert_eq!(sum.dropped, 0);
    }
    let html = streamwire::report::generate(&store, "standup", start - 1000, None).unwrap();
    std::fs::write(dir.path().join("report.html"), &html).unwrap();
    // One chart each for bitrate, fps, CPU and memory (the device and stream fields).
    for metric in ["Bitrate", "Frames per second", "CPU", "Memory used"] {
        let marker = format!("<figure data-metric=\"{metric}\"><svg");
        assert!(html.contains(&marker), "no {metric} chart");
    }
    assert_eq!(html.matches("<svg").count(), 4);
    // Both members are plotted (legend) and summarised (table), by display name.
    assert!(html.contains("2 members: Alice, Bob"), "{html}");
    for name in ["Alice", "Bob"] {
        assert!(html.contains(&format!("{name} (device)")), "{name} missing");
        assert!(html.contains(&format!(
            "<tr><td>{name}</td><td>device</td><td>stream-fps</td>"
        )));
    }
    assert!(
        !html.contains("alice-laptop"),
        "peer ids only where names collide"
    );
    // The chart lines carry data: a polyline with many points per series.
    assert!(html.contains("<polyline"), "no lines drawn");
    // An unknown room is a clear error, not an empty report.
    let err = streamwire::report::generate(&store, "no-such-room", 0, None).unwrap_err();
    assert!(err.to_string().contains("no-such-room"), "{err}");
}

const EXE: &str = env!("CARGO_BIN_EXE_streamwire");

/// Kills the `streamwire serve` child when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `(member, track, field, max)` of the report's summary table.
fn summary_rows(html: &str) -> Vec<(String, String, String, f64)> {
    html.lines()
        .filter_map(|l| l.strip_prefix("<tr><td>"))
        .filter_map(|l| {
            let cells: Vec<&str> = l
                .trim_end_matches("</td></tr>")
                .split("</td><td>")
                .collect();
            (cells.len() == 8).then(|| {
                (
                    cells[0].to_owned(),
                    cells[1].to_owned(),
                    cells[2].to_owned(),
                    cells[6].parse().unwrap(),
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_of_a_real_short_session_through_the_binaries() {
    use session_support::{join, small, wait_for};
    use streamwire::encoder::Codec;
    use streamwire::session::SessionEvent;
    use streamwire::session::telemetry::TelemetryConfig;
    use streamwire::webrtc::MediaKind;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, common::SECRET).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = std::process::Command::new(EXE);
    cmd.args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .arg("--secret-file")
        .arg(&secret)
        .arg("--db")
        .arg(&db)
        .stdout(std::process::Stdio::null());
    // If this test process is killed (a runner's timeout), the server goes with it.
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let _server = Child(cmd.spawn().unwrap());
    common::within("server listening", async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let url = format!("ws://127.0.0.1:{port}");
    let tele = |s: &mut streamwire::session::SessionConfig| {
        s.telemetry = TelemetryConfig {
            consent: Consent::Full,
            interval: Duration::from_millis(1000),
            sample_interval: Duration::from_millis(500),
            device: true,
        };
    };
    let alice = join(
        &url,
        "standup",
        "alice",
        Some(small(320, 240, Codec::Vp8)),
        tele,
    )
    .await;
    let bob = join(
        &url,
        "standup",
        "bob",
        Some(small(320, 240, Codec::Vp8)),
        tele,
    )
    .await;
    let (a_id, b_id) = (
        alice.session.peer_id().unwrap(),
        bob.session.peer_id().unwrap(),
    );
    const WAIT: Duration = Duration::from_secs(30);
    wait_for("video both ways", WAIT, || {
        alice.decoded_from(&b_id, MediaKind::Video) > 10
            && bob.decoded_from(&a_id, MediaKind::Video) > 10
    })
    .await;
    // A few seconds of statistics, with an RTT from RTCP on both sides.
    wait_for(
        "statistics with bitrate and RTT on both sides",
        WAIT,
        || {
            [&alice, &bob].iter().all(|j| {
                j.events()
                    .iter()
                    .filter(|e| {
                        matches!(e, SessionEvent::Stats(s)
                if s.stats.rtt_ms.is_some()
                    && s.stats.tracks.iter().any(|t| t.bitrate_kbps > 0.0))
                    })
                    .count()
                    >= 2
            })
        },
    )
    .await;
    alice.session.leave().await;
    bob.session.leave().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let out = dir.path().join("x.html");
    let o = std::process::Command::new(EXE)
        .args(["report", "--room", "standup", "--out"])
        .arg(&out)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&out).unwrap();
    for metric in [
        "Bitrate",
        "Frames per second",
        "Round-trip time",
        "Packet loss",
        "Jitter",
        "Quality score",
        "CPU",
        "Memory used",
    ] {
        assert!(
            html.contains(&format!("<figure data-metric=\"{metric}\"><svg")),
            "no {metric} chart"
        );
    }
    // Members are named by their tokens' display names (`alice`, `bob`), and so is the remote
    // end of each track. Each WebRTC chart has a line per member and track: both members'
    // tracks are in the legend of the bitrate chart, and each sent and received video at a
    // non-zero bitrate.
    assert!(html.contains("2 members: alice, bob"), "{html}");
    assert!(!html.contains(a_id.as_str()) && !html.contains(b_id.as_str()));
    let (a_id, b_id) = ("alice".to_owned(), "bob".to_owned());
    let bitrate_chart = html
        .split("<figure data-metric=\"Bitrate\">")
        .nth(1)
        .and_then(|s| s.split("</figure>").next())
        .unwrap();
    for (me, other) in [(&a_id, &b_id), (&b_id, &a_id)] {
        for dir in ["send", "recv"] {
            let label = format!("{me} / {other}/video-{dir}-");
            assert!(
                bitrate_chart.contains(&label),
                "{label} not in the chart legend"
            );
        }
    }
    assert!(bitrate_chart.matches("<polyline").count() >= 4);
    let rows = summary_rows(&html);
    for me in [&a_id, &b_id] {
        for dir in ["send", "recv"] {
            let max = rows
                .iter()
                .filter(|(p, t, f, _)| {
                    p == me && t.contains(&format!("/video-{dir}-")) && f == "bitrate"
                })
                .map(|r| r.3)
                .fold(0.0, f64::max);
            assert!(max > 10_000.0, "{me} video {dir} bitrate max {max}");
        }
        for field in ["fps", "rtt", "quality-score", "jitter", "packet-loss"] {
            assert!(
                rows.iter().any(|(p, _, f, _)| p == me && f == field),
                "{me}: no {field} in the summary"
            );
        }
        for field in ["cpu-usage", "memory-used", "process-memory"] {
            assert!(
                rows.iter()
                    .any(|(p, t, f, max)| p == me && t == "device" && f == field && *max > 0.0),
                "{me}: no device {field}"
            );
        }
    }
}
