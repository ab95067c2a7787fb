// The active speaker's rules, as the Rust side's (src/webrtc/audio_level.rs): node --test web/test/
import test from 'node:test';
import assert from 'node:assert/strict';

import {
  ActiveSpeaker, dbovOf, ACTIVE_SPEAKER_HOLD_MS, SILENCE_DBOV,
} from '../streamwire-speaker.js';

const levels = (o) => new Map(Object.entries(o));

test('dBov of linear levels follows RFC 6464', () => {
  assert.equal(dbovOf(1), 0);
  assert.equal(dbovOf(0.1), 20);
  assert.equal(dbovOf(0), SILENCE_DBOV);
  assert.equal(dbovOf(1e-9), SILENCE_DBOV);
});

test('a member wins after the hold, by the margin, and stays active when silent', () => {
  const s = new ActiveSpeaker();
  // Loud from t=0: not yet, only after ACTIVE_SPEAKER_HOLD_MS of winning.
  assert.equal(s.observe(levels({ a: 20, b: 127 }), 0), undefined);
  assert.equal(s.observe(levels({ a: 20, b: 127 }), ACTIVE_SPEAKER_HOLD_MS - 1), undefined);
  assert.equal(s.observe(levels({ a: 20, b: 127 }), ACTIVE_SPEAKER_HOLD_MS), 'a');
  // b louder, but by less than the margin: no change, ever.
  for (let t = 1100; t < 4000; t += 250) assert.equal(s.observe(levels({ a: 20, b: 16 }), t), undefined);
  // a silent: stays active until b wins by the margin for the hold.
  assert.equal(s.observe(levels({ a: 127, b: 40 }), 4000), undefined);
  assert.equal(s.observe(levels({ a: 127, b: 40 }), 4500), undefined);
  // An interruption of b's lead restarts the hold.
  assert.equal(s.observe(levels({ a: 127, b: 127 }), 4750), undefined);
  assert.equal(s.observe(levels({ a: 127, b: 40 }), 5000), undefined);
  assert.equal(s.observe(levels({ a: 127, b: 40 }), 5000 + ACTIVE_SPEAKER_HOLD_MS), 'b');
  assert.equal(s.active, 'b');
  // The active speaker leaves: null.
  assert.equal(s.observe(levels({ a: 127 }), 7000), null);
  assert.equal(s.active, null);
});

test('quiet noise above SPEECH_MAX_DBOV never wins', () => {
  const s = new ActiveSpeaker();
  for (let t = 0; t < 5000; t += 250) assert.equal(s.observe(levels({ a: 80 }), t), undefined);
  assert.equal(s.active, null);
});
