//! Echo cancellation measured on a simulated echo path (see `audio_support`): espeak-ng
//! far-end speech played through the far-end reference, fed back 40-120 ms late and
//! attenuated into the microphone, with near-end speech alone and in double talk.
//!
//! `echo_cancellation_defaults_meet_the_aims` asserts the aims with the default
//! `AudioProcessing`; `measure_processing_settings` (ignored, run with `--ignored
//! --nocapture`) prints the figures of the other settings `docs/audio.md` compares.

mod audio_support;

use audio_support::{EchoPath, FAR_TEXT, Figures, NEAR_TEXT, Scenario, figures, run, speech};
use streamwire::webrtc::dsp::{AudioProcessing, EchoCancel, EchoSuppression};

/// Echo path gain (-6 dB) and near-end level (-3 dB against the far end's speech level):
/// the echo is as loud as the talker in the room.
const ECHO_GAIN: f32 = 0.5;
const NEAR_GAIN: f32 = 0.7;
/// Bound on the near-end attenuation in double talk with the defaults (the aim, 3 dB, is not
/// met: see docs/audio.md).
const NEAR_ATTENUATION_BOUND_DB: f64 = 6.0;

/// The part of the echo delay the playback path does not report (about 1 m of air).
const ACOUSTIC_MS: u32 = 3;

fn scenario() -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let far = speech(dir.path(), "far", "en-us", FAR_TEXT);
    let near = speech(dir.path(), "near", "en+f3", NEAR_TEXT);
    Scenario::standard(far, near, NEAR_GAIN)
}

/// A run: label, processing, echo delay (ms) and the part of it not reported (ms).
type Setting = (&'static str, AudioProcessing, u32, u32);

/// Run every setting at once (each in real time, on its own pipeline)
/// and return the figures in order.
fn measure(sc: &Scenario, runs: &[Setting]) -> Vec<(&'static str, u32, Figures)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .enumerate()
            .map(|(i, (label, p, delay, unreported))| {
                let probe = format!("echo-test-far-{i}");
                s.spawn(move || {
                    let path = EchoPath {
                        delay_ms: *delay,
                        reported_ms: delay - unreported,
                        gain: ECHO_GAIN,
                    };
                    let r = run(sc, path, *p, &probe);
                    (*label, *delay, figures(sc, &r))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn print(results: &[(&str, u32, Figures)]) {
    for (label, delay, f) in results {
        println!(
            "{label:<28} delay {delay:>3} ms: ERLE {:>5.1} dB, near-end attenuation in double talk {:>5.1} dB",
            f.erle_db, f.near_attenuation_db
        );
    }
}

#[test]
fn echo_cancellation_defaults_meet_the_aims() {
    let sc = scenario();
    let d = AudioProcessing::default();
    let results = measure(
        &sc,
        &[
            ("default", d, 40, ACOUSTIC_MS),
            ("default", d, 80, ACOUSTIC_MS),
            ("default", d, 120, ACOUSTIC_MS),
        ],
    );
    print(&results);
    for (_, delay, f) in &results {
        assert!(
            f.erle_db >= 18.0,
            "ERLE {:.1} dB < 18 dB at {delay} ms echo delay",
            f.erle_db
        );
        // The aim is 3 dB; the canceller at `moderate` measures 3.1-4.7 dB here (docs/audio.md),
        // so this bound guards against regressions, it does not claim the aim.
        assert!(
            f.near_attenuation_db <= NEAR_ATTENUATION_BOUND_DB,
            "near end attenuated {:.1} dB > {NEAR_ATTENUATION_BOUND_DB} dB in double talk at {delay} ms",
            f.near_attenuation_db
        );
    }
}

#[test]
fn without_echo_cancellation_the_echo_stays() {
    // The measurement itself: with the canceller off the echo passes (ERLE near 0 dB).
    let sc = scenario();
    let off = AudioProcessing {
        echo_cancel: EchoCancel::Off,
        ..AudioProcessing::OFF
    };
    let results = measure(&sc, &[("off", off, 80, ACOUSTIC_MS)]);
    print(&results);
    let f = results[0].2;
    assert!(
        f.erle_db.abs() < 1.0,
        "ERLE without processing: {:.1} dB",
        f.erle_db
    );
    assert!(
        f.near_attenuation_db < 0.0,
        "the uncancelled echo adds to the near end in double talk: {:.1} dB",
        f.near_attenuation_db
    );
}

#[test]
#[ignore = "measurement for docs/audio.md: five batches of ~32 s in real time"]
fn measure_processing_settings() {
    let sc = scenario();
    let d = AudioProcessing::default();
    let agnostic_off = AudioProcessing {
        delay_agnostic: false,
        ..d
    };
    let agc = AudioProcessing {
        gain_control: true,
        ..d
    };
    let low = AudioProcessing {
        echo_cancel: EchoCancel::On(EchoSuppression::Low),
        ..d
    };
    let a = ACOUSTIC_MS;
    let three = |label, p, unreported| -> [Setting; 3] {
        [
            (label, p, 40.max(unreported), unreported),
            (label, p, 80.max(unreported), unreported),
            (label, p, 120, unreported),
        ]
    };
    let batches = [
        three("default", d, a),
        three("delay-agnostic off", agnostic_off, a),
        three("suppression low", low, a),
        three("gain control on", agc, a),
        three("default, 40 ms unreported", d, 40),
        three("agnostic off, 40 ms unrep.", agnostic_off, 40),
    ];
    for b in &batches {
        print(&measure(&sc, b));
    }
}

#[test]
#[ignore = "measurement for docs/audio.md: four batches of ~32 s in real time"]
fn measure_near_end_settings() {
    let sc = scenario();
    let d = AudioProcessing::default();
    let ns_off = AudioProcessing {
        noise_suppression: None,
        ..d
    };
    let hpf_off = AudioProcessing {
        high_pass_filter: false,
        ..d
    };
    let ns_low = AudioProcessing {
        noise_suppression: Some(streamwire::webrtc::dsp::NoiseSuppression::Low),
        ..d
    };
    let low_ns_off = AudioProcessing {
        echo_cancel: EchoCancel::On(EchoSuppression::Low),
        ..ns_off
    };
    let a = ACOUSTIC_MS;
    let three =
        |label, p| -> [Setting; 3] { [(label, p, 40, a), (label, p, 80, a), (label, p, 120, a)] };
    for b in [
        three("noise suppression off", ns_off),
        three("noise suppression low", ns_low),
        three("high-pass filter off", hpf_off),
        three("suppression low, NS off", low_ns_off),
    ] {
        print(&measure(&sc, &b));
    }
}
