// Streamwire browser client: one RTCPeerConnection to one remote peer (negotiation in the
// protocol's roles, trickle ICE, the data channel, recovery after a network change, stats).
// Used by streamwire.js; every negotiation step runs inside the client's ordered queue.

import { qualityScore, sdpSessionId, sdpIceUfrag, receivingMids, msidTracks } from './streamwire-util.js';

/** Label of the data channel every pair opens (the Rust `Session` uses the same). */
export const DATA_CHANNEL_LABEL = 'streamwire';

/**
 * Recovery timing (offerer side): an ICE restart after `disconnectedMs` in `disconnected` (at
 * once on `failed`); a further attempt when one has not connected within `attemptMs`; after
 * `iceRestarts` restarts the peer connection is rebuilt; at most `maxAttempts` attempts in all.
 */
export const RECOVERY = Object.freeze({ disconnectedMs: 2000, attemptMs: 2000, iceRestarts: 12, maxAttempts: 15 });

/**
 * What a PeerLink needs from the client that owns it.
 * @typedef {object} LinkHost
 * @property {(obj: object) => void} sendSignal  send an offer/answer/ice frame (reliable)
 * @property {(type: string, detail: object) => void} emit
 * @property {(job: () => any) => Promise<any>} enqueue  run a job in the client's ordered queue
 * @property {() => RTCConfiguration} rtcConfig
 * @property {() => {track: MediaStreamTrack, stream: MediaStream}[]} localTracks
 * @property {() => boolean} canSubscribe   this client's token has `subscribe`
 * @property {() => any} peerInfo           the remote PeerInfo (tracks, grants), if known
 * @property {boolean} dataChannel          open a data channel to the peer
 * @property {typeof RTCPeerConnection} RTCPeerConnection
 */

/** One remote peer's connection. */
export class PeerLink {
  /** @param {string} peerId @param {boolean} offerer @param {LinkHost} host */
  constructor(peerId, offerer, host) {
    this.peerId = peerId;
    this.offerer = offerer;
    this._host = host;
    /** Every remote track but screen shares, as one stream. */
    this.stream = new MediaStream();
    /** Remote screen-share tracks. */
    this.screenStream = new MediaStream();
    /** @type {RTCDataChannel|null} */ this.channel = null;
    this._closed = false;
    this._recovery = { attempts: 0, timer: null, since: 0 };
    this._build();
  }

  _build() {
    const pc = new this._host.RTCPeerConnection(this._host.rtcConfig());
    this.pc = pc;
    this.pendingIce = [];
    this._addKinds = [];
    this._reoffer = false;
    this._negotiating = false;
    this._remoteSid = null;
    this._remoteUfrag = null;
    this._energy = null;
    this._level = 0;
    this._statsBase = null;
    pc.onicecandidate = (ev) => {
      if (pc !== this.pc) return;
      const c = ev.candidate;
      if (c && c.candidate) {
        this._host.sendSignal({
          type: 'ice', to: this.peerId, candidate: c.candidate.replace(/^a=/, ''),
          sdp_mline_index: c.sdpMLineIndex ?? 0, sdp_mid: c.sdpMid ?? undefined,
        });
      } else if (!c) {
        this._host.sendSignal({ type: 'ice', to: this.peerId, candidate: '', sdp_mline_index: 0 });
      }
    };
    pc.ontrack = (ev) => {
      if (pc !== this.pc) return;
      const mid = ev.transceiver?.mid;
      const trackId = mid != null && pc.remoteDescription ? msidTracks(pc.remoteDescription.sdp).get(mid) : undefined;
      const info = (this._host.peerInfo()?.tracks ?? []).find((t) => t.id === trackId);
      const screen = info?.label === 'screen';
      const stream = screen ? this.screenStream : this.stream;
      stream.addTrack(ev.track);
      this._host.emit('track', { peerId: this.peerId, track: ev.track, stream, info, screen });
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      this._host.emit('peerstate', { peerId: this.peerId, state: pc.connectionState });
      this._onConnectionState(pc.connectionState);
    };
    pc.ondatachannel = (ev) => {
      if (pc === this.pc && ev.channel.label === DATA_CHANNEL_LABEL) this._useChannel(ev.channel);
    };
    if (this.offerer && this._host.dataChannel) this._useChannel(pc.createDataChannel(DATA_CHANNEL_LABEL));
  }

