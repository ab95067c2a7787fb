// Unit tests of the browser client's state machine (no browser needed): node --test web/test/
import test from 'node:test';
import assert from 'node:assert/strict';

import { StreamwireClient } from '../streamwire.js';
import { FakeServer, welcome, record, until } from './fake-server.mjs';

/** A client on a fake server, signalling only (node has no WebRTC), with a fast back-off. */
function client(server, over = {}) {
  return new StreamwireClient({
    url: 'ws://test/', room: 'r', token: 't', media: false, WebSocket: server.WebSocket,
    backoff: { baseMs: 5, maxMs: 20 }, ...over,
  });
}

/** Join: open the first socket, answer the join with `w`. */
async function joined(server, c, w = welcome()) {
  const p = c.join();
  const s = await server.socket(0);
  s.open();
  await s.waitSent(1);
  s.deliver(w);
  await p;
  return s;
}

test('a refused join leaves the client failed, not connecting', async () => {
  const server = new FakeServer();
  const c = client(server);
  const states = record(c, 'state');
  const p = c.join();
  const s = await server.socket(0);
  s.open();
  const [join] = await s.waitSent(1);
  assert.equal(join.type, 'join');
  s.deliver({ type: 'error', code: 'token_missing', message: 'empty token', in_type: 'join', field: 'token' });
  await assert.rejects(p, (e) => e.code === 'token_missing' && e.message === 'A room token is required.' && e.field === 'token');
  assert.equal(c.state, 'failed');
  assert.deepEqual(states.map((x) => x.state), ['connecting', 'failed']);
  assert.equal(states[1].error.code, 'token_missing');
  assert.equal(s.readyState, 3, 'the refused socket is closed');
});

test('an unreachable server fails the join with server_unreachable', async () => {
  const server = new FakeServer();
  const c = client(server);
  const p = c.join();
  (await server.socket(0)).drop();
  await assert.rejects(p, (e) => e.code === 'server_unreachable');
  assert.equal(c.state, 'failed');
});

test('welcome: grants, limits and ICE servers (TURN credentials and ?transport=tcp intact)', async () => {
  const server = new FakeServer();
  const c = client(server, { rtcConfig: { iceServers: [{ urls: ['stun:app.example:3478'] }], iceTransportPolicy: 'relay' } });
  const joinedPeers = record(c, 'peerjoined');
  const turn = { urls: ['turn:turn.example:443?transport=tcp', 'turns:turn.example:5349'], username: '1700000000:me-1', credential: 'c2VjcmV0' };
  await joined(server, c, welcome({
    grants: ['subscribe'], ice_servers: [turn],
    peers: [{ peer_id: 'a-1', user: 'a', name: 'A', tracks: [], metadata: null }], offer_to: ['a-1'],
  }));
  assert.equal(c.state, 'joined');
  assert.equal(c.peerId, 'me-1');
  assert.deepEqual([...c.grants], ['subscribe']);
  assert.equal(c.limits.max_payload_bytes, 65536);
  assert.deepEqual(joinedPeers.map((d) => d.peer.peer_id), ['a-1']);
  const cfg = c._rtcConfiguration();
  assert.equal(cfg.iceTransportPolicy, 'relay');
  assert.deepEqual(cfg.iceServers, [{ urls: ['stun:app.example:3478'] }, turn]);
});

