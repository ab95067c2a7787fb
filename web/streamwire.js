// Streamwire browser client: a plain ES module, no build step.
// Speaks the signalling protocol of docs/protocol.md and the browser's own WebRTC.
// See docs/web.md for the API, every event and every error code.

import {
  StreamwireError, describeError, qualityScore, backoffDelay, SerialQueue,
  checkPayload, checkFrame, toBase64,
} from './streamwire-util.js';
import { PeerLink, DATA_CHANNEL_LABEL, RECOVERY } from './streamwire-peer.js';
import * as media from './streamwire-media.js';
import * as sfu from './sfu.js'; // t15: SFU rooms
import * as frames from './streamwire-frames.js';
import * as audioDump from './streamwire-audio-dump.js';
import * as mediaTest from './streamwire-media-test.js';
import { ActiveSpeaker, dbovOf, LEVEL_EVENT_INTERVAL_MS } from './streamwire-speaker.js';

export { StreamwireError, describeError, qualityScore, backoffDelay, DATA_CHANNEL_LABEL, RECOVERY };
export { MediaTest, MEDIA_TEST_PEER, MEDIA_TEST_TIMING, PROBE_STREAM } from './streamwire-media-test.js';
export { ActiveSpeaker, dbovOf } from './streamwire-speaker.js';

/**
 * @typedef {{id: string, kind: 'audio'|'video'|'data', label?: string}} TrackInfo
 * @typedef {{peer_id: string, user: string, name: string, tracks: TrackInfo[], metadata: any, grants?: string[]}} PeerInfo
 * @typedef {{seq: number, status: 'delivered'|'failed', recipients: number, reason?: string}} Delivery
 * @typedef {{bitrateKbps: number, fps: number, rttMs: number|null, lossPct: number, jitterMs: number, quality: number}} PeerStats
 * @typedef {{urls: string[], username?: string, credential?: string}} IceServer
 */

/** How long `sendFeedback` waits for the server's answer. */
const FEEDBACK_TIMEOUT_MS = 10000;

/**
 * A connection to a Streamwire room (docs/web.md has the full reference).
 *
 * ```js
 * const client = new StreamwireClient({ url: 'wss://host/', room: 'standup', token });
 * client.addEventListener('track', (e) => { video.srcObject = e.detail.stream; });
 * await client.join();
 * await client.publish();          // camera + microphone, after the join succeeded
 * ```
 *
 * Events (CustomEvent, payload in `detail`): `state`, `peerjoined`, `peerupdated`, `peerleft`,
 * `track`, `trackended`, `peerstate`, `recovery`, `datachannel`, `message`, `audiodumpended`, `error`.
 */
export class StreamwireClient extends EventTarget {
  /**
   * @param {{url: string, room: string, token: string, metadata?: any,
   *          rtcConfig?: RTCConfiguration, maxAttempts?: number, dataChannel?: boolean,
   *          media?: boolean, simulcast?: boolean, leaveOnPageHide?: boolean,
   *          backoff?: {baseMs?: number, maxMs?: number, jitter?: number}, random?: () => number,
   *          WebSocket?: typeof WebSocket, RTCPeerConnection?: typeof RTCPeerConnection}} opts
   */
  constructor(opts) {
    super();
    this.url = opts.url;
    this.room = opts.room;
    this.token = opts.token;
    this.metadata = opts.metadata ?? null;
    this.rtcConfig = opts.rtcConfig ?? {};
    this.maxAttempts = opts.maxAttempts ?? 10;
    this.dataChannel = opts.dataChannel ?? true;
    this.media = opts.media ?? true;
    /** In SFU rooms, publish the camera in three simulcast layers (web/sfu.js). */
    this.simulcast = opts.simulcast ?? true;
    this._backoff = { ...(opts.backoff ?? {}), random: opts.random };
    this._WebSocket = opts.WebSocket ?? globalThis.WebSocket;
    this._RTC = opts.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    /** @type {string|null} */ this.peerId = null;
    /** @type {string|null} */ this.name = null;
    /** @type {string|null} the token's user id (`sub`, from `welcome`) */ this.user = null;
    /** @type {Set<string>} grants of this client's token (from `welcome`) */ this.grants = new Set();
    /** @type {import('./streamwire-util.js').Limits|null} */ this.limits = null;
    /** @type {IceServer[]} STUN/TURN servers from the server (`welcome.ice_servers`) */ this.iceServers = [];
    /** @type {Map<string, PeerInfo>} */ this.peers = new Map();
    /** @type {Map<string, PeerLink>} */ this.pcs = new Map();
    /** The published camera/microphone stream. @type {MediaStream|null} */ this.localStream = null;
    /** The published screen share. @type {MediaStream|null} */ this.screenStream = null;
    /** Published tracks, in announcement order. @type {{track: MediaStreamTrack, stream: MediaStream, label: string}[]} */
    this._local = [];
    this._muted = { audio: false, video: false };
    this.state = 'new';
    this._queue = new SerialQueue((e) => this._emitError('internal', `frame handling failed: ${e?.stack ?? e}`));
    this._resetSession();
    if (opts.leaveOnPageHide ?? true) {
      this._onPageHide = () => { if (this._active()) this.leave(); };
      globalThis.addEventListener?.('pagehide', this._onPageHide);
    }
  }

