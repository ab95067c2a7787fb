//! The browser client's audio dump (`startAudioDump`/`stopAudioDump`, web/streamwire-audio-dump.js)
//! in headless Chromium, in one room with a Rust `Session` through a real signalling server on
//! loopback: Chromium publishes its fake microphone (a beep) and receives the Rust tone
//! (`AudioSource::TestTone`, 440 Hz); the dump's files come back into the test as base64 and
//! are read with hound: headers, equal lengths, the tone in the far end, the beep in the
//! processed file, the sidecar; the size limit, a far end that joins and leaves during the
//! dump, and the refusals.
//! Run: unshare -n sh -c 'ip link set lo up && cargo nextest run --offline --test web_audio_dump'

mod browser_support;
mod common;
mod tone_support;

use std::collections::HashMap;
use std::io::Cursor;
use std::time::Duration;

use base64::Engine;
use browser_support::Browser;
use serde_json::{Value, json};
use streamwire::session::{Session, SessionConfig, SessionEvent};
use streamwire::webrtc::audio_dump::{DEFAULT_DUMP_MAX_BYTES, MIN_DUMP_MAX_BYTES};
use streamwire::webrtc::publisher::{AudioSource, PublisherConfig, VideoSource};
use tokio::sync::mpsc::UnboundedReceiver;
use tone_support::energy_at;

const LONG: Duration = Duration::from_secs(30);
const RATE: usize = 48000;
const CLIENT: &str = "window.streamwireApp.client";

async fn join_session(url: &str, room: &str) -> (Session, UnboundedReceiver<SessionEvent>) {
    let mut cfg = SessionConfig::loopback(url, room, &common::token(room, "rust", &common::all()));
    cfg.publish = Some(PublisherConfig {
        video: VideoSource::None,
        audio: AudioSource::TestTone,
        ..PublisherConfig::default()
    });
    Session::join(cfg).await.expect("rust session joins")
}

/// Chromium on the demo page, joined to `room` (publishing camera and microphone when
/// `publish`).
async fn browser(addr: std::net::SocketAddr, room: &str, publish: bool) -> Browser {
    let mut b = Browser::launch().await;
    let token = common::token(room, "web", &common::all());
    b.goto(&browser_support::page_url(
        addr, room, &token, "web", publish,
    ))
    .await;
    b.wait_for(
        "browser joined",
        &format!("{CLIENT}?.state === 'joined'"),
        LONG,
    )
    .await;
    b
}

/// Wait until Chromium plays audio from `rust_id` (its receivers' level is above silence).
async fn wait_far_audio(b: &mut Browser, rust_id: &str) {
    b.wait_for(
        "Chromium receives the Rust tone",
        &format!(
            "(() => {{ const e = {CLIENT}.pcs.get('{rust_id}'); if (!e) return false; \
             return e.pc.getReceivers().some((r) => r.track.kind === 'audio' && \
             r.getSynchronizationSources().some((s) => s.audioLevel > 0.02)); }})()"
        ),
        LONG,
    )
    .await;
}

/// JS: the refusal of `call` as `{code, field, message}` (or `null` when it resolved).
fn refusal(call: &str) -> String {
    format!(
        "(async () => {{ try {{ await {call}; return null; }} catch (e) {{ \
         return {{ code: e.code, field: e.field ?? null, message: e.message, name: e.name }}; }} }})()"
    )
}

/// JS: turn a dump result `r` into `{files: {name: base64}, sidecar}`.
const ENCODE: &str = "async (r) => { if (!r) return null; const files = {}; \
    for (const [k, b] of Object.entries(r.files)) { const u = new Uint8Array(await b.arrayBuffer()); \
    let s = ''; for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000)); \
    files[k] = btoa(s); } return { files, sidecar: r.sidecar }; }";

/// Stop the dump and fetch its files.
async fn stop(b: &mut Browser) -> Dump {
    let v = b
        .eval(&format!("{CLIENT}.stopAudioDump().then({ENCODE})"))
        .await;
    Dump::from(v)
}

struct Dump {
    files: HashMap<String, Vec<u8>>,
    sidecar: Value,
}

