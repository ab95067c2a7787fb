//! The audio dump of a published microphone: a real publisher chain (`webrtcdsp`) fed by a
//! live test source, a far-end playback path through the echo probe, three WAV files read
//! back with hound and the JSON sidecar.

mod tone_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gst::prelude::*;
use streamwire::webrtc::WebrtcError;
use streamwire::webrtc::audio_dump::{AudioDumpConfig, MIN_DUMP_MAX_BYTES};
use streamwire::webrtc::dsp::{AudioProcessing, echo_probe_chain};
use streamwire::webrtc::publisher::{AudioSource, Publisher, PublisherConfig, VideoSource};
use tone_support::energy_at;

fn tone(freq: f64) -> gst::Element {
    let s = gst::ElementFactory::make("audiotestsrc")
        .property("is-live", true)
        .property("freq", freq)
        .property("volume", 0.3f64)
        .build()
        .unwrap();
    s.set_property_from_str("wave", "sine");
    s
}

/// A pipeline with a microphone publisher (440 Hz "voice") and a far-end playback path
/// (1 kHz) through the echo probe `far`.
fn call(processing: AudioProcessing) -> (gst::Pipeline, Publisher) {
    streamwire::gst_init::init().unwrap();
    let pipeline = gst::Pipeline::new();
    let publisher = Publisher::new(
        &pipeline,
        PublisherConfig {
            video: VideoSource::None,
            audio: AudioSource::MicrophoneElement {
                element: tone(440.0),
                echo_probe: Some("far".into()),
            },
            audio_processing: processing,
            ..PublisherConfig::default()
        },
    )
    .unwrap();
    let mut play = vec![tone(1000.0)];
    play.extend(echo_probe_chain("far").unwrap());
    play.push(
        gst::ElementFactory::make("fakesink")
            .property("sync", true)
            .build()
            .unwrap(),
    );
    pipeline.add_many(&play).unwrap();
    gst::Element::link_many(&play).unwrap();
    (pipeline, publisher)
}

/// Samples arriving at the DSP from now on.
fn count_samples(pipeline: &gst::Pipeline) -> Arc<AtomicU64> {
    let dsp = pipeline
        .iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.factory().is_some_and(|f| f.name() == "webrtcdsp"))
        .expect("the publisher's webrtcdsp");
    let n = Arc::new(AtomicU64::new(0));
    let c = n.clone();
    dsp.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                c.fetch_add(b.size() as u64 / 2, Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        });
    n
}

fn read(path: &std::path::Path) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let samples = r.samples::<i16>().map(Result::unwrap).collect();
    (spec, samples)
}

/// Which of the two test tones dominates `x`.
fn tone_of(x: &[i16]) -> f64 {
    if energy_at(x, 440.0) > 100.0 * energy_at(x, 1000.0) {
        440.0
    } else if energy_at(x, 1000.0) > 100.0 * energy_at(x, 440.0) {
        1000.0
    } else {
        0.0
    }
}

