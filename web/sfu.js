// Streamwire browser client, SFU rooms (docs/sfu.md; docs/protocol.md, "SFU rooms"): when
// `welcome.topology` is `sfu`, the client opens at most two peer connections, both to the
// server's SFU, instead of one per member:
// - `sfu-publish`: this client's tracks, send-only; the client offers, the SFU answers;
// - `sfu-subscribe`: every other member's media; the SFU offers (after `sfu_streams`, which
//   names the member of each m-line), the client answers.
// Remote tracks are reported as in the mesh: a `track` event with the member's `peerId` and
// one MediaStream per member; `trackended` likewise. No data channel in SFU rooms.
// Simulcast: the camera is published in three layers (SIMULCAST_LAYERS) unless the client was
// made with `simulcast: false`; the server picks the layer each subscriber receives from its
// downlink's losses and the size it renders the video at (`sfu_view`, setRenderedSize).

import { PeerLink } from './streamwire-peer.js';

export const SFU_PUBLISH = 'sfu-publish';
export const SFU_SUBSCRIBE = 'sfu-subscribe';

/** Whether `id` is one of the SFU's pseudo-peers. */
export function isSfuPeer(id) {
  return id === SFU_PUBLISH || id === SFU_SUBSCRIBE;
}

/**
 * The camera's simulcast layers, highest first (Janus's default rid order `hml`): full, half
 * and quarter size; Janus substreams 2, 1 and 0. The bitrate caps are explicit: without them
 * Chromium hands out its per-layer defaults by position, lowest layer first, and gave the
 * quarter-size layer about 1.8 Mbit/s and the full one 0.8 (measured).
 */