test('frames are handled one at a time in arrival order; a failing frame becomes an error event', async () => {
  const server = new FakeServer();
  const c = client(server);
  const s = await joined(server, c);
  const errors = record(c, 'error');
  const seen = [];
  c.addEventListener('message', (e) => seen.push(e.detail.text));
  c.addEventListener('peerjoined', (e) => seen.push(`joined ${e.detail.peer.peer_id}`));
  s.deliver({ n: 1, type: 'message', from: 'x', seq: 1, direct: false, payload: { text: 'one' } });
  s.deliver({ n: 2, type: 'message', from: 'x', seq: 2, direct: false }); // no payload: throws inside
  s.deliver({ n: 3, type: 'peer_joined', peer: { peer_id: 'b-1', user: 'b', name: 'B', tracks: [], metadata: null }, expect_offer: true });
  s.deliver({ n: 4, type: 'message', from: 'x', seq: 3, direct: false, payload: { text: 'three' } });
  s.deliver({ n: 2, type: 'message', from: 'x', seq: 2, direct: false, payload: { text: 'replayed' } });
  await until('all frames', () => seen.length === 3);
  assert.deepEqual(seen, ['one', 'joined b-1', 'three']);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'internal');
  assert.match(errors[0].message, /frame handling failed/);
  await until('the ack', () => s.sent.some((f) => f.type === 'ack'));
  assert.deepEqual(s.sent.filter((f) => f.type === 'ack').at(-1), { type: 'ack', n: 4 });
});

