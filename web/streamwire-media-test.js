// Streamwire browser client: the echo test and the pre-call network probe (docs/web.md, "Echo
// test and network probe"; the protocol is docs/protocol.md, "Media tests"). A test is a
// WebSocket of its own to the client's server, first frame `media_test` (it never joins the
// room), and one RTCPeerConnection to the server's media test peer `media-test`: this side
// offers, the server answers, ICE trickles both ways. streamwire.js wires `startEchoTest` and
// `probeNetwork` on StreamwireClient to `start` here.

import { StreamwireError, describeError, qualityScore, SerialQueue } from './streamwire-util.js';

/** The server's media test peer: offers and candidates go `to` it. */
export const MEDIA_TEST_PEER = 'media-test';

/**
 * Time limits, ms: `readyMs` for the server's `media_test_ready` after the socket opened;
 * `endGraceMs` past the granted seconds for `media_test_ended` before the test ends here with
 * `timeout`; `leaveMs` after `stop()` for the server's `media_test_ended` before it ends here.
 */
export const MEDIA_TEST_TIMING = Object.freeze({ readyMs: 10000, endGraceMs: 10000, leaveMs: 3000 });

/** The probe stream: a canvas of fresh random noise every frame, so no encoder can shrink it. */
export const PROBE_STREAM = Object.freeze({ width: 640, height: 360, fps: 30 });

/** The loss under which an interval's receive rate counts as bandwidth (`bandwidth_kbps`), %. */
export const BANDWIDTH_MAX_LOSS_PCT = 2;

/** How often the echo's first arrival is looked for, ms. */
const ECHO_POLL_MS = 50;

/**
 * One direction of the path (the same fields as the Rust `PathReport`).
 * @typedef {{estimate_kbps: number|null, kbps: number, bandwidth_kbps: number|null,
 *            loss_pct: number, jitter_ms: number}} PathReport
 * One report, each time the server's `media_test_report` arrives (the Rust `TestReport`).
 * @typedef {{test: 'echo'|'probe', elapsed_ms: number, rtt_ms: number|null, uplink: PathReport,
 *            downlink: PathReport, echo_delay_ms: number|null, quality: number}} TestReport
 * How a test ended.
 * @typedef {{test: 'echo'|'probe', test_id: string, delay_ms: number, reason: string,
 *            message: string, reports: TestReport[], report: TestReport|null,
 *            error: {code: string, message: string, field?: string}|null}} TestSummary
 */

/**
 * What this browser measured since the previous sample, from an `RTCStatsReport` (any iterable
 * of stats objects): the round trip, the browser's own estimate of its sending path, and the
 * receive figures of the inbound streams (the downlink). `base` is the previous sample's
 * counters (null for the first); the result's `base` is the next call's.
 * @param {Iterable<any>} stats @param {{t: number, bytes: number, lost: number, recv: number}|null} base
 * @param {number} now ms
 */
export function readStats(stats, base, now) {
  const all = [...stats];
  let bytes = 0, lost = 0, recv = 0, jitter = 0, rtt = null, remoteRtt = null, estimate = null;
  const pairId = all.find((s) => s.type === 'transport' && s.selectedCandidatePairId)?.selectedCandidatePairId;
  const pair = all.find((s) => s.type === 'candidate-pair' && (pairId ? s.id === pairId : s.nominated && s.state === 'succeeded'));
  if (pair?.currentRoundTripTime != null) rtt = pair.currentRoundTripTime * 1000;
  if (pair?.availableOutgoingBitrate != null) estimate = Math.round(pair.availableOutgoingBitrate / 1000);
  for (const s of all) {
    if (s.type === 'inbound-rtp') {
      bytes += s.bytesReceived ?? 0;
      lost += Math.max(s.packetsLost ?? 0, 0);
      recv += s.packetsReceived ?? 0;
      jitter = Math.max(jitter, (s.jitter ?? 0) * 1000);
    } else if (s.type === 'remote-inbound-rtp' && s.roundTripTime != null) {
      remoteRtt = s.roundTripTime * 1000;
    }
  }
  const last = base ?? { t: now, bytes: 0, lost: 0, recv: 0 };
  const dt = (now - last.t) / 1000;
  const dLost = Math.max(lost - last.lost, 0);
  const dRecv = Math.max(recv - last.recv, 0);
  return {
    rtt_ms: rtt ?? remoteRtt,
    estimate_kbps: estimate,
    kbps: dt > 0 ? Math.max((bytes - last.bytes) * 8 / dt / 1000, 0) : 0,
    loss_pct: dLost + dRecv > 0 ? (100 * dLost) / (dLost + dRecv) : 0,
    jitter_ms: jitter,
    base: { t: now, bytes, lost, recv },
  };
}