  _resetSession() {
    this._ws = null;
    this._lastN = 0;
    this._ackedN = 0;
    clearTimeout(this._ackTimer);
    this._ackTimer = null;
    this._seq = 0;
    /** Messages awaiting their delivery result, by seq. @type {Map<number, (d: Delivery) => void>} */
    this._pending = this._pending ?? new Map();
    /** Frames with a seq the server has not confirmed, resent after a resume. @type {Map<number, object>} */
    this._kept = new Map();
    /** Feedback requests awaiting `feedback_ack`, oldest first. */
    this._feedback = this._feedback ?? [];
    this._resumeToken = null;
  }

  /** joined or trying to stay joined. */
  _active() {
    return this.state === 'joined' || this.state === 'resumed' || this.state === 'reconnecting';
  }

  _setState(state, extra) {
    this.state = state;
    if (state === 'closed' || state === 'failed') {
      clearInterval(this._levelTimer);
      this._levelTimer = null;
    }
    this._emit('state', { state, ...extra });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _emitError(code, message, extra) {
    this._emit('error', { code, message: describeError(code, message), ...extra });
  }

  // ---- sending -----------------------------------------------------------------------------

  /** Serialise, check against `welcome.limits`, send if the socket is open. Throws StreamwireError. */
  _send(obj) {
    const json = JSON.stringify(obj);
    checkFrame(json, obj.type, this.limits);
    if (this._ws && this._ws.readyState === 1) this._ws.send(json);
  }

  /**
   * Send a frame numbered from the session's seq counter (messages and, for exactly-once
   * signalling, offer/answer/ice/publish/unpublish/set_metadata): kept until the server confirms
   * it, resent after a resume. The size is checked first: a refused frame consumes no seq.
   * @returns {number} the seq
   */
  _sendReliable(obj) {
    const frame = { ...obj, seq: this._seq + 1 };
    checkFrame(JSON.stringify(frame), obj.type, this.limits);
    this._seq += 1;
    this._kept.set(this._seq, frame);
    this._send(frame);
    return this._seq;
  }

  /** A signalling frame of a peer connection; a refusal becomes an `error` event. */
  _sendSignal(obj) {
    try {
      this._sendReliable(obj);
    } catch (e) {
      this._emitError(e.code ?? 'internal', e.message, { peerId: obj.to });
    }
  }

  /** The server accepted everything up to `seq`. */
  _confirm(seq) {
    for (const k of [...this._kept.keys()]) if (k <= seq) this._kept.delete(k);
  }

  // ---- joining, resuming -------------------------------------------------------------------

  /**
   * Connect and join the room. Resolves with the `welcome` message; rejects with a
   * StreamwireError (`token_expired`, `server_unreachable`, ... see docs/web.md, "Errors"),
   * after which `state` is `failed` and every track this client holds is released.
   *
   * `publish` publishes camera and microphone as part of the join: a MediaStream, or what to
   * capture (`true`, or `{video, audio}` as for `publish()`). The capture starts only once the
   * server accepted the join (`welcome`), before the first offers, so the first negotiation
   * carries the tracks (no renegotiation). If it fails (`media_denied`, or `forbidden` without
   * the `publish` grant) the join still succeeds: `publishError` holds the error and an `error`
   * event tells it. A stream handed here belongs to the client, also when the join is refused.
   * @param {{publish?: boolean|MediaStream|{video?: boolean|MediaTrackConstraints, audio?: boolean|MediaTrackConstraints}}} [options]
   * @returns {Promise<any>}
   */
  async join(options = {}) {
    if (this._active() || this.state === 'connecting') {
      throw new StreamwireError('already_joined', 'This client is already joined (or joining); call leave() first.');
    }
    this._joinPublish = options.publish || null;
    /** @type {StreamwireError|null} why the `publish` of the last join() failed */
    this.publishError = null;
    this._leaving = false;
    this._attempt = 0;
    this._resetSession();
    this._setState('connecting');
    try {
      return await this._open({ type: 'join', v: 1, room: this.room, token: this.token, metadata: this.metadata });
    } catch (e) {
      // A refused join holds nothing: no session, no camera (a stream handed to it included).
      media.releaseLocal(this);
      if (typeof this._joinPublish?.getTracks === 'function') for (const t of this._joinPublish.getTracks()) t.stop();
      this._joinPublish = null;
      this._setState('failed', { error: { code: e.code, message: e.message } });
      throw e;
    }
  }

  /** Open a socket and send `first`; resolves on `welcome`/`resumed`, rejects on `error`/close. */
  _open(first) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this._WebSocket(this.url);
      } catch (e) {
        reject(new StreamwireError('bad_url', `Cannot open ${this.url}: ${e.message}`));
        return;
      }
      this._ws = ws;
      const pending = { resolve, reject, settled: false };
      ws.onopen = () => {
        try {
          this._send(first);
        } catch (e) {
          pending.settled = true;
          reject(e);
        }
      };
      ws.onmessage = (ev) => this._queue.push(() => this._receive(ws, ev.data, pending));
      ws.onclose = () => this._queue.push(() => this._closed(ws, pending));
    });
  }

  _closed(ws, pending) {
    if (this._ws !== ws) return;
    if (!pending.settled) {
      pending.settled = true;
      pending.reject(new StreamwireError('server_unreachable', `Cannot reach the Streamwire server at ${this.url}.`));
      return;
    }
    if (this._leaving || !this._active()) return;
    if (!this._resumeToken) {
      this._fail('server_gone', 'The connection to the server was lost.');
      return;
    }
    this._reconnect();
  }

  /** One received frame, in arrival order (the queue runs one at a time). */
  async _receive(ws, data, pending) {
    if (this._ws !== ws) return;
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      this._emitError('bad_frame', `The server sent a frame that is not JSON: ${String(data).slice(0, 80)}`);
      return;
    }
    if (!pending.settled) {
      if (m.type === 'welcome' || m.type === 'resumed') {
        pending.settled = true;
        this._attempt = 0;
        await this._onFrame(m);
        pending.resolve(m);
        return;
      }
      if (m.type === 'error') {
        pending.settled = true;
        // Detach first so this deliberate close is not taken for a lost connection.
        this._ws = null;
        ws.close();
        pending.reject(new StreamwireError(m.code, describeError(m.code, m.message), m.field));
        return;
      }
    }
    await this._onFrame(m);
  }

  _fail(code, message) {
    this._leaving = true;
    this._removeAllPeers('session_lost');
    media.releaseLocal(this);
    this._failPending('session_lost');
    this._setState('failed', { error: { code, message: describeError(code, message) } });
    this._emitError(code, message);
    const ws = this._ws;
    this._ws = null;
    ws?.close();
  }

  async _reconnect() {
    this._setState('reconnecting');
    while (!this._leaving) {
      this._attempt += 1;
      if (this._attempt > this.maxAttempts) {
        this._fail('server_gone', 'The server is gone: reconnecting failed.');
        return;
      }
      await new Promise((r) => setTimeout(r, backoffDelay(this._attempt, this._backoff)));
      if (this._leaving) return;
      try {
        await this._open({ type: 'resume', v: 1, resume_token: this._resumeToken, last_n: this._lastN });
        return;
      } catch (e) {
        if (e.code !== 'resume_unknown' && e.code !== 'resume_gap') continue;
      }
      // The server no longer holds the session (e.g. it restarted): everything tied to it is
      // void; join afresh (a new peer id, peer connections rebuilt by the protocol's roles).
      this._removeAllPeers('session_lost');
      this._failPending('session_lost');
      this._resetSession();
      try {
        await this._open({ type: 'join', v: 1, room: this.room, token: this.token, metadata: this.metadata });
        return;
      } catch (e) {
        if (String(e.code).startsWith('token_') || e.code === 'room_full' || e.code === 'banned') {
          this._fail(e.code, e.message);
          return;
        }
      }
    }
  }

  /** Resolve every message still waiting for its delivery as failed with `reason`. */
  _failPending(reason) {
    for (const [seq, resolve] of this._pending) resolve({ seq, status: 'failed', recipients: 0, reason });
    this._pending.clear();
  }

  // ---- frames (streamwire-frames.js) ------------------------------------------------------

  _onFrame(m) {
    return frames.onFrame(this, m);
  }

  _removePeer(id, reason) {
    const peer = this.peers.get(id);
    this.peers.delete(id);
    this._closeLink(id);
    if (peer) this._emit('peerleft', { peerId: id, reason, peer });
  }

  _removeAllPeers(reason) {
    for (const id of [...this.peers.keys()]) this._removePeer(id, reason);
    for (const id of [...this.pcs.keys()]) this._closeLink(id);
  }

  _setIceServers(list) {
    this.iceServers = list.map((s) => {
      const out = { urls: s.urls };
      if (s.username != null) out.username = s.username;
      if (s.credential != null) out.credential = s.credential;
      return out;
    });
    for (const link of this.pcs.values()) {
      try {
        link.pc.setConfiguration(this._rtcConfiguration());
      } catch (e) {
        this._emitError('ice_servers', `new ICE servers not applied to ${link.peerId}: ${e.message}`, { peerId: link.peerId });
      }
    }
  }

  /** The RTCConfiguration of new peer connections: the app's, plus the server's ICE servers. */
  _rtcConfiguration() {
    return { ...this.rtcConfig, iceServers: [...(this.rtcConfig.iceServers ?? []), ...this.iceServers] };
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

  // ---- peer connections --------------------------------------------------------------------

  _link(peerId, offerer) {
    let link = this.pcs.get(peerId);
    if (link) return link;
    link = new PeerLink(peerId, offerer, {
      sendSignal: (obj) => this._sendSignal(obj),
      emit: (type, detail) => (type === 'error' ? this._emitError(detail.code, detail.message, { peerId: detail.peerId }) : this._emit(type, detail)),
      enqueue: (job) => this._queue.push(job),
      rtcConfig: () => this._rtcConfiguration(),
      localTracks: () => this._local,
      canSubscribe: () => this.grants.has('subscribe'),
      peerInfo: () => this.peers.get(peerId),
      dataChannel: this.dataChannel,
      RTCPeerConnection: this._RTC,
    });
    this.pcs.set(peerId, link);
    return link;
  }

  _closeLink(id) {
    const link = this.pcs.get(id);
    if (link) {
      link.close();
      this.pcs.delete(id);
    }
  }

  // ---- publishing (streamwire-media.js) ---------------------------------------------------

  /**
   * Publish camera and microphone: `stream` if given, else a capture of them (640x480 video
   * unless `want.video` gives constraints). Call it after `join()` resolved, so nothing is
   * captured for a join that is refused; before `join()` the first offers carry the tracks. The
   * client owns the published tracks from then on: `unpublish()`, `leave()`, a refused join and
   * page hide stop them (the camera light goes off). Rejects with StreamwireError `forbidden`
   * (the token has no `publish` grant; checked before capturing once joined),
   * `already_published`, `media_denied`, or `not_connected` (left meanwhile).
   * @param {MediaStream} [stream]
   * @param {{video?: boolean|MediaTrackConstraints, audio?: boolean|MediaTrackConstraints}} [want]
   * @returns {Promise<MediaStream>}
   */
  publish(stream, want) {
    // t15: in an SFU room the first published track opens the `sfu-publish` connection.
    return media.publish(this, stream, want).then(async (s) => {
      if (this.topology === 'sfu') await this._queue.push(() => sfu.publishing(this));
      return s;
    });
  }

  /**
   * Share the screen (`getDisplayMedia`) as an extra video track, announced with label
   * `screen` (other clients show it in a tile of its own). Ending the share in the browser's
   * own UI unpublishes it. Rejects like `publish` (`media_denied` when the user cancels).
   * @returns {Promise<MediaStream>}
   */
  shareScreen() {
    return media.shareScreen(this);
  }

  /** Stop sharing the screen (unpublish its track and stop the capture). @returns {Promise<void>} */
  stopScreenShare() {
    return media.stopScreenShare(this);
  }

  /**
   * Stop publishing camera and microphone: their tracks are unpublished (other clients see
   * `trackended`) and stopped; the call goes on and `publish()` may follow.
   * @returns {Promise<void>}
   */
  unpublish() {
    return media.unpublish(this);
  }

  /**
   * Switch the published camera or microphone to device `deviceId` without renegotiation
   * (the senders' tracks are replaced; the old capture is stopped).
   * @param {'audio'|'video'} kind @param {string} deviceId @returns {Promise<MediaStreamTrack>}
   */
  switchDevice(kind, deviceId) {
    return media.switchDevice(this, kind, deviceId);
  }

  /**
   * Mute or unmute the published tracks of `kind`. Muting the camera stops its capture (the
   * camera light goes off; the senders send nothing); unmuting captures the same device again
   * and puts the new track on every sender, without renegotiation. A muted microphone sends
   * silence. The state also applies to tracks published later and is announced in this peer's
   * metadata (`metadata.muted`). Rejects with `media_denied` when the camera cannot be opened
   * again. @param {'audio'|'video'} kind @param {boolean} muted @returns {Promise<boolean>}
   */
  setMuted(kind, muted) {
    return media.setMuted(this, kind, muted);
  }

  /** Whether local `kind` tracks are muted. @param {'audio'|'video'} kind @returns {boolean} */
  isMuted(kind) {
    return this._muted[kind];
  }

  // ---- audio dump (streamwire-audio-dump.js) -----------------------------------------------

  /**
   * Start recording the published microphone (as sent, and a raw capture where the browser
   * allows) and the received audio, sample-aligned, for debugging echo, noise and levels
   * (docs/audio.md, "Audio dump in the browser"). Off until called; the recording stays in
   * the page's memory and is only handed back to the application. Each file is at most
   * `maxBytes` (default 64 MiB); at the limit, or when the microphone is unpublished, the dump
   * ends by itself with an `audiodumpended` event. Rejects with StreamwireError
   * `already_dumping`, `invalid_field` (`field` `maxBytes`), `not_published` (no published
   * microphone), `not_supported`, `audio_blocked` or `audio_dump_failed`.
   *
   * ```js
   * await client.startAudioDump({ maxBytes: 8 * 1024 * 1024 });
   * const { files, sidecar } = await client.stopAudioDump(); // files['processed.wav']: a Blob
   * ```
   * @param {{maxBytes?: number}} [options] @returns {Promise<void>}
   */
  startAudioDump(options) {
    return audioDump.start(this, options);
  }

  /**
   * Stop the audio dump and return its files (Blobs by name: `processed.wav`, `far-end.wav`,
   * `raw.wav` where recorded, `dump.json`) and the sidecar object; after an automatic end,
   * the result of that end. Resolves with null when no dump is running or its result was
   * already returned. @returns {Promise<{files: Record<string, Blob>, sidecar: object}|null>}
   */
  stopAudioDump() {
    return audioDump.stop(this);
  }

  // ---- messages ----------------------------------------------------------------------------

  /**
   * Send a real-time message (text, or bytes as a Uint8Array) through the server to the room
   * (or `to` one peer). Resolves with its delivery result, also across a reconnect. Rejects,
   * sending nothing, with StreamwireError `not_connected`, `forbidden` (no `message` grant),
   * `payload_too_large` or `frame_too_large` (over `welcome.limits`).
   * @param {string|Uint8Array} data @param {string} [to] @returns {Promise<Delivery>}
   */
  sendMessage(data, to) {
    if (!this._active()) return Promise.reject(new StreamwireError('not_connected', 'Not in the room: join() before sending messages.'));
    if (!this.grants.has('message')) {
      return Promise.reject(new StreamwireError('forbidden', 'Your room token does not allow sending messages (no `message` grant).', 'grants'));
    }
    const payload = typeof data === 'string' ? { text: data } : { binary: data };
    let seq;
    try {
      checkPayload(payload, this.limits);
      const wire = 'text' in payload ? payload : { binary: toBase64(payload.binary) };
      seq = this._sendReliable({ type: 'message', to, payload: wire });
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve) => this._pending.set(seq, resolve));
  }

  /**
   * Send one y-protocols message (a Uint8Array) for whiteboard `board` of the room, exactly once
   * across reconnects; a refused change comes back as an `error` event with `inType`
   * `whiteboard`. web/whiteboard/board.js builds and reads these (docs/whiteboard.md).
   * @param {string} board @param {Uint8Array} data
   */
  sendWhiteboard(board, data) {
    this._sendSignal({ type: 'whiteboard', board, data: toBase64(data) });
  }

  /**
   * Acknowledge every stream frame received so far now, instead of after 32 frames or 50 ms:
   * the server then releases them from this session's queue. A whiteboard's chunked sync
   * answer is paced by these acknowledgements (web/whiteboard/board.js calls it after each
   * chunk). Nothing happens while disconnected (a resume acknowledges).
   */
  acknowledgeReceived() {
    if (this._ws && this._ws.readyState === 1) this._ack();
  }

  /**
   * Send over the peer-to-peer data channel (label `streamwire`) to `to` or every peer with an
   * open channel: lower latency, no delivery result, nothing kept across reconnects.
   * @param {string|Uint8Array} data @param {string} [to] @returns {number} peers it was handed to
   */
  sendData(data, to) {
    let n = 0;
    for (const [id, link] of this.pcs) {
      if ((to === undefined || to === id) && link.channel?.readyState === 'open') {
        link.channel.send(data);
        n += 1;
      }
    }
    if (n === 0 && to !== undefined) throw new StreamwireError('no_data_channel', `No open data channel to peer ${to}.`);
    return n;
  }

  /**
   * Tell the server the size a remote video `track` is shown at, in device pixels (0x0: not
   * shown). In an SFU room the server then forwards the smallest simulcast layer covering it
   * (docs/sfu.md, "Simulcast"); the latest size wins, sent at most 4 times a second per track.
   * The web app calls it for every video tile. Returns false when it does not apply (a mesh
   * room, or a track of no SFU connection).
   * @param {MediaStreamTrack} track @param {number} width @param {number} height
   * @returns {boolean}
   */
  setRenderedSize(track, width, height) {
    if (this.topology !== 'sfu') return false;
    return sfu.setRenderedSize(this, track, width, height);
  }

  // ---- stats -------------------------------------------------------------------------------

  /**
   * Per-peer receive figures (what this peer sends us) over the interval since the previous
   * call: bitrate, decoded fps, RTT (ICE candidate pair), loss and jitter, quality score.
   * @param {string} peerId @returns {Promise<PeerStats|null>}
   */
  async getStats(peerId) {
    return (await this.pcs.get(peerId)?.stats()) ?? null;
  }

  /** The audio level (0..1) of what `peerId` sends now. @param {string} peerId */
  audioLevel(peerId) {
    return this.pcs.get(peerId)?.audioLevel() ?? 0;
  }

  /** The active speaker among the remote members (a peer id), or null (streamwire-speaker.js). */
  get activeSpeaker() {
    return this._speaker?.active ?? null;
  }

  /**
   * While joined, every LEVEL_EVENT_INTERVAL_MS (250 ms): `audiolevels` with every remote
   * member's level (`{levels: [{peer, dbov}]}`, 127 = silence) and, when it changes,
   * `activespeaker` (`{peer}`: an id, or null once the active speaker left), by the Rust side's
   * rules.
   */
  _startLevels() {
    // Levels come from peer connections: none without media (and no timer to outlive tests).
    if (this._levelTimer || !this.media) return;
    this._speaker = new ActiveSpeaker();
    this._levelTimer = setInterval(() => {
      const levels = new Map([...this.pcs.keys()].map((id) => [id, dbovOf(this.audioLevel(id))]));
      this._emit('audiolevels', { levels: [...levels].map(([peer, dbov]) => ({ peer, dbov })) });
      const changed = this._speaker.observe(levels, performance.now());
      if (changed !== undefined) this._emit('activespeaker', { peer: changed });
    }, LEVEL_EVENT_INTERVAL_MS);
  }

  // ---- echo test, network probe (streamwire-media-test.js) --------------------------------

  /**
   * Echo test, before (or instead of) joining: camera and microphone (or `stream`, which stays
   * the caller's) go to the server on a connection of its own and come back after the server's
   * delay (2.5 s) in `test.remoteStream`; the test ends by itself after `seconds` (server
   * default 20, at most 60). Resolves once the server accepted it; rejects with StreamwireError
   * (`media_test_running`, `media_denied`, the server's `not_implemented`, `media_test_full`,
   * `token_*`, `invalid_field`, `server_unreachable`, `timeout`). docs/web.md, "Echo test".
   * @param {{seconds?: number, stream?: MediaStream, video?: boolean|MediaTrackConstraints,
   *          audio?: boolean|MediaTrackConstraints, onReport?: (r: any) => void}} [opts]
   * @returns {Promise<mediaTest.MediaTest>}
   */
  startEchoTest(opts) {
    return mediaTest.start(this, 'echo', opts);
  }

  /**
   * Network probe, before joining: a 640x360 noise stream up, the server's noise stream down,
   * each at its sender's congestion estimate; reports (first about 1 s after the connection is
   * up, then every 2 s) carry both estimates, loss, jitter, RTT and the 0-5 quality. Rejects
   * like `startEchoTest`. docs/web.md, "Network probe".
   * @param {{seconds?: number, onReport?: (r: any) => void}} [opts]
   * @returns {Promise<mediaTest.MediaTest>}
   */
  probeNetwork(opts) {
    return mediaTest.start(this, 'probe', { seconds: opts?.seconds, onReport: opts?.onReport });
  }

  // ---- feedback, leave ---------------------------------------------------------------------

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
    if (!this._ws || this._ws.readyState !== 1 || !this._active()) {
      return Promise.reject(new StreamwireError('not_connected', 'Not connected to the room: join before sending feedback.'));
    }
    return new Promise((resolve, reject) => {
      const req = {
        resolve: () => { clearTimeout(req.timer); resolve(); },
        reject: (e) => { clearTimeout(req.timer); reject(e); },
        timer: setTimeout(() => {
          this._feedback = this._feedback.filter((r) => r !== req);
          reject(new StreamwireError('timeout', `The server did not answer the feedback within ${FEEDBACK_TIMEOUT_MS / 1000} s.`));
        }, FEEDBACK_TIMEOUT_MS),
      };
      try {
        this._send(text ? { type: 'feedback', rating, comment: text } : { type: 'feedback', rating });
      } catch (e) {
        clearTimeout(req.timer);
        reject(e);
        return;
      }
      this._feedback.push(req);
    });
  }

  /**
   * Leave the room (no resume): close every peer connection and stop every published track
   * (camera, microphone, screen). Other peers see `peerleft` at once.
   */
  leave() {
    this._leaving = true;
    try {
      this._send({ type: 'leave' });
    } catch {
      // nothing to tell a server we are not connected to
    }
    this._removeAllPeers('left');
    media.releaseLocal(this);
    this._failPending('left');
    for (const r of this._feedback.splice(0)) r.reject(new StreamwireError('not_connected', 'Left the room before the feedback was answered.'));
    const ws = this._ws;
    this._ws = null;
    ws?.close();
    this._setState('closed');
  }
}