impl Dump {
    fn from(v: Value) -> Dump {
        let files = v["files"]
            .as_object()
            .unwrap_or_else(|| panic!("no files in {v}"))
            .iter()
            .map(|(k, b64)| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_str().expect("base64 string"))
                    .expect("base64");
                (k.clone(), bytes)
            })
            .collect();
        Dump {
            files,
            sidecar: v["sidecar"].clone(),
        }
    }

    /// A WAV file's samples, checking it is 16-bit mono 48 kHz PCM.
    fn wav(&self, name: &str) -> Vec<i16> {
        let bytes = self
            .files
            .get(name)
            .unwrap_or_else(|| panic!("no {name} among {:?}", self.files.keys()));
        let mut r =
            hound::WavReader::new(Cursor::new(bytes)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let spec = r.spec();
        assert_eq!(
            spec,
            hound::WavSpec {
                channels: 1,
                sample_rate: RATE as u32,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            },
            "{name} format"
        );
        let s: Vec<i16> = r.samples::<i16>().map(|x| x.expect("sample")).collect();
        assert_eq!(bytes.len(), 44 + 2 * s.len(), "{name}: header + data size");
        s
    }
}

/// How much stronger 440 Hz is in `x` than the strongest of some other frequencies.
fn tone_ratio(x: &[i16]) -> f64 {
    let off = [250.0, 330.0, 560.0, 700.0, 1000.0, 1500.0, 3000.0]
        .iter()
        .map(|f| energy_at(x, *f))
        .fold(0.0f64, f64::max);
    energy_at(x, 440.0) / off.max(1.0)
}

