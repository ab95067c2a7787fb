// Unit tests of the client's browser-independent helpers: node --test web/test/
import test from 'node:test';
import assert from 'node:assert/strict';

import {
  backoffDelay, BACKOFF, SerialQueue, qualityScore, describeError, checkPayload, sdpSessionId,
  sdpIceUfrag, receivingMids, msidTracks, toBase64, fromBase64,
} from '../streamwire-util.js';

test('back-off doubles from 200 ms to 5 s, randomised by ±25 %', () => {
  assert.deepEqual(BACKOFF, { baseMs: 200, maxMs: 5000, jitter: 0.25 });
  const mid = () => 0.5;
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, { random: mid })), [200, 400, 800, 1600, 3200, 5000, 5000]);
  assert.equal(backoffDelay(3, { random: () => 0 }), 600);
  assert.equal(backoffDelay(3, { random: () => 0.999999 }), 1000);
});

test('back-off jitter is real randomness: clients do not retry in step', () => {
  const samples = Array.from({ length: 1000 }, () => backoffDelay(4));
  for (const d of samples) assert.ok(d >= 1200 && d <= 2000, `${d} outside 1600 ms ±25 %`);
  const distinct = new Set(samples).size;
  assert.ok(distinct > 400, `only ${distinct} distinct delays in 1000`);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  assert.ok(Math.abs(mean - 1600) < 40, `mean ${mean}`);
  // Both halves of the range are used (the old bug retried everyone at ~0.77x).
  assert.ok(samples.some((d) => d < 1400) && samples.some((d) => d > 1800));
});

test('SerialQueue runs jobs in push order, one at a time, and survives a failing job', async () => {
  const errors = [];
  const q = new SerialQueue((e) => errors.push(e.message));
  const log = [];
  let running = 0;
  const job = (name, ms, fail) => async () => {
    running += 1;
    assert.equal(running, 1, 'two jobs at once');
    await new Promise((r) => setTimeout(r, ms));
    log.push(name);
    running -= 1;
    if (fail) throw new Error(`${name} failed`);
    return name;
  };
  const results = [q.push(job('slow', 30)), q.push(job('bad', 1, true)), q.push(job('fast', 1))];
  assert.equal(await results[0], 'slow');
  await assert.rejects(results[1], /bad failed/);
  assert.equal(await results[2], 'fast');
  assert.deepEqual(log, ['slow', 'bad', 'fast']);
  assert.deepEqual(errors, ['bad failed']);
});

test('quality score matches the documented formula', () => {
  assert.equal(qualityScore(0, 5, 1), 5);
  assert.equal(qualityScore(4, 5, 1), 3);
  assert.equal(qualityScore(20, 400, 100), 0);
  assert.equal(qualityScore(1, null, 0), 5);
});

test('error texts', () => {
  assert.equal(describeError('token_expired'), 'Your room token has expired. Ask for a new token and join again.');
  assert.equal(describeError('unknown_code', 'the server said so'), 'the server said so');
  assert.equal(describeError('unknown_code'), 'unknown_code');
});

test('payload limits count UTF-8 bytes of text and raw bytes of binary', () => {
  const limits = { max_payload_bytes: 4 };
  checkPayload({ text: 'abcd' }, limits);
  assert.throws(() => checkPayload({ text: 'abé' }, { max_payload_bytes: 3 }), (e) => e.code === 'payload_too_large' && e.field === 'payload.text');
  checkPayload({ binary: new Uint8Array(4) }, limits);
  assert.throws(() => checkPayload({ binary: new Uint8Array(5) }, limits), (e) => e.field === 'payload.binary');
  checkPayload({ text: 'x'.repeat(10000) }, null);
});

test('base64 round trip, also above the argument-count limit of fromCharCode', () => {
  const big = Uint8Array.from({ length: 100000 }, (_, i) => (i * 7) & 255);
  assert.deepEqual(fromBase64(toBase64(big)), big);
  assert.equal(toBase64(new Uint8Array([1, 2, 3])), 'AQID');
});

const SDP = [
  'v=0', 'o=- 5331478368978297428 2 IN IP4 0.0.0.0', 's=-', 't=0 0',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=ice-ufrag:abcd', 'a=mid:video0', 'a=recvonly',
  'm=audio 0 UDP/TLS/RTP/SAVPF 111', 'a=mid:audio1', 'a=sendonly', 'a=msid:stream-1 track-a',
  'm=application 0 UDP/DTLS/SCTP webrtc-datachannel', 'a=mid:application2',
  'm=video 0 UDP/TLS/RTP/SAVPF 96', 'a=mid:3', 'a=sendrecv', 'a=msid:stream-1 track-v', '',
].join('\r\n');

test('SDP helpers: session id, ufrag, receiving mids, msid tracks', () => {
  assert.equal(sdpSessionId(SDP), '5331478368978297428');
  assert.equal(sdpIceUfrag(SDP), 'abcd');
  assert.deepEqual([...receivingMids(SDP)], [['video0', 'video'], ['3', 'video']]);
  assert.deepEqual([...msidTracks(SDP)], [['audio1', 'track-a'], ['3', 'track-v']]);
});