/**
 * This browser's figures and the server's report as one report, as the Rust client combines
 * them: the uplink from what the server received (and the browser's estimate), the downlink
 * from what the browser received (and the server's estimate); the quality is the worse
 * direction's; `bandwidth_kbps` is the highest rate received over one interval with less than
 * `BANDWIDTH_MAX_LOSS_PCT` loss (probe only).
 * @param {'echo'|'probe'} test @param {ReturnType<typeof readStats>} own @param {any} server
 * the `media_test_report` frame @param {number|null} echoDelayMs @param {TestReport|null} previous
 * @returns {TestReport}
 */
export function combineReport(test, own, server, echoDelayMs, previous) {
  const probe = test === 'probe';
  // The server lists media tracks only (no RTX, FEC or padding streams), as the Rust client
  // reads them: a track that stalls counts, as 100 % lost.
  const received = Array.isArray(server.received) ? server.received : [];
  const upLoss = received.reduce((m, t) => Math.max(m, t.loss_pct ?? 0), 0);
  const upJitter = received.reduce((m, t) => Math.max(m, t.jitter_ms ?? 0), 0);
  const upKbps = received.reduce((s, t) => s + (t.kbps ?? 0), 0);
  const rtt = own.rtt_ms ?? server.rtt_ms ?? null;
  const bandwidth = (kbps, loss, before) => {
    const now = probe && loss < BANDWIDTH_MAX_LOSS_PCT && kbps > 0 ? kbps : null;
    if (now != null && before != null) return Math.max(now, before);
    return now ?? before ?? null;
  };
  const round1 = (x) => Math.round(x * 10) / 10;
  const path = (estimate, kbps, loss, jitter, before) => ({
    estimate_kbps: probe ? estimate ?? null : null,
    kbps: round1(kbps),
    bandwidth_kbps: bandwidth(round1(kbps), loss, before),
    loss_pct: round1(loss),
    jitter_ms: round1(jitter),
  });
  return {
    test,
    elapsed_ms: server.elapsed_ms ?? 0,
    rtt_ms: rtt == null ? null : round1(rtt),
    uplink: path(own.estimate_kbps, upKbps, upLoss, upJitter, previous?.uplink.bandwidth_kbps ?? null),
    downlink: path(server.estimate_kbps, own.kbps, own.loss_pct, own.jitter_ms, previous?.downlink.bandwidth_kbps ?? null),
    echo_delay_ms: echoDelayMs,
    quality: Math.min(qualityScore(upLoss, rtt, upJitter), qualityScore(own.loss_pct, rtt, own.jitter_ms)),
  };
}

/** A canvas of fresh noise every frame, captured at `fps`; `stop()` ends it. */
function noiseStream({ width, height, fps }) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(width, height);
  const px = new Uint32Array(img.data.buffer);
  let s = (Math.random() * 0xffffffff) | 1;
  const draw = () => {
    // xorshift32: cheap enough for every pixel of every frame; opaque pixels.
    for (let i = 0; i < px.length; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      px[i] = s | 0xff000000;
    }
    ctx.putImageData(img, 0, 0);
  };
  draw();
  const stream = canvas.captureStream(fps);
  const timer = setInterval(draw, 1000 / fps);
  return {
    stream,
    stop() {
      clearInterval(timer);
      for (const t of stream.getTracks()) t.stop();
    },
  };
}

/**
 * A running echo test or network probe (what `startEchoTest`/`probeNetwork` resolve with).
 * Events (CustomEvent, payload in `detail`): `report` (a TestReport), `error` (an `error`
 * frame of the server during the test: `{code, message, field}`), `ended` (the TestSummary).
 */
