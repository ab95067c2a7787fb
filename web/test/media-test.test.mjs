// Unit tests of the media tests' figures (web/streamwire-media-test.js): how the browser's
// stats and the server's `media_test_report` become one report, as the Rust client combines
// them (src/media_test/run.rs). The tests themselves run in Chromium (tests/web_media_test.rs).
import test from 'node:test';
import assert from 'node:assert/strict';

import { readStats, combineReport, BANDWIDTH_MAX_LOSS_PCT } from '../streamwire-media-test.js';

const stats = (over = {}) => [
  { type: 'transport', id: 'T1', selectedCandidatePairId: 'CP2' },
  { type: 'candidate-pair', id: 'CP1', nominated: true, state: 'succeeded', currentRoundTripTime: 0.5, availableOutgoingBitrate: 1 },
  { type: 'candidate-pair', id: 'CP2', nominated: true, state: 'succeeded', currentRoundTripTime: 0.02, availableOutgoingBitrate: 480400 },
  { type: 'inbound-rtp', kind: 'video', bytesReceived: 250000, packetsLost: 0, packetsReceived: 1000, jitter: 0.003, ...over },
  { type: 'remote-inbound-rtp', roundTripTime: 0.09 },
];

test('readStats: the selected pair gives the RTT and the uplink estimate; rates over the interval', () => {
  const a = readStats(stats(), null, 1000);
  assert.equal(a.rtt_ms, 20);
  assert.equal(a.estimate_kbps, 480);
  assert.equal(a.kbps, 0, 'no interval yet');
  const b = readStats(stats({ bytesReceived: 500000, packetsLost: 10, packetsReceived: 1990 }), a.base, 3000);
  assert.equal(b.kbps, 1000, '250000 bytes in 2 s');
  assert.equal(b.loss_pct, 1, '10 lost of 1000 in the interval');
  assert.equal(b.jitter_ms, 3);
  // Without a candidate pair's RTT, the RTCP round trip.
  const c = readStats(stats().filter((s) => s.type !== 'transport' && s.type !== 'candidate-pair'), null, 0);
  assert.equal(c.rtt_ms, 90);
  assert.equal(c.estimate_kbps, null);
});

const server = (loss, kbps = 450) => ({
  type: 'media_test_report', elapsed_ms: 3000, estimate_kbps: 1900, sent_kbps: 1800, rtt_ms: 21,
  received: [{ kind: 'video', kbps, loss_pct: loss, jitter_ms: 3 }],
});
const own = { rtt_ms: 20, estimate_kbps: 480, kbps: 1800, loss_pct: 0, jitter_ms: 2 };

test('combineReport: uplink from the server, downlink from the browser, the worse quality', () => {
  const r = combineReport('probe', own, server(4), null, null);
  assert.deepEqual(r.uplink, { estimate_kbps: 480, kbps: 450, bandwidth_kbps: null, loss_pct: 4, jitter_ms: 3 });
  assert.deepEqual(r.downlink, { estimate_kbps: 1900, kbps: 1800, bandwidth_kbps: 1800, loss_pct: 0, jitter_ms: 2 });
  assert.equal(r.rtt_ms, 20);
  assert.equal(r.elapsed_ms, 3000);
  // 4 % loss up costs two points; the clean downlink does not lift it (as in Rust).
  assert.equal(r.quality, 3);
  // The highest clean interval stays the bandwidth.
  assert.ok(0.5 < BANDWIDTH_MAX_LOSS_PCT);
  const r2 = combineReport('probe', own, server(0.5), null, r);
  assert.equal(r2.uplink.bandwidth_kbps, 450);
  const r3 = combineReport('probe', own, server(0.5, 300), null, r2);
  assert.equal(r3.uplink.bandwidth_kbps, 450);
});

test('combineReport: the worst received track sets the uplink, a stalled one too (as in Rust)', () => {
  const two = { ...server(0), received: [{ kind: 'video', kbps: 480, loss_pct: 0.5, jitter_ms: 1 }, { kind: 'audio', kbps: 40, loss_pct: 3, jitter_ms: 9 }] };
  const r = combineReport('echo', own, two, null, null);
  assert.equal(r.uplink.loss_pct, 3);
  assert.equal(r.uplink.jitter_ms, 9);
  assert.equal(r.uplink.kbps, 520);
  const stalled = { ...server(0), received: [{ kind: 'video', kbps: 480, loss_pct: 0, jitter_ms: 2 }, { kind: 'audio', kbps: 0, loss_pct: 100, jitter_ms: 2 }] };
  const s = combineReport('echo', own, stalled, null, null);
  assert.equal(s.uplink.loss_pct, 100);
  assert.equal(s.quality, 0);
});

test('combineReport: an echo test has no estimates; the echo delay and the server RTT as fallback', () => {
  const e = combineReport('echo', { ...own, rtt_ms: null }, server(0), 2600, null);
  assert.equal(e.uplink.estimate_kbps, null);
  assert.equal(e.downlink.estimate_kbps, null);
  assert.equal(e.uplink.bandwidth_kbps, null);
  assert.equal(e.echo_delay_ms, 2600);
  assert.equal(e.rtt_ms, 21);
  assert.equal(e.test, 'echo');
  assert.equal(e.quality, 5);
});