test('a message over welcome.limits fails locally, sends nothing and consumes no seq', async () => {
  const server = new FakeServer();
  const c = client(server);
  const s = await joined(server, c, welcome({ limits: { max_frame_bytes: 1500, max_payload_bytes: 1000 } }));
  const before = s.sent.length;
  await assert.rejects(c.sendMessage('é'.repeat(501)), (e) => e.code === 'payload_too_large' && e.field === 'payload.text' && /1002 bytes/.test(e.message) && /at most 1000/.test(e.message));
  await assert.rejects(c.sendMessage(new Uint8Array(1001)), (e) => e.code === 'payload_too_large' && e.field === 'payload.binary');
  // Within the payload limit but not the frame limit (JSON escaping grows it).
  await assert.rejects(c.sendMessage('"'.repeat(999)), (e) => e.code === 'frame_too_large' && /over the server's limit of 1500 bytes/.test(e.message));
  assert.equal(s.sent.length, before, 'nothing was sent');
  const d = c.sendMessage('fits');
  const [m] = (await s.waitSent(before + 1)).slice(before);
  assert.deepEqual(m, { type: 'message', payload: { text: 'fits' }, seq: 1 });
  s.deliver({ n: 1, type: 'delivery', seq: 1, status: 'delivered', recipients: 2 });
  assert.deepEqual(await d, { seq: 1, status: 'delivered', recipients: 2, reason: undefined });
});

test('grants: no message, no publish', async () => {
  const server = new FakeServer();
  const c = client(server);
  const s = await joined(server, c, welcome({ grants: ['subscribe'] }));
  const before = s.sent.length;
  await assert.rejects(c.sendMessage('hi'), (e) => e.code === 'forbidden' && /message/.test(e.message));
  // Refused before any capture: node has no camera, so reaching getUserMedia would throw a TypeError.
  await assert.rejects(c.publish(), (e) => e.code === 'forbidden' && /publish/.test(e.message));
  await assert.rejects(c.shareScreen(), (e) => e.code === 'forbidden');
  assert.equal(s.sent.length, before);
});

test('reconnect: resume with last_n, resend unconfirmed frames in seq order', async () => {
  const server = new FakeServer();
  const c = client(server);
  const states = record(c, 'state');
  const s0 = await joined(server, c);
  s0.deliver({ n: 1, type: 'peer_joined', peer: { peer_id: 'b-1', user: 'b', name: 'B', tracks: [], metadata: null }, expect_offer: true });
  const d1 = c.sendMessage('one');
  const d2 = c.sendMessage('two');
  await s0.waitSent(3);
  s0.drop();
  await until('reconnecting', () => c.state === 'reconnecting');
  const d3 = c.sendMessage('three, while away');
  const s1 = await server.socket(1);
  s1.open();
  const [resume] = await s1.waitSent(1);
  assert.deepEqual(resume, { type: 'resume', v: 1, resume_token: 'rt-1', last_n: 1 });
  s1.deliver({ type: 'resumed', peer_id: 'me-1', last_seq: 1, replay: 0 });
  const resent = (await s1.waitSent(3)).slice(1);
  assert.deepEqual(resent.map((f) => [f.seq, f.payload.text]), [[2, 'two'], [3, 'three, while away']]);
  for (const seq of [1, 2, 3]) s1.deliver({ n: 1 + seq, type: 'delivery', seq, status: 'delivered', recipients: 1 });
  assert.deepEqual((await Promise.all([d1, d2, d3])).map((d) => d.status), ['delivered', 'delivered', 'delivered']);
  assert.deepEqual(states.map((x) => x.state), ['connecting', 'joined', 'reconnecting', 'resumed']);
  assert.equal(c.peers.size, 1, 'peers kept across a resume');
});

test('a lost session (server restart) removes every old peer, then joins afresh', async () => {
  const server = new FakeServer();
  const c = client(server);
  const left = record(c, 'peerleft');
  const s0 = await joined(server, c, welcome({ peers: [{ peer_id: 'a-1', user: 'a', name: 'A', tracks: [], metadata: null }] }));
  const pending = c.sendMessage('unconfirmed');
  s0.drop();
  const s1 = await server.socket(1);
  s1.open();
  await s1.waitSent(1);
  s1.deliver({ type: 'error', code: 'resume_unknown', message: 'no such session', in_type: 'resume' });
  assert.deepEqual((await pending).reason, 'session_lost');
  const s2 = await server.socket(2);
  s2.open();
  const [join] = await s2.waitSent(1);
  assert.equal(join.type, 'join');
  assert.deepEqual(left.map((d) => [d.peerId, d.reason]), [['a-1', 'session_lost']]);
  s2.deliver(welcome({ peer_id: 'me-9', resume_token: 'rt-9', peers: [{ peer_id: 'a-7', user: 'a', name: 'A', tracks: [], metadata: null }] }));
  await until('joined again', () => c.state === 'joined' && c.peerId === 'me-9');
  assert.deepEqual([...c.peers.keys()], ['a-7']);
  // New messages number from 1 again in the new session.
  c.sendMessage('fresh');
  const sent = await s2.waitSent(2);
  assert.equal(sent[1].seq, 1);
});

test('a user who joins again replaces their older peer at once', async () => {
  const server = new FakeServer();
  const c = client(server);
  const left = record(c, 'peerleft');
  const s = await joined(server, c, welcome({ peers: [{ peer_id: 'a-1', user: 'ann', name: 'Ann', tracks: [], metadata: null }] }));
  s.deliver({ n: 1, type: 'peer_joined', peer: { peer_id: 'a-2', user: 'ann', name: 'Ann', tracks: [], metadata: null }, expect_offer: true });
  await until('the replacement', () => left.length === 1);
  assert.deepEqual(left.map((d) => [d.peerId, d.reason]), [['a-1', 'replaced']]);
  assert.deepEqual([...c.peers.keys()], ['a-2']);
  // The server's own peer_left for the old one, arriving later, changes nothing.
  s.deliver({ n: 2, type: 'peer_left', peer_id: 'a-1', reason: 'replaced' });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(left.length, 1);
});

test('feedback goes through the frame handler', async () => {
  const server = new FakeServer();
  const c = client(server);
  const s = await joined(server, c);
  const onmessage = s.onmessage;
  const ok = c.sendFeedback(4, ' fine ');
  const bad = c.sendFeedback(5, 'x');
  assert.equal(s.onmessage, onmessage, 'no second message listener');
  const sent = await s.waitSent(3);
  assert.deepEqual(sent.slice(1), [{ type: 'feedback', rating: 4, comment: 'fine' }, { type: 'feedback', rating: 5, comment: 'x' }]);
  s.deliver({ type: 'feedback_ack' });
  s.deliver({ type: 'error', code: 'not_implemented', message: 'no telemetry store', in_type: 'feedback' });
  await ok;
  await assert.rejects(bad, (e) => e.code === 'not_implemented');
  await assert.rejects(c.sendFeedback(0), (e) => e.code === 'invalid_field' && e.field === 'rating');
});

test('bye without reconnect fails the client with its code', async () => {
  const server = new FakeServer();
  const c = client(server);
  const errors = record(c, 'error');
  const s = await joined(server, c, welcome({ peers: [{ peer_id: 'a-1', user: 'a', name: 'A', tracks: [], metadata: null }] }));
  const left = record(c, 'peerleft');
  s.deliver({ type: 'bye', code: 'kicked', message: 'removed by an admin', reconnect: false });
  await until('failed', () => c.state === 'failed');
  assert.equal(errors[0].code, 'kicked');
  assert.equal(errors[0].message, 'You were removed from the room.');
  assert.deepEqual(left.map((d) => d.reason), ['session_lost']);
  assert.equal(server.sockets.length, 1, 'no reconnect after a final bye');
});

test('the server gone for good: reconnecting gives up after maxAttempts with server_gone', async () => {
  const server = new FakeServer();
  const c = client(server, { maxAttempts: 3 });
  const errors = record(c, 'error');
  const s = await joined(server, c);
  s.drop();
  for (let i = 1; i <= 3; i++) (await server.socket(i)).drop();
  await until('failed', () => c.state === 'failed');
  assert.equal(server.sockets.length, 4);
  assert.equal(errors.at(-1).code, 'server_gone');
  // A new join is possible on the same client afterwards.
  const p = c.join();
  const s5 = await server.socket(4);
  s5.open();
  await s5.waitSent(1);
  s5.deliver(welcome());
  await p;
  assert.equal(c.state, 'joined');
});

test('leave: sends leave, fails pending deliveries, state closed', async () => {
  const server = new FakeServer();
  const c = client(server);
  const s = await joined(server, c);
  const d = c.sendMessage('late');
  c.leave();
  assert.equal(c.state, 'closed');
  assert.equal(s.sent.at(-1).type, 'leave');
  assert.equal((await d).reason, 'left');
  await assert.rejects(c.sendMessage('after'), (e) => e.code === 'not_connected');
});

test('a fresh join refused with banned after a lost session fails the client, no retry loop', async () => {
  const server = new FakeServer();
  const c = client(server);
  const errors = record(c, 'error');
  const s0 = await joined(server, c);
  s0.drop();
  const s1 = await server.socket(1);
  s1.open();
  await s1.waitSent(1);
  s1.deliver({ type: 'error', code: 'resume_unknown', message: 'no such session', in_type: 'resume' });
  const s2 = await server.socket(2);
  s2.open();
  const [join] = await s2.waitSent(1);
  assert.equal(join.type, 'join');
  s2.deliver({ type: 'error', code: 'banned', message: 'removed by an admin', in_type: 'join' });
  await until('failed', () => c.state === 'failed');
  assert.deepEqual(errors.map((e) => e.code), ['banned']);
  assert.match(errors[0].message, /cannot join it again/);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(server.sockets.length, 3, 'no further connection attempt');
});

test('an ice_servers frame (fresh TURN credentials) replaces the server list', async () => {
  const server = new FakeServer();
  const c = client(server);
  const s = await joined(server, c, welcome({ ice_servers: [{ urls: ['turn:t.example:3478'], username: '100:me-1', credential: 'old' }] }));
  assert.equal(c.iceServers[0].credential, 'old');
  s.deliver({ n: 1, type: 'ice_servers', ice_servers: [{ urls: ['turn:t.example:443?transport=tcp'], username: '200:me-1', credential: 'new' }] });
  await until('the new list', () => c.iceServers[0]?.credential === 'new');
  assert.deepEqual(c.iceServers, [{ urls: ['turn:t.example:443?transport=tcp'], username: '200:me-1', credential: 'new' }]);
  assert.deepEqual(c._rtcConfiguration().iceServers, c.iceServers);
});