export class MediaTest extends EventTarget {
  constructor(c, test, opts) {
    super();
    /** @type {'echo'|'probe'} */ this.test = test;
    /** The server's id of the test (`media_test_ready.test_id`). */ this.testId = null;
    /** The granted length, s. */ this.seconds = null;
    /** The server's echo delay, ms (0 for a probe). */ this.delayMs = null;
    /** @type {RTCPeerConnection|null} */ this.pc = null;
    /** What the server sends back: the echo (or the probe's noise), for a `<video>`. */
    this.remoteStream = new MediaStream();
    /** What is sent: the camera/microphone (echo) or the noise canvas (probe). @type {MediaStream|null} */
    this.localStream = null;
    /** @type {TestReport[]} */ this.reports = [];
    /** @type {TestReport|null} */ this.lastReport = null;
    /** Echo: ms from the media connection coming up to the first echoed frame or audio packet. @type {number|null} */
    this.echoDelayMs = null;
    /**
     * When each step came, ms after the call: `ready` (`media_test_ready`), `offer` (sent),
     * `answer`, `connected` (the peer connection), `report` (the first report).
     */
    this.timings = {};
    this._t0 = performance.now();
    this._c = c;
    this._onReport = opts.onReport;
    this._ws = null;
    this._timers = [];
    this._base = null;
    this._error = null;
    this._finished = false;
    this._queue = new SerialQueue((e) => this._emit('error', { code: 'internal', message: `media test frame handling failed: ${e?.stack ?? e}` }));
    this.done = new Promise((resolve, reject) => { this._resolve = resolve; this._reject = reject; });
    // An unobserved rejection is not an error of the page.
    this.done.catch(() => {});
  }