  _useChannel(ch) {
    ch.binaryType = 'arraybuffer';
    this.channel = ch;
    ch.onopen = () => this._host.emit('datachannel', { peerId: this.peerId, state: 'open' });
    ch.onclose = () => {
      if (this.channel === ch) this._host.emit('datachannel', { peerId: this.peerId, state: 'closed' });
    };
    ch.onmessage = (ev) => {
      const d = { from: this.peerId, via: 'datachannel', direct: true };
      if (typeof ev.data === 'string') d.text = ev.data;
      else d.binary = new Uint8Array(ev.data);
      this._host.emit('message', d);
    };
  }

  /** Whether the remote peer may receive our media (presence grants; assumed when unknown). */
  _remoteSubscribes() {
    const g = this._host.peerInfo()?.grants;
    return !Array.isArray(g) || g.includes('subscribe');
  }

  /** Add a send-only transceiver for every local track no sender carries yet. */
  _addLocalSenders() {
    if (!this._remoteSubscribes()) return;
    const sending = new Set(this.pc.getSenders().map((s) => s.track).filter(Boolean));
    for (const { track, stream, label } of this._host.localTracks()) {
      if (sending.has(track)) continue;
      const init = { direction: 'sendonly', streams: [stream] };
      const sendEncodings = this._host.sendEncodings?.(track, label);
      this.pc.addTransceiver(track, sendEncodings ? { ...init, sendEncodings } : init);
    }
  }

  /** Offerer: the first offer, with the tracks both sides announced and the data channel. */
  async offer() {
    this._addLocalSenders();
    if (this._host.canSubscribe()) {
      for (const t of this._host.peerInfo()?.tracks ?? []) {
        if (t.kind === 'audio' || t.kind === 'video') this.pc.addTransceiver(t.kind, { direction: 'recvonly' });
      }
    }
    // Nothing to send, receive or exchange: an offer without m-lines is refused, so the first
    // offer waits for a track (see reoffer).
    if (this.pc.getTransceivers().length === 0 && !this.channel) return;
    await this._sendOffer();
  }

  async _sendOffer(options) {
    this._negotiating = true;
    try {
      await this.pc.setLocalDescription(await this.pc.createOffer(options));
      this._host.sendSignal({ type: 'offer', to: this.peerId, sdp: this.pc.localDescription.sdp });
    } finally {
      this._negotiating = false;
    }
  }

  /**
   * Offerer: renegotiate, adding a receive-only m-line of `addKind` when given and a send-only
   * one for every local track not sent yet. An offer still waiting for its answer defers it.
   * The answerer does nothing: its announcement already asked the offerer.
   * @param {'audio'|'video'} [addKind]
   */
  async reoffer(addKind) {
    if (!this.offerer || this._closed) return;
    if (addKind && this._host.canSubscribe()) this._addKinds.push(addKind);
    if (this.pc.signalingState !== 'stable' || this._negotiating) {
      this._reoffer = true;
      return;
    }
    this._reoffer = false;
    for (const kind of this._addKinds.splice(0)) this.pc.addTransceiver(kind, { direction: 'recvonly' });
    this._addLocalSenders();
    if (this.pc.getTransceivers().length === 0 && !this.channel) return;
    await this._sendOffer();
  }

  /**
   * Stop sending `tracks` (unpublished): their senders carry nothing from now on; the offerer
   * marks the m-lines inactive and re-offers, the answerer answers them inactive next time.
   * @param {MediaStreamTrack[]} tracks
   */
  async withdraw(tracks) {
    for (const tr of this.pc.getTransceivers()) {
      if (tr.sender.track && tracks.includes(tr.sender.track)) {
        await tr.sender.replaceTrack(null);
        if (this.offerer) tr.direction = 'inactive';
      }
    }
    if (this.offerer) await this.reoffer();
  }

  /** Apply the remote answer; a deferred re-offer follows. @param {string} sdp */
  async onAnswer(sdp) {
    if (this.pc.signalingState !== 'have-local-offer') return;
    const sid = sdpSessionId(sdp);
    const ufrag = sdpIceUfrag(sdp);
    if (this._remoteSid && sid && sid !== this._remoteSid && ufrag !== this._remoteUfrag) {
      // The answerer rebuilt its connection instead of restarting ICE on it (webrtcbin 1.22
      // cannot restart ICE): its new DTLS identity cannot be applied to this connection, so
      // rebuild here too and offer afresh.
      this._host.emit('recovery', { peerId: this.peerId, action: 'rebuild', by: 'remote' });
      this._replacePc();
      await this.offer();
      return;
    }
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    this._remoteSid = sid;
    this._remoteUfrag = ufrag;
    await this._flushIce();
    this._dropEndedTracks();
    if (this._reoffer) await this.reoffer();
  }

