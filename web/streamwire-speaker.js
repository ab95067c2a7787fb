// Audio levels and the active speaker, with the rules of the Rust side
// (src/webrtc/audio_level.rs, docs/audio.md "Audio levels and the active speaker"): levels in
// dBov (0 loudest, 127 silence); the loudest member becomes the active speaker when it is at
// most SPEECH_MAX_DBOV and at least ACTIVE_SPEAKER_MARGIN_DB louder than the current speaker
// (or than silence when there is none), continuously for ACTIVE_SPEAKER_HOLD_MS. An active
// speaker who falls silent stays active until another member wins that way; one whose audio
// ends (it leaves) makes the active speaker null.

/** The level of silence, dBov. */
export const SILENCE_DBOV = 127;
/** Levels at or below this (louder) can make a member the active speaker, dBov. */
export const SPEECH_MAX_DBOV = 70;
/** A new active speaker must be this much louder than the current one, dB. */
export const ACTIVE_SPEAKER_MARGIN_DB = 6;
/** ... continuously for this long, ms. */
export const ACTIVE_SPEAKER_HOLD_MS = 1000;
/** The client reads the levels (and emits `audiolevels`) this often, ms. */
export const LEVEL_EVENT_INTERVAL_MS = 250;

/**
 * dBov (0..127) of a linear audio level 0..1 (`RTCRtpSynchronizationSource.audioLevel`, RFC
 * 6464's mapping: level = 10^(-dBov/20)).
 * @param {number} level @returns {number}
 */
export function dbovOf(level) {
  if (!(level > 0)) return SILENCE_DBOV;
  return Math.max(0, Math.min(SILENCE_DBOV, Math.round(-20 * Math.log10(level))));
}

/** The active speaker among members whose levels are observed together. */
export class ActiveSpeaker {
  constructor() {
    /** @type {string|null} */ this.active = null;
    /** @type {{id: string, since: number}|null} */ this.candidate = null;
  }

  /**
   * Observe every member's level now (a Map or object of id -> dBov). Returns the new active
   * speaker (an id, or null) when it changed, else undefined. A member missing from `levels`
   * has left: if it was the active speaker, the answer is null.
   * @param {Map<string, number>} levels @param {number} now ms @returns {string|null|undefined}
   */
  observe(levels, now) {
    if (this.active !== null && !levels.has(this.active)) {
      this.active = null;
      this.candidate = null;
      return null;
    }
    let loudest = null;
    let loudestDb = SILENCE_DBOV + 1;
    for (const [id, db] of levels) {
      if (db < loudestDb) {
        loudest = id;
        loudestDb = db;
      }
    }
    const activeDb = this.active === null ? SILENCE_DBOV : levels.get(this.active);
    const wins = loudest !== null && loudest !== this.active && loudestDb <= SPEECH_MAX_DBOV
      && loudestDb + ACTIVE_SPEAKER_MARGIN_DB <= activeDb;
    if (!wins) {
      this.candidate = null;
      return undefined;
    }
    if (this.candidate?.id !== loudest) {
      this.candidate = { id: loudest, since: now };
      return undefined;
    }
    if (now - this.candidate.since < ACTIVE_SPEAKER_HOLD_MS) return undefined;
    this.candidate = null;
    this.active = loudest;
    return loudest;
  }
}
