// Streamwire browser client: a plain ES module, no build step.
// Speaks the signalling protocol of docs/protocol.md and the browser's own WebRTC.
// See docs/web.md for the API and an example.

/**
 * @typedef {{id: string, kind: 'audio'|'video'|'data', label?: string}} TrackInfo
 * @typedef {{peer_id: string, user: string, name: string, tracks: TrackInfo[], metadata: any}} PeerInfo
 * @typedef {{seq: number, status: 'delivered'|'failed', recipients: number, reason?: string}} Delivery
 * @typedef {{bitrateKbps: number, fps: number, rttMs: number|null, lossPct: number, jitterMs: number, quality: number}} PeerStats
 */

/** An error with a protocol `code` (e.g. `token_expired`) and a readable `message`. */
export class StreamwireError extends Error {
  /** @param {string} code @param {string} message @param {string} [field] */
  constructor(code, message, field) {
    super(message);
    this.name = 'StreamwireError';
    this.code = code;
    this.field = field;
  }
}

/**
 * Network quality 0-5, as src/webrtc/stats.rs documents:
 * 5 - min(loss%/2, 5) - min(max(rtt-150,0)/150, 2) - min(max(jitter-30,0)/30, 2), clamped, rounded.
 * @param {number} lossPct @param {number|null} rttMs @param {number} jitterMs @returns {number}
 */
export function qualityScore(lossPct, rttMs, jitterMs) {
  const loss = Math.min(Math.max(lossPct, 0) / 2, 5);
  const rtt = rttMs == null ? 0 : Math.min(Math.max(rttMs - 150, 0) / 150, 2);
  const jit = Math.min(Math.max(jitterMs - 30, 0) / 30, 2);
  return Math.round(Math.min(Math.max(5 - loss - rtt - jit, 0), 5));
}

/** Human-readable text for a protocol error code. */
export function describeError(code, message) {
  const texts = {
    token_expired: 'Your room token has expired. Ask for a new token and join again.',
    token_forged: 'The room token is not valid for this server (bad signature).',
    token_wrong_room: 'This token is for a different room.',
    token_invalid: 'The room token is malformed.',
    token_missing: 'A room token is required.',
    room_full: 'The room is full.',
    shutdown: 'The server is shutting down.',
    kicked: 'You were removed from the room.',
    replaced: 'You joined this room from somewhere else; this window was disconnected.',
  };
  return texts[code] ?? message ?? code;
}

/**
 * A connection to a Streamwire room.
 *
 * Events (`addEventListener`), each a CustomEvent whose `detail` is given:
 * - `state`: `{state}` one of `connecting`, `joined`, `reconnecting`, `resumed`, `closed`, `failed`
 * - `peerjoined`: `{peer}`; `peerleft`: `{peerId, reason}`
 * - `track`: `{peerId, track, stream}` a remote media track arrived
 * - `message`: `{from, seq, direct, text?, binary?}`
 * - `error`: `{code, message, field}` (also rejected from `join()`)
 */
export class StreamwireClient extends EventTarget {
  /**
   * @param {{url: string, room: string, token: string, metadata?: any,
   *          rtcConfig?: RTCConfiguration, maxAttempts?: number}} opts
   */
  constructor(opts) {
    super();
    this.url = opts.url;
    this.room = opts.room;
    this.token = opts.token;
    this.metadata = opts.metadata ?? null;
    this.rtcConfig = opts.rtcConfig ?? {};
    this.maxAttempts = opts.maxAttempts ?? 10;
    /** @type {string|null} */ this.peerId = null;
    /** @type {Map<string, PeerInfo>} */ this.peers = new Map();
    /** @type {Map<string, {pc: RTCPeerConnection, offerer: boolean, stream: MediaStream, pendingIce: any[], last?: any}>} */
    this.pcs = new Map();
    /** @type {MediaStream|null} */ this.localStream = null;
    this.state = 'new';
    this._ws = null;
    this._lastN = 0;
    this._ackedN = 0;
    this._ackTimer = null;
    this._seq = 0;
    /** Messages awaiting their delivery result, by seq. @type {Map<number, Function>} */
    this._pending = new Map();
    /** Frames with a seq not yet confirmed by the server, resent after a resume. @type {Map<number, any>} */
    this._kept = new Map();
    this._resumeToken = null;
    this._leaving = false;
    this._attempt = 0;
  }

