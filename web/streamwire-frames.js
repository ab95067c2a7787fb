// Streamwire browser client: what each server frame does (docs/protocol.md, "Server → client
// messages"). `onFrame(client, m)` is the client's one entry point; the client's state and
// its helpers (`_send`, `_emit`, `_link`, ...) stay on StreamwireClient (streamwire.js).

import { StreamwireError, describeError, fromBase64 } from './streamwire-util.js';
import * as media from './streamwire-media.js';
import * as sfu from './sfu.js'; // t15: SFU rooms

/** What one server frame does (the reliable stream's `n` checked first). */
export async function onFrame(client, m) {
  if (typeof m.n === 'number') {
    if (m.n <= client._lastN) return;
    client._lastN = m.n;
    client._scheduleAck();
  }
  switch (m.type) {
    case 'welcome':
      return onWelcome(client, m);
    case 'resumed':
      client._setState('resumed');
      if (Array.isArray(m.ice_servers)) client._setIceServers(m.ice_servers);
      // Resend, in seq order, the frames the server has not accepted yet.
      client._confirm(m.last_seq);
      for (const seq of [...client._kept.keys()].sort((a, b) => a - b)) client._send(client._kept.get(seq));
      return;
    case 'ice_servers':
      // Fresh TURN credentials (every half TTL): for connections created or restarted from now on.
      if (Array.isArray(m.ice_servers)) client._setIceServers(m.ice_servers);
      return;
    case 'peer_joined':
      return onPeerJoined(client, m.peer);
    case 'peer_left':
      return client._removePeer(m.peer_id, m.reason);
    case 'published':
      return onPublished(client, m.peer_id, m.track);
    case 'unpublished': {
      const p = client.peers.get(m.peer_id);
      if (p) p.tracks = p.tracks.filter((t) => t.id !== m.track_id);
      if (p) client._emit('peerupdated', { peer: p });
      // Its m-line goes inactive in the next negotiation, which the offerer starts.
      return client.pcs.get(m.peer_id)?.reoffer();
    }
    case 'metadata_changed': {
      const p = client.peers.get(m.peer_id);
      if (p) {
        p.metadata = m.metadata;
        client._emit('peerupdated', { peer: p });
      }
      return;
    }
    case 'sfu_streams': // t15: SFU rooms (web/sfu.js)
      return sfu.streams(client, m.streams, m.fresh === true);
    case 'topology': // t15
      return client.media ? sfu.moveTo(client, m.topology) : undefined;
    case 'offer': {
      if (client.media && sfu.isSfuPeer(m.from)) return sfu.onSignal(client, m); // t15
      if (!client.media) return;
      const link = client._link(m.from, false);
      if (link.offerer) {
        client._emitError('negotiation', `peer ${m.from} sent an offer although client side offers for the pair`, { peerId: m.from });
        return;
      }
      return link.onOffer(m.sdp);
    }
    case 'answer':
      if (client.media && sfu.isSfuPeer(m.from)) return sfu.onSignal(client, m); // t15
      return client.pcs.get(m.from)?.onAnswer(m.sdp);
    case 'ice':
      if (client.media && sfu.isSfuPeer(m.from)) return sfu.onSignal(client, m); // t15
      if (!client.media) return;
      return (client.pcs.get(m.from) ?? client._link(m.from, false)).onIce(m);
    case 'message': {
      const d = { from: m.from, seq: m.seq, direct: m.direct, via: 'signalling' };
      if ('text' in m.payload) d.text = m.payload.text;
      else d.binary = fromBase64(m.payload.binary);
      client._emit('message', d);
      return;
    }
    case 'delivery': {
      client._confirm(m.seq);
      const resolve = client._pending.get(m.seq);
      if (resolve) {
        client._pending.delete(m.seq);
        resolve({ seq: m.seq, status: m.status, recipients: m.recipients, reason: m.reason });
      }
      return;
    }
    case 'whiteboard':
      // One y-protocols message of a board (web/whiteboard/board.js reads them).
      client._emit('whiteboard', { from: m.from ?? null, board: m.board, data: fromBase64(m.data) });
      return;
    case 'feedback_ack':
      client._feedback.shift()?.resolve();
      return;
    case 'error':
      if (m.in_type === 'feedback' && client._feedback.length) {
        client._feedback.shift().reject(new StreamwireError(m.code, describeError(m.code, m.message), m.field));
        return;
      }
      client._emitError(m.code, m.message, { field: m.field, inType: m.in_type });
      return;
    case 'bye':
      // reconnect: true (shutdown, idle_timeout, slow_consumer): the close that follows
      // starts a resume (or, when the session is gone, a fresh join).
      if (!m.reconnect) client._fail(m.code, m.message);
      return;
    default:
      return;
  }
}

/** `welcome`: the member list, the join's publish, the first offers. */
async function onWelcome(client, m) {
  client._startLevels();
  client.peerId = m.peer_id;
  client._resumeToken = m.resume_token;
  client.name = m.name;
  client.user = m.user ?? null;
  client.grants = new Set(m.grants ?? []);
  client.limits = m.limits ?? null;
  client._setIceServers(m.ice_servers ?? []);
  client.peers.clear();
  for (const p of m.peers) {
    client.peers.set(p.peer_id, p);
    client._emit('peerjoined', { peer: p });
  }
  if (client._local.length && !client.grants.has('publish')) {
    media.releaseLocal(client);
    client._emitError('forbidden', 'Your room token does not allow publishing (no `publish` grant): camera and microphone were released.', { field: 'grants' });
  }
  const want = client._joinPublish;
  client._joinPublish = null;
  if (want && !client.localStream) {
    try {
      if (!client.grants.has('publish')) {
        throw new StreamwireError('forbidden', 'Your room token does not allow publishing (no `publish` grant).', 'grants');
      }
      const given = typeof want.getTracks === 'function' ? want : undefined;
      await media.publish(client, given, given || want === true ? {} : want);
    } catch (e) {
      if (typeof want.getTracks === 'function') for (const t of want.getTracks()) t.stop();
      client.publishError = e;
      client._emitError(e.code ?? 'media_denied', e.message);
    }
  }
  client._setState('joined');
  media.announce(client, client._local);
  client.topology = m.topology ?? 'mesh'; // t15
  if (!client.media) return;
  if (client.topology === 'sfu') return sfu.start(client); // t15
  return Promise.all(m.offer_to.map((id) => client._link(id, true).offer()));
}

function onPeerJoined(client, peer) {
  // The same user joined again (a reload, another tab): the server replaces the older
  // session; drop it here at once so no stale tile or connection lingers.
  for (const [id, p] of client.peers) {
    if (id !== peer.peer_id && p.user === peer.user) client._removePeer(id, 'replaced');
  }
  client.peers.set(peer.peer_id, peer);
  client._emit('peerjoined', { peer });
}

function onPublished(client, peerId, track) {
  const p = client.peers.get(peerId);
  const known = p?.tracks.some((t) => t.id === track.id);
  if (p) {
    p.tracks = [...p.tracks.filter((t) => t.id !== track.id), track];
    client._emit('peerupdated', { peer: p });
  }
  // A peer we offer to started publishing after our offer: re-offer with a receive m-line
  // for it (only the pair's offerer offers; see docs/protocol.md).
  if (!known && (track.kind === 'audio' || track.kind === 'video')) return client.pcs.get(peerId)?.reoffer(track.kind);
}