export const SIMULCAST_LAYERS = Object.freeze([
  { rid: 'h', maxBitrate: 1_500_000 },
  { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
]);

/** `sfu_view` frames for one m-line at most this often (a window being resized). */
const VIEW_INTERVAL_MS = 250;

function state(c) {
  if (!c._sfu) c._sfu = { mids: new Map(), streams: new Map(), owners: new Map(), views: new Map() };
  return c._sfu;
}

/** The encodings of a local track on the publishing connection: layers for the camera. */
function sendEncodings(c, track, label) {
  if (!c.simulcast || track.kind !== 'video' || label === 'screen') return undefined;
  return SIMULCAST_LAYERS.map((e) => ({ ...e }));
}

/**
 * StreamwireClient#setRenderedSize in an SFU room (documented there): an `sfu_view` frame for
 * the m-line carrying `track`, when the size changed; at most one per VIEW_INTERVAL_MS and
 * m-line, the latest size last.
 */
export function setRenderedSize(c, track, width, height) {
  const l = c.pcs.get(SFU_SUBSCRIBE);
  const mid = l?.pc.getTransceivers().find((t) => t.receiver.track === track)?.mid;
  if (mid == null) return false;
  const w = Math.max(0, Math.round(width));
  const h = Math.max(0, Math.round(height));
  const views = state(c).views;
  const v = views.get(mid) ?? { sent: '', at: 0, timer: null };
  views.set(mid, v);
  v.want = { w, h };
  const send = () => {
    v.timer = null;
    const key = `${v.want.w}x${v.want.h}`;
    if (key === v.sent || c.pcs.get(SFU_SUBSCRIBE) !== l) return;
    try {
      c._send({ type: 'sfu_view', mid, width: v.want.w, height: v.want.h });
      v.sent = key;
      v.at = Date.now();
    } catch (e) {
      c._emitError(e.code ?? 'internal', e.message);
    }
  };
  const wait = v.at + VIEW_INTERVAL_MS - Date.now();
  if (wait <= 0) send();
  else v.timer ??= setTimeout(send, wait);
  return true;
}

/** The member whose media `track` of the subscribing connection carries. */
function memberOf(c, link, track) {
  const tr = link.pc.getTransceivers().find((t) => t.receiver.track === track);
  return tr?.mid != null ? state(c).mids.get(tr.mid) : undefined;
}

/** Events of the SFU connections, with remote tracks put under their member. */
function onLinkEvent(c, link, type, detail) {
  if (type === 'error') return c._emitError(detail.code, detail.message, { peerId: detail.peerId });
  const s = state(c);
  if (type === 'track' && link.peerId === SFU_SUBSCRIBE) {
    const member = memberOf(c, link, detail.track);
    if (!member) return c._emitError('negotiation', `SFU track on an m-line of no known member (${detail.track.kind})`);
    let stream = s.streams.get(member);
    if (!stream) s.streams.set(member, (stream = new MediaStream()));
    stream.addTrack(detail.track);
    s.owners.set(detail.track, member);
    const info = (c.peers.get(member)?.tracks ?? []).find((t) => t.kind === detail.track.kind && t.label !== 'screen');
    return c._emit('track', { peerId: member, track: detail.track, stream, info, screen: false });
  }
  if (type === 'trackended' && link.peerId === SFU_SUBSCRIBE) {
    const member = s.owners.get(detail.track);
    if (!member) return;
    s.owners.delete(detail.track);
    const stream = s.streams.get(member);
    stream?.removeTrack(detail.track);
    return c._emit('trackended', { peerId: member, track: detail.track, stream, screen: false });
  }
  return c._emit(type, detail);
}

function link(c, id) {
  let l = c.pcs.get(id);
  if (l) return l;
  const publishing = id === SFU_PUBLISH;
  l = new PeerLink(id, publishing, {
    sendSignal: (obj) => c._sendSignal(obj),
    emit: (type, detail) => onLinkEvent(c, l, type, detail),
    enqueue: (job) => c._queue.push(job),
    rtcConfig: () => c._rtcConfiguration(),
    localTracks: () => (publishing ? c._local : []),
    canSubscribe: () => !publishing && c.grants.has('subscribe'),
    peerInfo: () => undefined,
    sendEncodings: (track, label) => (publishing ? sendEncodings(c, track, label) : undefined),
    dataChannel: false,
    RTCPeerConnection: c._RTC,
  });
  c.pcs.set(id, l);
  return l;
}

/** After `welcome` in an SFU room: publish what the client has. */
export async function start(c) {
  c._sfu = null;
  await publishing(c);
}

/** Open the publishing connection if there is something to publish and it is allowed. */
export async function publishing(c) {
  if (!c._local.length || !c.grants.has('publish') || c.pcs.has(SFU_PUBLISH)) return;
  await link(c, SFU_PUBLISH).offer();
}

/** The subscribing connection closes: its m-lines' rendered sizes are void. */
function forgetViews(c) {
  const views = state(c).views;
  for (const v of views.values()) clearTimeout(v.timer);
  views.clear();
}

/** End every track of the subscribing connection (it closes or became void). */
function endSubscribedTracks(c) {
  const s = state(c);
  for (const [track, member] of [...s.owners]) {
    const stream = s.streams.get(member);
    stream?.removeTrack(track);
    c._emit('trackended', { peerId: member, track, stream, screen: false });
  }
  s.owners.clear();
}

/**
 * `sfu_streams`: remember the member of each m-line of the next offer. `fresh`: that offer
 * opens a new subscribing connection (the SFU replaced the subscription); the current one
 * closes and its tracks end.
 */
export function streams(c, list, fresh) {
  const s = state(c);
  if (fresh) {
    endSubscribedTracks(c);
    s.mids.clear();
    forgetViews(c);
    c._closeLink(SFU_SUBSCRIBE);
  }
  for (const e of list ?? []) s.mids.set(e.mid, e.peer_id);
}

/** An offer, answer or ICE candidate from a pseudo-peer. */
export async function onSignal(c, m) {
  if (m.type === 'offer' && m.from === SFU_SUBSCRIBE) return link(c, SFU_SUBSCRIBE).onOffer(m.sdp);
  const l = c.pcs.get(m.from);
  if (!l) return;
  if (m.type === 'answer') return l.onAnswer(m.sdp);
  if (m.type === 'ice') return l.onIce(m);
}

/**
 * `topology` frame. `sfu` in a mesh room: the room moved to the SFU; the mesh connections
 * close, their tracks end. `sfu` in an SFU room: the server re-created the room on its SFU
 * (its Janus instance was lost); both SFU connections are void, their tracks end, and the
 * client publishes again (the SFU offers the others' media anew).
 */
export async function moveTo(c, topology) {
  if (topology !== 'sfu') return;
  if (c.topology === 'sfu') {
    endSubscribedTracks(c);
    forgetViews(c);
    for (const id of [SFU_PUBLISH, SFU_SUBSCRIBE]) c._closeLink(id);
    return start(c);
  }
  for (const [id, link] of [...c.pcs]) {
    for (const s of [link.stream, link.screenStream]) {
      for (const t of s.getTracks()) {
        s.removeTrack(t);
        c._emit('trackended', { peerId: id, track: t, stream: s, screen: s === link.screenStream });
      }
    }
    c._closeLink(id);
  }
  c.topology = 'sfu';
  await start(c);
}
