// Streamwire browser client: the audio dump (docs/audio.md, "Audio dump in the browser"). The
// published microphone as it is sent (after the browser's processing), the mix of the received
// audio (the far end), and, where the browser allows, a second unprocessed capture of the same
// microphone, recorded with one AudioContext and an AudioWorklet
// (streamwire-audio-dump-worklet.js) as three sample-aligned 16-bit mono 48 kHz WAV files and a
// JSON sidecar. Functions of a StreamwireClient `c`; its `startAudioDump`/`stopAudioDump`
// (streamwire.js) are the public API. Nothing here sends anything: the files are handed to the
// application as Blobs.

import { StreamwireError } from './streamwire-util.js';
import { cameraEntry } from './streamwire-media.js';
import { isSfuPeer } from './sfu.js';

/** Sample rate of every file (Hz), as the Rust dump's `DSP_RATE`. */
export const DUMP_RATE = 48000;
/** Default `maxBytes`: 64 MiB per file, about 11 minutes (the Rust `DEFAULT_DUMP_MAX_BYTES`). */
export const DEFAULT_DUMP_MAX_BYTES = 64 * 1024 * 1024;
/** Smallest `maxBytes`: one second of audio (the Rust `MIN_DUMP_MAX_BYTES`). */
export const MIN_DUMP_MAX_BYTES = 2 * DUMP_RATE;
/** Largest `maxBytes`: 1 GiB per file (the dump is held in the page's memory until it stops). */
export const MAX_DUMP_MAX_BYTES = 1024 * 1024 * 1024;
/** How long `startAudioDump` waits for the AudioContext to run and the worklet to start. */
export const DUMP_START_TIMEOUT_MS = 5000;
/** File names, as in the Rust dump directory. */
export const DUMP_FILES = Object.freeze({ raw: 'raw.wav', far_end: 'far-end.wav', processed: 'processed.wav', sidecar: 'dump.json' });

const HEADER_BYTES = 44;
/** Worklet inputs. */
const PROCESSED = 0, FAR_END = 1, RAW = 2;
const PROCESSING_KEYS = [['echoCancellation', 'echo_cancellation'], ['noiseSuppression', 'noise_suppression'], ['autoGainControl', 'auto_gain_control']];

/** StreamwireClient#startAudioDump (documented there). */
export async function start(c, options = {}) {
  if (c._audioDump && !c._audioDump.result) {
    throw new StreamwireError('already_dumping', 'An audio dump is already running: stopAudioDump() first.');
  }
  if (options === null || typeof options !== 'object') {
    throw new StreamwireError('invalid_field', `startAudioDump options must be an object, got ${options}`, 'options');
  }
  const maxBytes = options.maxBytes ?? DEFAULT_DUMP_MAX_BYTES;
  if (!Number.isInteger(maxBytes) || maxBytes < MIN_DUMP_MAX_BYTES || maxBytes > MAX_DUMP_MAX_BYTES) {
    throw new StreamwireError(
      'invalid_field',
      `maxBytes must be a whole number of bytes from ${MIN_DUMP_MAX_BYTES} (one second) to ${MAX_DUMP_MAX_BYTES} (1 GiB), got ${maxBytes}`,
      'maxBytes',
    );
  }
  const mic = cameraEntry(c, 'audio');
  if (!mic || mic.track.readyState !== 'live') {
    throw new StreamwireError('not_published', 'No published microphone: publish() audio before startAudioDump().');
  }
  if (typeof globalThis.AudioWorkletNode !== 'function' || typeof globalThis.AudioContext !== 'function') {
    throw new StreamwireError('not_supported', 'This browser has no AudioWorklet: the audio dump needs AudioContext and AudioWorkletNode.');
  }
  const dump = new Dump(c, mic.track, maxBytes);
  c._audioDump = dump; // before the first await: a second start meanwhile is refused
  try {
    await dump.open();
  } catch (e) {
    dump.release();
    if (c._audioDump === dump) c._audioDump = null;
    throw e instanceof StreamwireError ? e : new StreamwireError('audio_dump_failed', `The audio dump could not start: ${e?.name ?? ''} ${e?.message ?? e}`);
  }
}