fn rms(x: &[i16]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// The loudest 50 ms window's RMS.
fn peak_rms(x: &[i16]) -> f64 {
    x.chunks(RATE / 20).map(rms).fold(0.0, f64::max)
}

fn now_unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
        * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_records_processed_far_end_and_raw_aligned() {
    let srv = common::start(common::config()).await;
    let room = "dump1";
    let mut b = browser(srv.addr, room, true).await;
    let (rust, _events) = join_session(&srv.url, room).await;
    let rust_id = rust.peer_id().expect("rust peer id");
    wait_far_audio(&mut b, &rust_id).await;
    let captures = b.eval(browser_support::LIVE_CAPTURES).await;

    let before = now_unix_ms();
    b.eval(&format!("{CLIENT}.startAudioDump()")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let d = stop(&mut b).await;
    // The raw capture is released with the dump; the published tracks stay.
    assert_eq!(b.eval(browser_support::LIVE_CAPTURES).await, captures);
    // Stopped and collected: nothing to stop any more.
    assert_eq!(
        b.eval(&format!("{CLIENT}.stopAudioDump()")).await,
        Value::Null
    );

    let s = &d.sidecar;
    eprintln!("sidecar: {s:#}");
    let processed = d.wav("processed.wav");
    let far = d.wav("far-end.wav");
    let n = processed.len();
    assert!(
        (2 * RATE..5 * RATE).contains(&n),
        "{n} samples for a dump of about 3 s"
    );
    assert_eq!(
        far.len(),
        n,
        "far-end.wav and processed.wav differ in length"
    );
    assert_eq!(s["samples"][1], json!(n));
    assert_eq!(s["samples"][2], json!(n));

    // Chromium takes a second capture of the microphone with its processing off.
    assert_eq!(
        s["files"]["raw"],
        json!("raw.wav"),
        "raw absent: {}",
        s["raw_absent"]
    );
    assert_eq!(s["raw_absent"], Value::Null);
    let raw = d.wav("raw.wav");
    assert_eq!(raw.len(), n, "raw.wav and processed.wav differ in length");
    assert_eq!(s["samples"][0], json!(n));
    assert_eq!(
        s["raw_processing"],
        json!({"echo_cancellation": false, "noise_suppression": false, "auto_gain_control": false})
    );

    // The far end holds the Rust session's 440 Hz tone (skip the first half second).
    let far_tail = &far[RATE / 2..];
    let ratio = tone_ratio(far_tail);
    eprintln!(
        "far-end: rms {:.0}, 440 Hz ratio {ratio:.0}; processed: peak rms {:.0}, 440 Hz ratio {:.2}; raw: peak rms {:.0}",
        rms(far_tail),
        peak_rms(&processed),
        tone_ratio(&processed[RATE / 2..]),
        peak_rms(&raw)
    );
    assert!(rms(far_tail) > 300.0, "far-end is (nearly) silent");
    assert!(
        ratio > 100.0,
        "no 440 Hz tone in far-end.wav (ratio {ratio})"
    );
    // The processed and the raw microphone hold the fake device's beep, not silence, and not
    // the far end's tone.
    for (name, x) in [("processed", &processed), ("raw", &raw)] {
        assert!(peak_rms(x) > 300.0, "{name}.wav is silent");
        assert!(
            tone_ratio(&x[RATE / 2..]) < 10.0,
            "{name}.wav holds the far end's tone"
        );
    }

    // The sidecar.
    assert_eq!(s["version"], json!(1));
    assert_eq!(
        s["files"],
        json!({"raw": "raw.wav", "far_end": "far-end.wav", "processed": "processed.wav"})
    );
    assert_eq!(s["sample_rate"], json!(48000));
    assert_eq!(s["channels"], json!(1));
    assert_eq!(s["sample_format"], json!("S16LE"));
    assert_eq!(s["clock"], json!("AudioContext"));
    assert_eq!(s["max_bytes"], json!(DEFAULT_DUMP_MAX_BYTES));
    assert_eq!(s["stopped"], json!("stopped"));
    assert!(s["start_context_time_s"].as_f64().is_some_and(|t| t >= 0.0));
    let start_frame = s["start_frame"].as_f64().expect("start_frame");
    let t0 = s["start_context_time_s"].as_f64().unwrap();
    assert!(
        (start_frame / 48000.0 - t0).abs() < 1e-9,
        "start_frame vs start_context_time_s"
    );
    let wall = s["start_unix_time_ms"]
        .as_f64()
        .expect("start_unix_time_ms");
    assert!(
        wall > before - 2000.0 && wall < before + 5000.0,
        "start_unix_time_ms {wall} vs the test's clock {before}"
    );
    // Chromium's defaults for a published microphone: all three on.
    assert_eq!(
        s["processing"],
        json!({"echo_cancellation": true, "noise_suppression": true, "auto_gain_control": true})
    );
    assert!(s["track_settings"]["processed"]["sampleRate"].is_number());
    assert!(
        s["device"].as_str().is_some_and(|d| !d.is_empty()),
        "device label {}",
        s["device"]
    );
    let tracks = s["far_end_tracks"].as_array().expect("far_end_tracks");
    assert_eq!(tracks.len(), 1, "{tracks:?}");
    assert_eq!(tracks[0]["peer_id"], json!(rust_id));
    assert_eq!(
        tracks[0]["from_s"].as_f64(),
        Some(0.0),
        "there from the start"
    );
    assert!(
        tracks[0]["until_s"].as_f64().is_some(),
        "closed at the stop"
    );
    // dump.json is the same sidecar.
    let file: Value = serde_json::from_slice(&d.files["dump.json"]).expect("dump.json is JSON");
    assert_eq!(&file, s);
    assert_eq!(d.files.len(), 4, "{:?}", d.files.keys());

    b.assert_no_console_errors().await;
    rust.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_refusals_size_limit_late_far_end_and_unpublish() {
    let srv = common::start(common::config()).await;
    let room = "dump2";
    let mut b = browser(srv.addr, room, false).await;

    // Nothing published yet.
    let e = b
        .eval(&refusal(&format!("{CLIENT}.startAudioDump()")))
        .await;
    assert_eq!(e["code"], json!("not_published"), "{e}");
    assert_eq!(e["name"], json!("StreamwireError"));
    assert!(e["message"].as_str().unwrap().contains("publish"), "{e}");
    assert_eq!(
        b.eval(&format!("{CLIENT}.stopAudioDump()")).await,
        Value::Null
    );
    b.eval(&format!(
        "{CLIENT}.publish(undefined, {{ video: false, audio: true }}).then(() => true)"
    ))
    .await;

    // Bad sizes, naming the field.
    for bad in [
        "1000".to_owned(),
        format!("{}", MIN_DUMP_MAX_BYTES - 1),
        "96000.5".into(),
        "'big'".into(),
        "2 ** 31".into(),
    ] {
        let e = b
            .eval(&refusal(&format!(
                "{CLIENT}.startAudioDump({{ maxBytes: {bad} }})"
            )))
            .await;
        assert_eq!(e["code"], json!("invalid_field"), "maxBytes {bad}: {e}");
        assert_eq!(e["field"], json!("maxBytes"), "{e}");
        assert!(e["message"].as_str().unwrap().contains("maxBytes"), "{e}");
    }

    // The size limit: one second per file; a second start meanwhile is refused.
    b.eval(&format!(
        "window.__dumpEnded = new Promise((r) => {CLIENT}.addEventListener('audiodumpended', \
         (e) => r(e.detail), {{ once: true }})); true"
    ))
    .await;
    let e = b
        .eval(&format!(
            "(async () => {{ const first = {CLIENT}.startAudioDump({{ maxBytes: {MIN_DUMP_MAX_BYTES} }}); \
             let second = null; try {{ await {CLIENT}.startAudioDump(); }} \
             catch (e) {{ second = {{ code: e.code, message: e.message }}; }} \
             await first; return second; }})()"
        ))
        .await;
    assert_eq!(e["code"], json!("already_dumping"), "{e}");
    let ended = b
        .eval(&format!(
            "(async () => {{ const d = await window.__dumpEnded; return {{ reason: d.reason, \
             dump: await ({ENCODE})(d) }}; }})()"
        ))
        .await;
    assert_eq!(ended["reason"], json!("size-limit"));
    let d = Dump::from(ended["dump"].clone());
    let max_samples = (MIN_DUMP_MAX_BYTES as usize - 44) / 2;
    for name in ["processed.wav", "far-end.wav", "raw.wav"] {
        assert_eq!(d.wav(name).len(), max_samples, "{name}");
        assert_eq!(
            d.files[name].len() as u64,
            MIN_DUMP_MAX_BYTES,
            "{name} at the limit"
        );
    }
    assert_eq!(d.sidecar["stopped"], json!("size-limit"));
    assert_eq!(d.sidecar["max_bytes"], json!(MIN_DUMP_MAX_BYTES));
    assert_eq!(
        d.sidecar["samples"],
        json!([max_samples, max_samples, max_samples])
    );
    // No far end in the room: silence, no far-end tracks.
    assert!(
        d.wav("far-end.wav").iter().all(|v| *v == 0),
        "far end not silent"
    );
    assert_eq!(d.sidecar["far_end_tracks"], json!([]));
    // The ended dump's result once more from stopAudioDump, then nothing.
    let again = stop(&mut b).await;
    assert_eq!(again.sidecar, d.sidecar);
    assert_eq!(
        b.eval(&format!("{CLIENT}.stopAudioDump()")).await,
        Value::Null
    );

    // A far end that joins during the dump is mixed in from then on (silence before), and
    // one that leaves is taken out.
    b.eval(&format!("{CLIENT}.startAudioDump().then(() => true)"))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rust, _events) = join_session(&srv.url, room).await;
    let rust_id = rust.peer_id().expect("rust peer id");
    wait_far_audio(&mut b, &rust_id).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    rust.leave().await;
    b.wait_for(
        "the Rust peer gone from the browser",
        &format!("!{CLIENT}.peers.has('{rust_id}')"),
        LONG,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = stop(&mut b).await;
    let s = &d.sidecar;
    eprintln!("sidecar: {s:#}");
    let far = d.wav("far-end.wav");
    let tracks = s["far_end_tracks"].as_array().expect("far_end_tracks");
    assert_eq!(tracks.len(), 1, "{tracks:?}");
    assert_eq!(tracks[0]["peer_id"], json!(rust_id));
    let from = tracks[0]["from_s"].as_f64().expect("from_s");
    let until = tracks[0]["until_s"]
        .as_f64()
        .expect("until_s: the track left");
    let secs = far.len() as f64 / RATE as f64;
    assert!(
        from >= 0.9 && from < until && until < secs - 0.5,
        "from {from} until {until} of {secs} s"
    );
    let at = |t: f64| ((t * RATE as f64) as usize).min(far.len());
    assert!(
        far[..at(from)].iter().all(|v| *v == 0),
        "far end not silent before the track joined"
    );
    let during = &far[at(from + 0.5)..at(until)];
    assert!(
        tone_ratio(during) > 100.0,
        "no tone while the far end was there"
    );
    assert!(
        far[at(until + 0.1)..].iter().all(|v| *v == 0),
        "far end not silent after the track left"
    );
    assert_eq!(s["stopped"], json!("stopped"));

    // Unpublishing the microphone ends a running dump by itself (`track-ended`), with the
    // files, and releases its raw capture.
    b.eval(&format!(
        "window.__dumpEnded = new Promise((r) => {CLIENT}.addEventListener('audiodumpended', \
         (e) => r(e.detail), {{ once: true }})); {CLIENT}.startAudioDump().then(() => true)"
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.eval(&format!("{CLIENT}.unpublish().then(() => true)"))
        .await;
    let ended = b
        .eval(&format!(
            "(async () => {{ const d = await window.__dumpEnded; return {{ reason: d.reason, \
             dump: await ({ENCODE})(d) }}; }})()"
        ))
        .await;
    assert_eq!(ended["reason"], json!("track-ended"));
    let d = Dump::from(ended["dump"].clone());
    assert_eq!(d.sidecar["stopped"], json!("track-ended"));
    let n = d.wav("processed.wav").len();
    assert!(n > RATE / 4, "{n} samples before the unpublish");
    assert_eq!(d.wav("raw.wav").len(), n);
    assert_eq!(
        b.eval(browser_support::LIVE_CAPTURES).await,
        json!(0),
        "a capture is still live after the unpublish"
    );
    b.assert_no_console_errors().await;
}
