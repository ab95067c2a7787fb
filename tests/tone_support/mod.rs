//! Pure-tone detection for the audio tests: the energy of 16-bit samples at one frequency
//! (the Goertzel algorithm), at the 48 kHz every Streamwire audio path and dump uses.
#![allow(dead_code)]

/// The sample rate of the samples handed to [`energy_at`].
pub const RATE: u32 = 48_000;

/// Energy of `x` (48 kHz) at `freq` Hz.
pub fn energy_at(x: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(RATE);
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for v in x {
        let s0 = f64::from(*v) + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - c * s1 * s2
}