/** StreamwireClient#stopAudioDump (documented there). */
export async function stop(c) {
  const dump = c._audioDump;
  if (!dump) return null; // as the Rust `stop_audio_dump`: nothing ran
  const result = await dump.stop();
  if (c._audioDump === dump) c._audioDump = null;
  return result;
}

/** A running dump: the AudioContext graph, the recorded chunks, and the far-end sources. */
class Dump {
  constructor(c, track, maxBytes) {
    this.c = c;
    this.track = track;
    this.maxBytes = maxBytes;
    this.maxSamples = Math.floor((maxBytes - HEADER_BYTES) / 2);
    /** Recorded chunks (ArrayBuffers of S16LE) per worklet input. */
    this.chunks = [[], [], []];
    this.samples = 0;
    /** Far-end sources by track: {peerId, source, entry}. */
    this.far = new Map();
    /** The sidecar's `far_end_tracks`. */
    this.farLog = [];
    this.settings = track.getSettings?.() ?? {};
    this.result = null;
    this.reason = null;
    this.waiters = [];
    this.onTrack = (e) => { if (e.detail.track.kind === 'audio' && !e.detail.screen) this.addFar(e.detail.peerId, e.detail.track); };
    this.onTrackEnded = (e) => this.removeFar(e.detail.track);
  }

  async open() {
    const ctx = (this.ctx = new AudioContext({ sampleRate: DUMP_RATE, latencyHint: 'interactive' }));
    // A context the autoplay policy holds keeps its resume() pending: wait a bounded time.
    let timer;
    await Promise.race([ctx.resume(), new Promise((r) => { timer = setTimeout(r, DUMP_START_TIMEOUT_MS); })]);
    clearTimeout(timer);
    if (ctx.state !== 'running') {
      throw new StreamwireError('audio_blocked', `The browser did not start audio processing (AudioContext ${ctx.state}; autoplay policy): call startAudioDump() from a user gesture such as a click.`);
    }
    await ctx.audioWorklet.addModule(new URL('./streamwire-audio-dump-worklet.js', import.meta.url));
    const raw = await rawCapture(this.settings);
    this.rawTrack = raw.track ?? null;
    this.rawAbsent = raw.reason ?? null;
    this.rawSettings = this.rawTrack?.getSettings() ?? null;
    if (this.c._audioDump !== this || this.track.readyState !== 'live') {
      throw new StreamwireError('not_published', 'The microphone was unpublished while the audio dump was starting.');
    }
    const node = (this.node = new AudioWorkletNode(ctx, 'streamwire-audio-dump', {
      numberOfInputs: 3, numberOfOutputs: 1, outputChannelCount: [1],
      channelCount: 1, channelCountMode: 'explicit', channelInterpretation: 'speakers',
      processorOptions: { maxSamples: this.maxSamples },
    }));
    // The node writes nothing to its output (silence); the connection makes the context pull it.
    node.connect(ctx.destination);
    this.sources = [this.source(this.track, PROCESSED)];
    if (this.rawTrack) this.sources.push(this.source(this.rawTrack, RAW));
    for (const { peerId, track } of remoteAudio(this.c)) this.addFar(peerId, track);
    this.c.addEventListener('track', this.onTrack);
    this.c.addEventListener('trackended', this.onTrackEnded);
    const started = new Promise((resolve) => { this.onStarted = resolve; });
    node.port.onmessage = (ev) => this.onMessage(ev.data);
    node.port.postMessage({ type: 'start' });
    await withTimeout(started, 'the dump worklet to start');
  }

  /** A MediaStreamAudioSourceNode of `track` into worklet input `input`. */
  source(track, input) {
    const s = this.ctx.createMediaStreamSource(new MediaStream([track]));
    s.connect(this.node, 0, input);
    return s;
  }