  _mark(step) {
    this.timings[step] ??= Math.round(performance.now() - this._t0);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _send(obj) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify(obj));
  }

  /** Stop the test now (sends `leave`); resolves like `done`. @returns {Promise<TestSummary>} */
  stop() {
    if (!this._finished && !this._leaving) {
      this._leaving = true;
      this._send({ type: 'leave' });
      this._timers.push(setTimeout(() => this._end('left', 'stopped (the server did not confirm)'), MEDIA_TEST_TIMING.leaveMs));
    }
    return this.done;
  }

  /** The summary, release everything; `error` (a StreamwireError) rejects `done` instead. */
  _end(reason, message, error) {
    if (this._finished) return;
    this._finished = true;
    for (const t of this._timers) clearTimeout(t);
    clearInterval(this._echoPoll);
    this._release();
    if (error) {
      this._reject(error);
      this._emit('ended', { error: { code: error.code, message: error.message } });
      return;
    }
    const summary = {
      test: this.test, test_id: this.testId, delay_ms: this.delayMs, reason, message,
      reports: this.reports, report: this.lastReport, error: this._error,
    };
    this._resolve(summary);
    this._emit('ended', summary);
  }

  _release() {
    if (this._c._mediaTest === this) this._c._mediaTest = null;
    globalThis.removeEventListener?.('pagehide', this._onPageHide);
    this.pc?.close();
    this._noise?.stop();
    if (this._ownCapture) for (const t of this.localStream?.getTracks() ?? []) t.stop();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = null;
      ws.close();
    }
  }

  /** Open the socket, wait for `media_test_ready`. Rejects with a StreamwireError. */
  _connect(seconds) {
    const c = this._c;
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new c._WebSocket(c.url);
      } catch (e) {
        reject(new StreamwireError('bad_url', `Cannot open ${c.url}: ${e.message}`));
        return;
      }
      this._ws = ws;
      const timer = setTimeout(() => reject(new StreamwireError('timeout',
        `The server did not answer the media test within ${MEDIA_TEST_TIMING.readyMs / 1000} s.`)), MEDIA_TEST_TIMING.readyMs);
      const settle = (f, v) => { clearTimeout(timer); f(v); };
      ws.onopen = () => {
        const first = { type: 'media_test', v: 1, room: c.room, token: c.token, test: this.test };
        if (seconds != null) first.seconds = seconds;
        ws.send(JSON.stringify(first));
      };
      ws.onclose = () => settle(reject, new StreamwireError('server_unreachable', `Cannot reach the Streamwire server at ${c.url}.`));
      ws.onmessage = (ev) => {
        let m;
        try {
          m = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (m.type === 'media_test_ready') {
          ws.onmessage = (e) => this._queue.push(() => this._frame(e.data));
          ws.onclose = () => this._queue.push(() => this._end(null, null, new StreamwireError('server_gone',
            'The connection to the server was lost during the media test.')));
          settle(resolve, m);
        } else if (m.type === 'error' || m.type === 'bye') {
          settle(reject, new StreamwireError(m.code, describeError(m.code, m.message), m.field));
        }
      };
    });
  }

  /** After `media_test_ready`: the peer connection and the offer. */
  async _negotiate(ready, rtcConfig) {
    if (this._finished) return;
    const iceServers = (ready.ice_servers ?? []).map((s) => {
      const out = { urls: s.urls };
      if (s.username != null) out.username = s.username;
      if (s.credential != null) out.credential = s.credential;
      return out;
    });
    const pc = new this._c._RTC({ ...rtcConfig, iceServers: [...(rtcConfig.iceServers ?? []), ...iceServers] });
    this.pc = pc;
    this._pendingIce = [];
    pc.onicecandidate = (ev) => {
      const cand = ev.candidate;
      if (cand && cand.candidate) {
        this._send({
          type: 'ice', to: MEDIA_TEST_PEER, candidate: cand.candidate.replace(/^a=/, ''),
          sdp_mline_index: cand.sdpMLineIndex ?? 0, sdp_mid: cand.sdpMid ?? undefined,
        });
      } else if (!cand) {
        this._send({ type: 'ice', to: MEDIA_TEST_PEER, candidate: '', sdp_mline_index: 0 });
      }
    };
    pc.ontrack = (ev) => this.remoteStream.addTrack(ev.track);
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'connected' && this._upAt == null) {
        this._upAt = performance.now();
        this._mark('connected');
        // The counters the first report's interval starts from.
        pc.getStats().then((st) => { this._base ??= readStats(st.values(), null, performance.now()).base; }, () => {});
        if (this.test === 'echo') this._echoPoll = setInterval(() => this._lookForEcho(), ECHO_POLL_MS);
      }
    };
    const kinds = new Set();
    for (const track of this.localStream.getTracks()) {
      pc.addTransceiver(track, { direction: 'sendonly', streams: [this.localStream] });
      kinds.add(track.kind);
    }
    // The server sends only on `recvonly` m-lines: one per kind it sends back.
    for (const kind of ['audio', 'video']) if (kinds.has(kind)) pc.addTransceiver(kind, { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    this._send({ type: 'offer', to: MEDIA_TEST_PEER, sdp: pc.localDescription.sdp });
    this._mark('offer');
  }

  /** Echo: the first decoded echoed video frame or received echoed audio packet. */
  async _lookForEcho() {
    if (this._polling || this.echoDelayMs != null || !this.pc) return;
    this._polling = true;
    try {
      const stats = await this.pc.getStats();
      let arrived = false;
      stats.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        if ((s.kind === 'video' && s.framesDecoded > 0) || (s.kind === 'audio' && s.packetsReceived > 0)) arrived = true;
      });
      if (arrived && this.echoDelayMs == null) {
        this.echoDelayMs = Math.round(performance.now() - this._upAt);
        clearInterval(this._echoPoll);
      }
    } catch {
      // closed meanwhile
    } finally {
      this._polling = false;
    }
  }

  /** One frame from the server during the test, in arrival order. */
  async _frame(data) {
    if (this._finished) return;
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      this._emit('error', { code: 'bad_frame', message: `The server sent a frame that is not JSON: ${String(data).slice(0, 80)}` });
      return;
    }
    const pc = this.pc;
    switch (m.type) {
      case 'answer':
        if (!pc || pc.signalingState !== 'have-local-offer') return;
        await pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
        this._mark('answer');
        for (const cand of this._pendingIce.splice(0)) await pc.addIceCandidate(cand).catch(() => {});
        return;
      case 'ice': {
        if (!m.candidate || !pc) return;
        const cand = { candidate: m.candidate, sdpMLineIndex: m.sdp_mline_index, sdpMid: m.sdp_mid ?? undefined };
        if (!pc.remoteDescription) this._pendingIce.push(cand);
        else await pc.addIceCandidate(cand).catch(() => {});
        return;
      }
      case 'media_test_report':
        return this._report(m);
      case 'media_test_ended':
        return this._end(m.reason, m.message ?? '');
      case 'error':
        this._error = { code: m.code, message: describeError(m.code, m.message), field: m.field };
        this._emit('error', this._error);
        return;
      default:
        return;
    }
  }

  async _report(server) {
    if (!this.pc) return;
    let stats;
    try {
      stats = await this.pc.getStats();
    } catch {
      return;
    }
    const own = readStats(stats.values(), this._base, performance.now());
    this._base = own.base;
    const report = combineReport(this.test, own, server, this.echoDelayMs, this.lastReport);
    this.reports.push(report);
    this._mark('report');
    this.lastReport = report;
    this._emit('report', report);
    try {
      this._onReport?.(report);
    } catch (e) {
      this._emit('error', { code: 'internal', message: `onReport threw: ${e?.stack ?? e}` });
    }
  }
}