#[test]
fn dump_writes_three_aligned_wavs_and_a_sidecar() {
    let (pipeline, publisher) = call(AudioProcessing::OFF);
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump");
    publisher
        .start_audio_dump(&AudioDumpConfig::new(&dump))
        .unwrap();
    // A second dump at once is refused, naming the running one.
    let e = publisher
        .start_audio_dump(&AudioDumpConfig::new(dir.path().join("other")))
        .unwrap_err();
    assert!(e.to_string().contains("already running"), "{e}");
    // Two seconds of microphone audio through the DSP (counted, not slept: under load a
    // live source runs late and catches up).
    let counted = count_samples(&pipeline);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while counted.load(Ordering::Relaxed) < 2 * 48000 {
        assert!(
            std::time::Instant::now() < deadline,
            "no audio through the DSP"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sidecar = publisher.stop_audio_dump().unwrap().expect("a dump ran");
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(publisher.stop_audio_dump().unwrap(), None);

    let (spec, raw) = read(&dump.join("raw.wav"));
    let (far_spec, far) = read(&dump.join("far-end.wav"));
    let (_, processed) = read(&dump.join("processed.wav"));
    for s in [spec, far_spec] {
        assert_eq!(
            (s.sample_rate, s.channels, s.bits_per_sample),
            (48000, 1, 16)
        );
    }
    // At least the two counted seconds of microphone; the far end runs on its own thread
    // (a second at least); the sidecar counts what is in the files.
    assert!(raw.len() >= 2 * 48000, "raw: {} samples", raw.len());
    assert!(
        processed.len() >= 48000,
        "processed: {} samples",
        processed.len()
    );
    assert!(far.len() >= 48000, "far end: {} samples", far.len());
    assert_eq!(
        sidecar.samples,
        [raw.len() as u64, far.len() as u64, processed.len() as u64]
    );
    // What each file carries: the 440 Hz microphone, the 1 kHz far end.
    assert_eq!(tone_of(&raw), 440.0, "raw");
    assert_eq!(tone_of(&far), 1000.0, "far end");
    // Sample-aligned: with every stage off the DSP passes the microphone through, so the
    // processed file equals the raw one sample for sample.
    let n = raw.len().min(processed.len());
    let differing = (0..n).filter(|&i| raw[i] != processed[i]).count();
    assert_eq!(
        differing, 0,
        "processed differs from raw in {differing} of {n} samples"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dump.join("dump.json")).unwrap()).unwrap();
    assert_eq!(json["stopped"], "stopped");
    assert_eq!(json["sample_rate"], 48000);
    assert_eq!(json["files"]["far_end"], "far-end.wav");
    assert_eq!(json["processing"]["echo_cancel"], "off");
    assert_eq!(json["processing"]["far_end_reference"], true);
    assert!(json["device"].as_str().unwrap().starts_with("audiotestsrc"));
    let start = json["start_running_time_ns"].as_u64().unwrap();
    let clock = json["start_clock_time_ns"].as_u64().unwrap();
    assert!(
        start > 0,
        "started after the pipeline ran a while: {start} ns"
    );
    assert!(clock > start);

    // The directory now holds a dump: a new one there is refused.
    let e = publisher
        .start_audio_dump(&AudioDumpConfig::new(&dump))
        .unwrap_err();
    assert!(e.to_string().contains("already holds an audio dump"), "{e}");
}

#[test]
fn dump_stops_at_its_size_limit() {
    let (pipeline, publisher) = call(AudioProcessing::default());
    pipeline.set_state(gst::State::Playing).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = AudioDumpConfig {
        dir: dir.path().to_owned(),
        max_bytes: MIN_DUMP_MAX_BYTES,
    };
    publisher.start_audio_dump(&cfg).unwrap();
    // The sidecar says so by itself while the dump is still nominally running (one second
    // of audio fills a file).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("dump.json")).unwrap()).unwrap();
        if json["stopped"] == "size-limit" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no size-limit stop: {json}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sidecar = publisher.stop_audio_dump().unwrap().unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(sidecar.stopped, Some("size-limit"));
    for f in ["raw.wav", "far-end.wav", "processed.wav"] {
        let len = std::fs::metadata(dir.path().join(f)).unwrap().len();
        assert!(len <= MIN_DUMP_MAX_BYTES, "{f}: {len} bytes");
    }
    // The first file to reach the limit stops all three.
    let longest = ["raw.wav", "far-end.wav", "processed.wav"]
        .iter()
        .map(|f| read(&dir.path().join(f)).1.len() as u64)
        .max()
        .unwrap();
    assert_eq!(longest, (MIN_DUMP_MAX_BYTES - 44) / 2);
    assert_eq!(sidecar.samples.iter().max(), Some(&longest));
}

#[test]
fn dump_refuses_what_it_cannot_do() {
    streamwire::gst_init::init().unwrap();
    let pipeline = gst::Pipeline::new();
    let tone_only = Publisher::new(
        &pipeline,
        PublisherConfig {
            video: VideoSource::None,
            audio: AudioSource::TestTone,
            ..PublisherConfig::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = tone_only
        .start_audio_dump(&AudioDumpConfig::new(dir.path()))
        .unwrap_err();
    assert!(
        matches!(e, WebrtcError::Config { field: "audio", .. }),
        "{e}"
    );
    let (_p, publisher) = call(AudioProcessing::default());
    let e = publisher
        .start_audio_dump(&AudioDumpConfig {
            dir: dir.path().to_owned(),
            max_bytes: 1000,
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("audio_dump.max_bytes") && e.to_string().contains("minimum"),
        "{e}"
    );
}