  /**
   * Answer a remote offer. An offer from a rebuilt remote connection (a new `o=` session id)
   * replaces this peer connection first. @param {string} sdp
   */
  async onOffer(sdp) {
    const sid = sdpSessionId(sdp);
    if (this._remoteSid && sid && sid !== this._remoteSid) {
      this._replacePc();
      this._host.emit('recovery', { peerId: this.peerId, action: 'rebuild', by: 'remote' });
    }
    this._remoteSid = sid;
    const pc = this.pc;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const wants = receivingMids(sdp);
    const publishing = this._remoteSubscribes() ? this._host.localTracks() : [];
    const unused = publishing.map((l) => l.track).filter((t) => !pc.getSenders().some((s) => s.track === t));
    const subscribe = this._host.canSubscribe();
    for (const tr of pc.getTransceivers()) {
      if (tr.stopped || tr.currentDirection === 'stopped') continue;
      const kind = wants.get(tr.mid);
      // m-lines the offerer sends on (or does not use): receive them if allowed.
      if (!kind) {
        tr.direction = subscribe ? 'recvonly' : 'inactive';
        continue;
      }
      // It wants to receive here. A transceiver already sending keeps its track; other tracks
      // go only to m-lines new in this offer (the offerer appended them for a track announced
      // since): an m-line negotiated before and left unused stays unused. The Rust answerer
      // follows the same rule.
      if (tr.sender.track) {
        tr.direction = 'sendonly';
        continue;
      }
      const i = tr.currentDirection == null ? unused.findIndex((t) => t.kind === kind) : -1;
      if (i >= 0) {
        const [t] = unused.splice(i, 1);
        await tr.sender.replaceTrack(t);
        const owner = publishing.find((l) => l.track === t);
        if (owner) tr.sender.setStreams(owner.stream);
        tr.direction = 'sendonly';
      } else {
        tr.direction = 'inactive';
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    this._host.sendSignal({ type: 'answer', to: this.peerId, sdp: pc.localDescription.sdp });
    await this._flushIce();
    this._dropEndedTracks();
  }

  /** A trickled remote candidate (held until a remote description exists). */
  async onIce(m) {
    if (!m.candidate) return;
    const c = { candidate: m.candidate, sdpMLineIndex: m.sdp_mline_index, sdpMid: m.sdp_mid };
    if (!this.pc.remoteDescription) this.pendingIce.push(c);
    else await this.pc.addIceCandidate(c).catch(() => {});
  }

  async _flushIce() {
    for (const c of this.pendingIce.splice(0)) await this.pc.addIceCandidate(c).catch(() => {});
  }

  /** Remote tracks whose m-line no longer receives (the remote unpublished): drop them. */
  _dropEndedTracks() {
    for (const tr of this.pc.getTransceivers()) {
      const dir = tr.currentDirection;
      const receiving = dir === 'recvonly' || dir === 'sendrecv';
      const t = tr.receiver.track;
      if (receiving || dir == null) continue;
      for (const s of [this.stream, this.screenStream]) {
        if (s.getTracks().includes(t)) {
          s.removeTrack(t);
          this._host.emit('trackended', { peerId: this.peerId, track: t, stream: s, screen: s === this.screenStream });
        }
      }
    }
  }

  // ---- recovery ----------------------------------------------------------------------------

  _onConnectionState(state) {
    const r = this._recovery;
    if (state === 'connected') {
      clearTimeout(r.timer);
      r.timer = null;
      if (r.attempts > 0) {
        this._host.emit('recovery', { peerId: this.peerId, action: 'recovered', attempts: r.attempts, ms: Date.now() - r.since });
        r.attempts = 0;
      }
      return;
    }
    // Only the pair's offerer offers, so only it restarts; the answerer answers the restart.
    if (!this.offerer || this._closed) return;
    if (state === 'failed') this._scheduleRecovery(0);
    else if (state === 'disconnected') this._scheduleRecovery(RECOVERY.disconnectedMs);
  }

  _scheduleRecovery(ms) {
    const r = this._recovery;
    if (r.timer) return;
    r.timer = setTimeout(() => {
      r.timer = null;
      this._host.enqueue(() => this._recover());
    }, ms);
  }

  async _recover() {
    const r = this._recovery;
    const st = this.pc.connectionState;
    if (this._closed || st === 'connected' || st === 'new') return;
    if (r.attempts === 0) r.since = Date.now();
    if (r.attempts >= RECOVERY.maxAttempts) {
      this._host.emit('recovery', { peerId: this.peerId, action: 'gave_up', attempts: r.attempts });
      this._host.emit('error', { code: 'peer_unreachable', message: `No connection to peer ${this.peerId} after ${r.attempts} recovery attempts.`, peerId: this.peerId });
      return;
    }
    r.attempts += 1;
    if (r.attempts <= RECOVERY.iceRestarts) {
      this._host.emit('recovery', { peerId: this.peerId, action: 'ice_restart', attempt: r.attempts });
      if (this.pc.signalingState === 'stable') {
        this.pc.restartIce();
        await this._sendOffer({ iceRestart: true });
      } else {
        // An offer is in flight: its answer triggers the restarted offer.
        this.pc.restartIce();
        this._reoffer = true;
      }
    } else {
      this._host.emit('recovery', { peerId: this.peerId, action: 'rebuild', attempt: r.attempts });
      this._replacePc();
      await this.offer();
    }
    // Not connected within attemptMs: the next attempt.
    r.timer = setTimeout(() => {
      r.timer = null;
      if (this.pc.connectionState !== 'connected') this._host.enqueue(() => this._recover());
    }, RECOVERY.attemptMs);
  }

  /** Close the peer connection and start a fresh one for the same peer and role. */
  _replacePc() {
    const old = this.pc;
    old.close();
    for (const s of [this.stream, this.screenStream]) {
      for (const t of s.getTracks()) {
        s.removeTrack(t);
        this._host.emit('trackended', { peerId: this.peerId, track: t, stream: s, screen: s === this.screenStream });
      }
    }
    this.channel = null;
    this._build();
  }

  // ---- stats -------------------------------------------------------------------------------

  /**
   * Receive figures over the interval since the previous call.
   * @returns {Promise<import('./streamwire.js').PeerStats>}
   */
  async stats() {
    const report = await this.pc.getStats();
    let bytes = 0, frames = 0, lost = 0, recv = 0, jitter = 0, rtt = null;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp') {
        bytes += s.bytesReceived ?? 0;
        if (s.kind === 'video') frames += s.framesDecoded ?? 0;
        lost += s.packetsLost ?? 0;
        recv += s.packetsReceived ?? 0;
        jitter = Math.max(jitter, (s.jitter ?? 0) * 1000);
      } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && s.currentRoundTripTime != null) {
        rtt = s.currentRoundTripTime * 1000;
      } else if (s.type === 'remote-inbound-rtp' && s.roundTripTime != null && rtt == null) {
        rtt = s.roundTripTime * 1000;
      }
    });
    const now = performance.now();
    const last = this._statsBase ?? { t: now - 1000, bytes: 0, frames: 0, lost: 0, recv: 0 };
    this._statsBase = { t: now, bytes, frames, lost, recv };
    const dt = Math.max((now - last.t) / 1000, 0.001);
    const dLost = Math.max(lost - last.lost, 0);
    const dRecv = Math.max(recv - last.recv, 0);
    const lossPct = dLost + dRecv > 0 ? (100 * dLost) / (dLost + dRecv) : 0;
    return {
      bitrateKbps: Math.max(Math.round(((bytes - last.bytes) * 8) / dt / 1000), 0),
      fps: Math.max(Math.round((frames - last.frames) / dt), 0),
      rttMs: rtt == null ? null : Math.round(rtt),
      lossPct: Math.round(lossPct * 10) / 10,
      jitterMs: Math.round(jitter),
      quality: qualityScore(lossPct, rtt, jitter),
    };
  }

  /**
   * The remote side's audio level, 0..1 (0 when it sends no audio): the RMS level between two
   * calls, from the audio receivers' `totalAudioEnergy` / `totalSamplesDuration`, so a short
   * sound between two calls counts (a single packet's level, as `getSynchronizationSources`
   * gives it, misses most of them). The figure is refreshed in the background; a call returns
   * the latest one.
   */
  audioLevel() {
    if (!this._audioPoll && !this._closed) {
      const receivers = this.pc.getReceivers().filter((r) => r.track?.kind === 'audio');
      this._audioPoll = Promise.all(receivers.map((r) => r.getStats()))
        .then((reports) => {
          let energy = 0, duration = 0;
          for (const rep of reports) {
            rep.forEach((st) => {
              if (st.type !== 'inbound-rtp') return;
              energy += st.totalAudioEnergy ?? 0;
              duration += st.totalSamplesDuration ?? 0;
            });
          }
          const last = this._energy;
          this._energy = { energy, duration };
          if (!receivers.length) this._level = 0;
          else if (last && duration > last.duration) this._level = Math.min(Math.sqrt(Math.max(energy - last.energy, 0) / (duration - last.duration)), 1);
        })
        .catch(() => {})
        .finally(() => { this._audioPoll = null; });
    }
    return this._level ?? 0;
  }

  /** Close for good (the peer left, or this client left). */
  close() {
    this._closed = true;
    clearTimeout(this._recovery.timer);
    this.pc.close();
  }
}