/**
 * StreamwireClient#startEchoTest and #probeNetwork (documented there).
 * @param {any} c the client @param {'echo'|'probe'} test
 * @param {{seconds?: number, stream?: MediaStream, video?: boolean|MediaTrackConstraints,
 *          audio?: boolean|MediaTrackConstraints, onReport?: (r: TestReport) => void}} [opts]
 * @returns {Promise<MediaTest>}
 */
export async function start(c, test, opts = {}) {
  if (c._mediaTest) {
    throw new StreamwireError('media_test_running', `A media test (${c._mediaTest.test}) is already running on this client; stop() it or wait for its end.`);
  }
  const { seconds } = opts;
  if (seconds != null && (!Number.isInteger(seconds) || seconds < 1)) {
    throw new StreamwireError('invalid_field', `seconds must be a whole number of at least 1, got ${seconds}`, 'seconds');
  }
  const t = new MediaTest(c, test, opts);
  c._mediaTest = t;
  try {
    if (test === 'probe') {
      t._noise = noiseStream(PROBE_STREAM);
      t.localStream = t._noise.stream;
    } else if (opts.stream) {
      t.localStream = opts.stream;
    } else {
      const video = opts.video ?? { width: 640, height: 480 };
      const audio = opts.audio ?? true;
      if (!video && !audio) throw new StreamwireError('media_denied', 'Nothing to test: both video and audio are off.');
      try {
        t.localStream = await navigator.mediaDevices.getUserMedia({ video, audio });
      } catch (e) {
        throw new StreamwireError('media_denied', `Camera/microphone not available: ${e.name}: ${e.message}`);
      }
      t._ownCapture = true;
    }
    if (!t.localStream.getTracks().length) throw new StreamwireError('media_denied', 'The stream to test has no track.');
    const ready = await t._connect(seconds);
    t._mark('ready');
    t.testId = ready.test_id;
    t.seconds = ready.seconds;
    t.delayMs = ready.delay_ms;
    t.reportIntervalMs = ready.report_interval_ms;
    t._timers.push(setTimeout(() => t._queue.push(() => t._end(null, null, new StreamwireError('timeout',
      `The server did not end the media test ${MEDIA_TEST_TIMING.endGraceMs / 1000} s after its ${t.seconds} s.`))),
    t.seconds * 1000 + MEDIA_TEST_TIMING.endGraceMs));
    t._onPageHide = () => t.stop();
    globalThis.addEventListener?.('pagehide', t._onPageHide);
    await t._queue.push(() => t._negotiate(ready, c.rtcConfig ?? {}));
  } catch (e) {
    t._finished = true;
    t._release();
    t._reject(e);
    throw e instanceof StreamwireError ? e : new StreamwireError('internal', `The media test could not start: ${e?.message ?? e}`);
  }
  return t;
}