  /** Seconds since sample 0 on the AudioContext clock (0 before the first sample). */
  now() {
    return this.startTime == null ? 0 : Math.max(0, this.ctx.currentTime - this.startTime);
  }

  addFar(peerId, track) {
    if (this.result || this.far.has(track) || track.readyState !== 'live' || !this.node) return;
    const entry = { peer_id: peerId, track_id: track.id, from_s: round6(this.now()), until_s: null };
    this.farLog.push(entry);
    this.far.set(track, { source: this.source(track, FAR_END), entry });
  }

  removeFar(track) {
    const f = this.far.get(track);
    if (!f) return;
    this.far.delete(track);
    f.source.disconnect();
    f.entry.until_s = round6(this.now());
  }

  onMessage(m) {
    if (m.type === 'started') {
      this.startFrame = m.startFrame;
      this.startTime = m.startFrame / m.sampleRate;
      this.startUnixMs = unixTime(this.ctx, this.startTime);
      this.onStarted();
    } else if (m.type === 'data') {
      m.bufs.forEach((b, i) => this.chunks[i].push(b));
      this.samples += m.frames;
      // The published microphone ended (unpublish, leave, switchDevice): the dump ends with it.
      if (!this.reason && (this.track.readyState !== 'live' || cameraEntry(this.c, 'audio')?.track !== this.track)) {
        this.reason = 'track-ended';
        this.node.port.postMessage({ type: 'stop' });
      }
      for (const t of [...this.far.keys()]) if (t.readyState !== 'live') this.removeFar(t);
    } else if (m.type === 'end') {
      this.finish(this.reason ?? m.reason);
    }
  }

  /** Stop (or, when it already ended by itself, return its result). */
  stop() {
    if (this.result) return Promise.resolve(this.result);
    if (this.startTime == null) {
      return Promise.reject(new StreamwireError('audio_dump_starting', 'The audio dump is still starting: stop it once startAudioDump() resolved.'));
    }
    this.reason ??= 'stopped';
    this.node.port.postMessage({ type: 'stop' });
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  finish(reason) {
    for (const t of [...this.far.keys()]) this.removeFar(t);
    const s = this.settings;
    const sidecar = {
      version: 1,
      files: { raw: this.rawTrack ? DUMP_FILES.raw : null, far_end: DUMP_FILES.far_end, processed: DUMP_FILES.processed },
      sample_rate: DUMP_RATE,
      channels: 1,
      sample_format: 'S16LE',
      clock: 'AudioContext',
      start_frame: this.startFrame,
      start_context_time_s: this.startTime,
      start_unix_time_ms: this.startUnixMs,
      base_latency_s: this.ctx.baseLatency ?? null,
      output_latency_s: this.ctx.outputLatency ?? null,
      processing: processing(s),
      raw_processing: this.rawSettings ? processing(this.rawSettings) : null,
      raw_absent: this.rawAbsent,
      track_settings: { processed: s, raw: this.rawSettings },
      device: this.track.label,
      max_bytes: this.maxBytes,
      samples: [this.rawTrack ? this.samples : 0, this.samples, this.samples],
      far_end_tracks: this.farLog,
      stopped: reason,
    };
    const files = {
      [DUMP_FILES.processed]: wav(this.chunks[PROCESSED], this.samples),
      [DUMP_FILES.far_end]: wav(this.chunks[FAR_END], this.samples),
    };
    if (this.rawTrack) files[DUMP_FILES.raw] = wav(this.chunks[RAW], this.samples);
    files[DUMP_FILES.sidecar] = new Blob([JSON.stringify(sidecar, null, 2)], { type: 'application/json' });
    this.chunks = [[], [], []];
    this.result = { files, sidecar };
    this.release();
    if (reason !== 'stopped') this.c._emit('audiodumpended', { reason, ...this.result });
    for (const w of this.waiters.splice(0)) w(this.result);
  }

  /** Free everything the dump holds but its result. */
  release() {
    this.c.removeEventListener('track', this.onTrack);
    this.c.removeEventListener('trackended', this.onTrackEnded);
    for (const s of this.sources ?? []) s.disconnect();
    this.node?.disconnect();
    if (this.node) this.node.port.onmessage = null;
    this.rawTrack?.stop();
    this.ctx?.close().catch(() => {});
  }
}

/** Every received audio track now: the mesh links' and the SFU members'. */
function remoteAudio(c) {
  const out = [];
  for (const [id, link] of c.pcs) {
    if (!isSfuPeer(id)) for (const track of link.stream.getAudioTracks()) out.push({ peerId: id, track });
  }
  for (const [peerId, s] of c._sfu?.streams ?? []) for (const track of s.getAudioTracks()) out.push({ peerId, track });
  return out;
}

/**
 * A second capture of the published microphone's device with the browser's processing off.
 * Returns `{track}`, or `{reason}` when the browser refuses it or does not confirm (in
 * `getSettings()`) that echo cancellation, noise suppression and gain control are all off.
 */
async function rawCapture(settings) {
  if (!navigator.mediaDevices?.getUserMedia) return { reason: 'getUserMedia is not available' };
  const want = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
  if (settings.deviceId) want.deviceId = { exact: settings.deviceId };
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: want });
  } catch (e) {
    return { reason: `the second capture of the microphone failed: ${e.name}: ${e.message}` };
  }
  const [track] = stream.getAudioTracks();
  const got = track.getSettings?.() ?? {};
  const on = PROCESSING_KEYS.map(([k]) => k).filter((k) => got[k] !== false);
  if (on.length) {
    track.stop();
    return { reason: `the browser did not turn off ${on.join(', ')} for a second capture of the microphone` };
  }
  return { track };
}