  _setState(state) {
    this.state = state;
    this._emit('state', { state });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _send(obj) {
    if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(JSON.stringify(obj));
  }

  /**
   * Send a frame numbered from the session's seq counter (messages and, for exactly-once
   * signalling, offer/answer/ice/publish): kept until the server confirms it, resent after a
   * resume. @returns {number} the seq
   */
  _sendReliable(obj) {
    this._seq += 1;
    const frame = { ...obj, seq: this._seq };
    this._kept.set(this._seq, frame);
    this._send(frame);
    return this._seq;
  }

  /** The server accepted everything up to `seq`. */
  _confirm(seq) {
    for (const k of [...this._kept.keys()]) if (k <= seq) this._kept.delete(k);
  }

  /**
   * Connect and join the room. Resolves with the `welcome` message; rejects with a
   * StreamwireError (`token_expired`, `server_unreachable`, ...).
   * @returns {Promise<any>}
   */
  join() {
    this._setState('connecting');
    return this._open({ type: 'join', v: 1, room: this.room, token: this.token, metadata: this.metadata });
  }

  _open(first) {
    return new Promise((resolve, reject) => {
      let settled = false;
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (e) {
        reject(new StreamwireError('bad_url', `cannot open ${this.url}: ${e.message}`));
        return;
      }
      this._ws = ws;
      ws.onopen = () => ws.send(JSON.stringify(first));
      ws.onmessage = (ev) => {
        let m;
        try {
          m = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (!settled && (m.type === 'welcome' || m.type === 'resumed')) {
          settled = true;
          this._attempt = 0;
          resolve(m);
        } else if (!settled && m.type === 'error') {
          settled = true;
          const err = new StreamwireError(m.code, describeError(m.code, m.message), m.field);
          reject(err);
          // Detach first so this deliberate close is not taken for a lost connection.
          this._ws = null;
          ws.close();
          return;
        }
        this._onFrame(m);
      };
      ws.onclose = () => {
        if (this._ws !== ws) return;
        if (!settled) {
          settled = true;
          reject(new StreamwireError('server_unreachable', `Cannot reach the Streamwire server at ${this.url}.`));
          return;
        }
        this._onClose();
      };
    });
  }

  _onClose() {
    if (this._leaving || this.state === 'closed' || this.state === 'failed') return;
    if (!this._resumeToken) {
      this._fail('server_gone', 'The connection to the server was lost.');
      return;
    }
    this._reconnect();
  }

  _fail(code, message) {
    this._setState('failed');
    this._emit('error', { code, message: describeError(code, message) });
    this._closePeers();
  }

  async _reconnect() {
    this._setState('reconnecting');
    while (!this._leaving) {
      this._attempt += 1;
      if (this._attempt > this.maxAttempts) {
        this._fail('server_gone', 'The server is gone: reconnecting failed.');
        return;
      }
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** this._attempt, 5000)));
      try {
        await this._open({ type: 'resume', v: 1, resume_token: this._resumeToken, last_n: this._lastN });
        return;
      } catch (e) {
        if (e.code === 'resume_unknown' || e.code === 'resume_gap') {
          // Session lost: start over as a newcomer; unconfirmed frames have unknown fate.
          this._closePeers();
          for (const [seq, resolve] of this._pending) {
            resolve({ seq, status: 'failed', recipients: 0, reason: 'session_lost' });
          }
          this._pending.clear();
          this._kept.clear();
          this._seq = 0;
          this._resumeToken = null;
          this._lastN = 0;
          this._ackedN = 0;
          try {
            await this.join();
            return;
          } catch (e2) {
            if (String(e2.code).startsWith('token_')) {
              this._fail(e2.code, e2.message);
              return;
            }
          }
        }
      }
    }
  }

  async _onFrame(m) {
    if (typeof m.n === 'number') {
      if (m.n <= this._lastN) return;
      this._lastN = m.n;
      this._scheduleAck();
    }
    switch (m.type) {
      case 'welcome':
        this.peerId = m.peer_id;
        this._resumeToken = m.resume_token;
        this.name = m.name;
        this.peers.clear();
        for (const p of m.peers) {
          this.peers.set(p.peer_id, p);
          this._emit('peerjoined', { peer: p });
        }
        this._setState('joined');
        this._announce();
        for (const id of m.offer_to) this._offer(id);
        break;
      case 'resumed': {
        this._setState('resumed');
        // Resend, in seq order, the frames the server has not accepted yet.
        this._confirm(m.last_seq);
        for (const seq of [...this._kept.keys()].sort((a, b) => a - b)) this._send(this._kept.get(seq));
        break;
      }
      case 'peer_joined':
        this.peers.set(m.peer.peer_id, m.peer);
        this._emit('peerjoined', { peer: m.peer });
        break;
      case 'peer_left':
        this.peers.delete(m.peer_id);
        this._closePeer(m.peer_id);
        this._emit('peerleft', { peerId: m.peer_id, reason: m.reason });
        break;
      case 'published': {
        const p = this.peers.get(m.peer_id);
        const known = p?.tracks.some((t) => t.id === m.track.id);
        if (p) p.tracks = [...p.tracks.filter((t) => t.id !== m.track.id), m.track];
        // A peer we offer to started publishing after our offer: re-offer with a receive
        // m-line for it (only the pair's offerer offers; see docs/protocol.md).
        if (!known && (m.track.kind === 'audio' || m.track.kind === 'video')) this._reoffer(m.peer_id, m.track.kind);
        break;
      }
      case 'unpublished': {
        const p = this.peers.get(m.peer_id);
        if (p) p.tracks = p.tracks.filter((t) => t.id !== m.track_id);
        // Its m-line goes inactive in the next negotiation, which the offerer starts.
        this._reoffer(m.peer_id);
        break;
      }
      case 'offer':
        await this._onOffer(m.from, m.sdp);
        break;
      case 'answer': {
        const e = this.pcs.get(m.from);
        if (e) {
          await e.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
          await this._flushIce(e);
          if (e.reoffer) this._reoffer(m.from);
        }
        break;
      }
      case 'ice':
        await this._onIce(m);
        break;
      case 'message': {
        const d = { from: m.from, seq: m.seq, direct: m.direct };
        if ('text' in m.payload) d.text = m.payload.text;
        else d.binary = Uint8Array.from(atob(m.payload.binary), (c) => c.charCodeAt(0));
        this._emit('message', d);
        break;
      }
      case 'delivery': {
        this._confirm(m.seq);
        const resolve = this._pending.get(m.seq);
        if (resolve) {
          this._pending.delete(m.seq);
          resolve({ seq: m.seq, status: m.status, recipients: m.recipients, reason: m.reason });
        }
        break;
      }
      case 'error':
        this._emit('error', { code: m.code, message: describeError(m.code, m.message), field: m.field });
        break;
      case 'bye':
        if (!m.reconnect) {
          this._leaving = true;
          this._fail(m.code, m.message);
        }
        break;
      default:
        break;
    }
  }

  _scheduleAck() {
    if (this._lastN - this._ackedN >= 32) return this._ack();
    if (!this._ackTimer) this._ackTimer = setTimeout(() => this._ack(), 50);
  }

  _ack() {
    clearTimeout(this._ackTimer);
    this._ackTimer = null;
    if (this._lastN > this._ackedN) {
      this._ackedN = this._lastN;
      this._send({ type: 'ack', n: this._lastN });
    }
  }

  /**
   * Capture camera and microphone (or use `stream`) and publish them to the room.
   * Before `join()`, the first offers/answers carry the tracks; after it, every peer
   * connection is renegotiated: where this client offers it re-offers with the new tracks,
   * where it answers the `publish` announcement asks the offerer to re-offer (see
   * docs/protocol.md, "Negotiation roles"). Publishing twice is refused.
   * Rejects with StreamwireError `media_denied` when the camera is refused.
   * @param {MediaStream} [stream]
   * @returns {Promise<MediaStream>}
   */
  async publish(stream) {
    if (this.localStream) throw new StreamwireError('already_published', 'Already publishing: a track set is published.');
    if (!stream) {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
      } catch (e) {
        throw new StreamwireError('media_denied', `Camera/microphone not available: ${e.name}: ${e.message}`);
      }
    }
    this.localStream = stream;
    if (this.state === 'joined' || this.state === 'resumed') {
      this._announce();
      for (const id of this.pcs.keys()) this._reoffer(id);
    }
    return stream;
  }

  _announce() {
    for (const t of this.localStream?.getTracks() ?? []) {
      this._sendReliable({ type: 'publish', track: { id: t.id, kind: t.kind, label: t.label } });
    }
  }

  /** Mute or unmute local tracks of `kind` ('audio' | 'video'). @returns {boolean} new muted state */
  setMuted(kind, muted) {
    if (!this.localStream) return muted;
    for (const t of this.localStream.getTracks()) if (t.kind === kind) t.enabled = !muted;
    return muted;
  }

  _pc(peerId, offerer) {
    let e = this.pcs.get(peerId);
    if (e) return e;
    const pc = new RTCPeerConnection(this.rtcConfig);
    const stream = new MediaStream();
    e = { pc, offerer, stream, pendingIce: [] };
    this.pcs.set(peerId, e);
    pc.onicecandidate = (ev) => {
      if (ev.candidate && ev.candidate.candidate) {
        this._sendReliable({
          type: 'ice', to: peerId, candidate: ev.candidate.candidate.replace(/^a=/, ''),
          sdp_mline_index: ev.candidate.sdpMLineIndex ?? 0, sdp_mid: ev.candidate.sdpMid ?? undefined,
        });
      } else if (!ev.candidate) {
        this._sendReliable({ type: 'ice', to: peerId, candidate: '', sdp_mline_index: 0 });
      }
    };
    pc.ontrack = (ev) => {
      stream.addTrack(ev.track);
      this._emit('track', { peerId, track: ev.track, stream });
    };
    pc.onconnectionstatechange = () => this._emit('peerstate', { peerId, state: pc.connectionState });
    return e;
  }

  async _offer(peerId) {
    const e = this._pc(peerId, true);
    const pc = e.pc;
    // One offer describes both directions: sendonly per local track, recvonly per remote track.
    for (const t of this.localStream?.getTracks() ?? []) {
      pc.addTransceiver(t, { direction: 'sendonly', streams: [this.localStream] });
    }
    const remote = this.peers.get(peerId)?.tracks ?? [];
    for (const t of remote) {
      if (t.kind === 'audio' || t.kind === 'video') pc.addTransceiver(t.kind, { direction: 'recvonly' });
    }
    // Nothing to send or receive yet: an offer without m-lines is refused, so the first offer
    // waits for the peer's `published` announcement (see _reoffer).
    if (pc.getTransceivers().length === 0) return;
    e.negotiating = true;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      this._sendReliable({ type: 'offer', to: peerId, sdp: pc.localDescription.sdp });
    } finally {
      e.negotiating = false;
    }
  }

  /**
   * Renegotiate with `peerId` if this side is the pair's offerer (the answerer's announcement
   * is its request), adding a receive-only m-line of `addKind` when given and a send-only one
   * for every local track not sent yet. An offer still in flight defers it until its answer.
   */
  async _reoffer(peerId, addKind) {
    const e = this.pcs.get(peerId);
    // No connection yet: the first offer will carry the peer's tracks. Answerer: not ours.
    if (!e || !e.offerer) return;
    if (addKind) (e.addKinds ??= []).push(addKind);
    if (e.pc.signalingState !== 'stable' || e.negotiating) {
      e.reoffer = true;
      return;
    }
    e.reoffer = false;
    e.negotiating = true;
    try {
      for (const kind of e.addKinds ?? []) e.pc.addTransceiver(kind, { direction: 'recvonly' });
      e.addKinds = [];
      // Local tracks published after the last offer.
      const sending = new Set(e.pc.getSenders().map((x) => x.track).filter(Boolean));
      for (const t of this.localStream?.getTracks() ?? []) {
        if (!sending.has(t)) e.pc.addTransceiver(t, { direction: 'sendonly', streams: [this.localStream] });
      }
      if (e.pc.getTransceivers().length === 0) return;
      await e.pc.setLocalDescription(await e.pc.createOffer());
      this._sendReliable({ type: 'offer', to: peerId, sdp: e.pc.localDescription.sdp });
    } catch (err) {
      this._emit('error', { code: 'negotiation', message: `renegotiating with ${peerId}: ${err}` });
    } finally {
      e.negotiating = false;
    }
  }

  async _onOffer(from, sdp) {
    const e = this._pc(from, false);
    const pc = e.pc;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    // m-lines the offerer wants to receive (recvonly on its side): send our tracks there.
    const wants = new Map();
    for (const sec of sdp.split(/\r?\nm=/).slice(1)) {
      const kind = sec.split(' ')[0];
      const mid = /a=mid:(\S+)/.exec(sec)?.[1];
      if (/a=recvonly/.test(sec) && mid != null) wants.set(mid, kind);
    }
    const unused = [...(this.localStream?.getTracks() ?? [])];
    // Transceivers already sending keep their track; other tracks go only to m-lines new in
    // this offer: a re-offer appends receive m-lines for tracks announced since and the
    // offerer expects them there (the Rust answerer follows the same rule). An m-line
    // negotiated before and left unused stays unused.
    const ordered = pc.getTransceivers().sort((a, b) => (b.sender.track ? 1 : 0) - (a.sender.track ? 1 : 0));
    for (const tr of ordered) {
      const kind = wants.get(tr.mid);
      if (!kind) {
        tr.direction = 'recvonly';
        continue;
      }
      if (!tr.sender.track && tr.currentDirection != null) {
        tr.direction = 'inactive';
        continue;
      }
      const i = unused.findIndex((t) => t.kind === kind);
      if (i >= 0) {
        const [t] = unused.splice(i, 1);
        await tr.sender.replaceTrack(t);
        if (this.localStream) tr.sender.setStreams(this.localStream);
        tr.direction = 'sendonly';
      } else {
        tr.direction = 'inactive';
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    this._sendReliable({ type: 'answer', to: from, sdp: pc.localDescription.sdp });
    await this._flushIce(e);
  }

  async _onIce(m) {
    const e = this.pcs.get(m.from) ?? this._pc(m.from, false);
    if (!m.candidate) return;
    const c = { candidate: m.candidate, sdpMLineIndex: m.sdp_mline_index, sdpMid: m.sdp_mid };
    if (!e.pc.remoteDescription) e.pendingIce.push(c);
    else await e.pc.addIceCandidate(c).catch(() => {});
  }

  async _flushIce(e) {
    const list = e.pendingIce;
    e.pendingIce = [];
    for (const c of list) await e.pc.addIceCandidate(c).catch(() => {});
  }

  /**
   * Send a real-time text message to the room (or `to` one peer).
   * Resolves with its delivery result, also across a reconnect.
   * @param {string} text @param {string} [to] @returns {Promise<Delivery>}
   */
  sendMessage(text, to) {
    return new Promise((resolve) => {
      const seq = this._sendReliable({ type: 'message', to, payload: { text } });
      this._pending.set(seq, resolve);
    });
  }

  /**
   * Per-peer receive figures (what this peer sends us) over the interval since the previous
   * call: bitrate, decoded fps, RTT (ICE candidate pair), loss and jitter, quality score.
   * @param {string} peerId @returns {Promise<PeerStats|null>}
   */
  async getStats(peerId) {
    const e = this.pcs.get(peerId);
    if (!e) return null;
    const report = await e.pc.getStats();
    let bytes = 0, frames = 0, lost = 0, recv = 0, jitter = 0, rtt = null;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp') {
        bytes += s.bytesReceived ?? 0;
        if (s.kind === 'video') frames += s.framesDecoded ?? 0;
        lost += s.packetsLost ?? 0;
        recv += s.packetsReceived ?? 0;
        jitter = Math.max(jitter, (s.jitter ?? 0) * 1000);
      } else if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime != null) {
        rtt = s.currentRoundTripTime * 1000;
      } else if (s.type === 'remote-inbound-rtp' && s.roundTripTime != null && rtt == null) {
        rtt = s.roundTripTime * 1000;
      }
    });
    const now = performance.now();
    const last = e.last ?? { t: now - 1000, bytes: 0, frames: 0, lost: 0, recv: 0 };
    e.last = { t: now, bytes, frames, lost, recv };
    const dt = Math.max((now - last.t) / 1000, 0.001);
    const dLost = Math.max(lost - last.lost, 0);
    const dRecv = Math.max(recv - last.recv, 0);
    const lossPct = dLost + dRecv > 0 ? (100 * dLost) / (dLost + dRecv) : 0;
    return {
      bitrateKbps: Math.round(((bytes - last.bytes) * 8) / dt / 1000),
      fps: Math.round((frames - last.frames) / dt),
      rttMs: rtt == null ? null : Math.round(rtt),
      lossPct: Math.round(lossPct * 10) / 10,
      jitterMs: Math.round(jitter),
      quality: qualityScore(lossPct, rtt, jitter),
    };
  }

  _closePeer(id) {
    const e = this.pcs.get(id);
    if (e) {
      e.pc.close();
      this.pcs.delete(id);
    }
  }

  _closePeers() {
    for (const id of [...this.pcs.keys()]) this._closePeer(id);
  }

  /**
   * Send the end user's optional feedback about this session: a rating 1 (bad) to 5
   * (excellent) and an optional comment (at most 2000 characters). The server stores it only
   * because it was sent. Resolves once stored; rejects with a StreamwireError (`invalid_field`
   * with `field`, `not_connected`, `not_implemented` when the server keeps no telemetry,
   * `timeout`).
   * @param {number} rating @param {string} [comment] @returns {Promise<void>}
   */
  sendFeedback(rating, comment) {
    if (!Number.isInteger(rating) || rating < 1 || rating > 5) {
      return Promise.reject(new StreamwireError('invalid_field', `rating must be a whole number from 1 to 5, got ${rating}`, 'rating'));
    }
    const text = (comment ?? '').trim();
    if (text.length > 2000) {
      return Promise.reject(new StreamwireError('invalid_field', `comment is ${text.length} characters, at most 2000 are accepted`, 'comment'));
    }
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new StreamwireError('not_connected', 'not connected to the room: join before sending feedback'));
    }
    return new Promise((resolve, reject) => {
      const done = () => {
        ws.removeEventListener('message', onMessage);
        clearTimeout(timer);
      };
      const onMessage = (ev) => {
        let m;
        try { m = JSON.parse(ev.data); } catch { return; }
        if (m.type === 'feedback_ack') {
          done();
          resolve();
        } else if (m.type === 'error' && m.in_type === 'feedback') {
          done();
          reject(new StreamwireError(m.code, describeError(m.code, m.message), m.field));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new StreamwireError('timeout', 'the server did not answer the feedback within 10 s'));
      }, 10000);
      ws.addEventListener('message', onMessage);
      this._send(text ? { type: 'feedback', rating, comment: text } : { type: 'feedback', rating });
    });
  }

  /** Leave the room (no resume) and close all peer connections. */
  leave() {
    this._leaving = true;
    this._send({ type: 'leave' });
    this._closePeers();
    this._ws?.close();
    this._setState('closed');
  }
}