/** The processing part of `getSettings()`, with the sidecar's names (null: not reported). */
function processing(s) {
  return Object.fromEntries(PROCESSING_KEYS.map(([k, name]) => [name, typeof s[k] === 'boolean' ? s[k] : null]));
}

/**
 * Unix time (ms) of AudioContext time `t`: through `getOutputTimestamp()` (the context time
 * being played at a `performance.now()` time) where the browser gives one, else through
 * `currentTime` read with `performance.now()`.
 */
function unixTime(ctx, t) {
  const ts = ctx.getOutputTimestamp?.();
  if (ts && ts.contextTime > 0 && ts.performanceTime > 0) {
    return performance.timeOrigin + ts.performanceTime + (t - ts.contextTime) * 1000;
  }
  return performance.timeOrigin + performance.now() - (ctx.currentTime - t) * 1000;
}

function round6(x) {
  return Math.round(x * 1e6) / 1e6;
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new StreamwireError('audio_dump_failed', `Timed out after ${DUMP_START_TIMEOUT_MS} ms waiting for ${what}.`)), DUMP_START_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A 16-bit mono 48 kHz PCM WAV of `samples` samples from S16LE `chunks`. */
export function wav(chunks, samples) {
  const h = new DataView(new ArrayBuffer(HEADER_BYTES));
  const tag = (at, s) => { for (let i = 0; i < 4; i += 1) h.setUint8(at + i, s.charCodeAt(i)); };
  const bytes = samples * 2;
  tag(0, 'RIFF');
  h.setUint32(4, 36 + bytes, true);
  tag(8, 'WAVE');
  tag(12, 'fmt ');
  h.setUint32(16, 16, true); // fmt chunk size
  h.setUint16(20, 1, true); // PCM
  h.setUint16(22, 1, true); // mono
  h.setUint32(24, DUMP_RATE, true);
  h.setUint32(28, DUMP_RATE * 2, true); // byte rate
  h.setUint16(32, 2, true); // block align
  h.setUint16(34, 16, true); // bits per sample
  tag(36, 'data');
  h.setUint32(40, bytes, true);
  return new Blob([h.buffer, ...chunks], { type: 'audio/wav' });
}
