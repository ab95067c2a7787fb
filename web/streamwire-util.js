// Streamwire browser client: the parts that need no browser (errors, the quality score, the
// reconnect back-off, the ordered frame queue, limits, SDP helpers). Plain ES module; the
// node unit tests (web/test/) import it directly.

/** An error with a protocol or client `code` (e.g. `token_expired`) and a readable `message`. */
export class StreamwireError extends Error {
  /** @param {string} code @param {string} message @param {string} [field] */
  constructor(code, message, field) {
    super(message);
    this.name = 'StreamwireError';
    this.code = code;
    this.field = field;
  }
}

/** Readable texts for the codes a user may see (docs/web.md, "Errors"). */
const TEXTS = {
  token_expired: 'Your room token has expired. Ask for a new token and join again.',
  token_forged: 'The room token is not valid for this server (bad signature).',
  token_wrong_room: 'This token is for a different room.',
  token_invalid: 'The room token is malformed.',
  token_missing: 'A room token is required.',
  room_full: 'The room is full.',
  shutdown: 'The server is shutting down.',
  kicked: 'You were removed from the room.',
  banned: 'You were removed from this room and cannot join it again yet.',
  replaced: 'You joined this room from somewhere else; this window was disconnected.',
};

/**
 * Human-readable text for a protocol error code; `message` (the server's or the client's own
 * text) when the code has none.
 * @param {string} code @param {string} [message] @returns {string}
 */
export function describeError(code, message) {
  return TEXTS[code] ?? message ?? code;
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

/** Reconnect back-off defaults: 200 ms doubling up to 5 s, each delay randomised by ±25 %. */
export const BACKOFF = Object.freeze({ baseMs: 200, maxMs: 5000, jitter: 0.25 });

/**
 * Delay before reconnect attempt `attempt` (1, 2, ...): `min(baseMs * 2^(attempt-1), maxMs)`
 * scaled by a uniformly random factor in `[1 - jitter, 1 + jitter]`, so clients that lost the
 * same server do not come back in step.
 * @param {number} attempt @param {{baseMs?: number, maxMs?: number, jitter?: number, random?: () => number}} [o]
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, o = {}) {
  const { baseMs, maxMs, jitter } = { ...BACKOFF, ...o };
  const random = o.random ?? Math.random;
  const nominal = Math.min(baseMs * 2 ** Math.max(attempt - 1, 0), maxMs);
  return Math.round(nominal * (1 - jitter + 2 * jitter * random()));
}

/**
 * Runs async jobs one after another in the order they were pushed; a job that throws or
 * rejects is reported to `onError` and the next job still runs.
 */
export class SerialQueue {
  /** @param {(err: any) => void} onError */
  constructor(onError) {
    this._tail = Promise.resolve();
    this._onError = onError;
  }

  /**
   * Queue `job`; the returned promise settles with the job's own result.
   * @template T @param {() => T|Promise<T>} job @returns {Promise<T>}
   */
  push(job) {
    const run = this._tail.then(job);
    this._tail = run.catch((e) => this._onError(e));
    return run;
  }
}

const encoder = new TextEncoder();

/** UTF-8 length of `s` in bytes. @param {string} s @returns {number} */
export function utf8Bytes(s) {
  return encoder.encode(s).length;
}

/**
 * Limits the server announces in `welcome.limits` (docs/protocol.md). Before `welcome`, none
 * are known and nothing is checked locally.
 * @typedef {{max_frame_bytes?: number, max_payload_bytes?: number, rate_per_sec?: number,
 *            burst?: number, max_peers_per_room?: number}} Limits
 */

/**
 * Check a `message` payload against `limits.max_payload_bytes` (decoded bytes: UTF-8 for
 * text, raw bytes for binary). Throws StreamwireError `payload_too_large` naming the field.
 * @param {{text: string}|{binary: Uint8Array}} payload @param {Limits|null} limits
 */
export function checkPayload(payload, limits) {
  const max = limits?.max_payload_bytes;
  if (!max) return;
  const [field, n] = 'text' in payload ? ['payload.text', utf8Bytes(payload.text)] : ['payload.binary', payload.binary.length];
  if (n > max) {
    throw new StreamwireError('payload_too_large',
      `The message is ${n} bytes; the server accepts at most ${max} bytes per message (welcome.limits.max_payload_bytes). Nothing was sent.`, field);
  }
}

/**
 * Check a serialised frame against `limits.max_frame_bytes`. Throws StreamwireError
 * `frame_too_large`.
 * @param {string} json @param {string} type @param {Limits|null} limits
 */
export function checkFrame(json, type, limits) {
  const max = limits?.max_frame_bytes;
  if (!max) return;
  const n = utf8Bytes(json);
  if (n > max) {
    throw new StreamwireError('frame_too_large',
      `A \`${type}\` frame of ${n} bytes is over the server's limit of ${max} bytes (welcome.limits.max_frame_bytes). Nothing was sent.`);
  }
}

/** Base64 (standard alphabet, padded) of `bytes`. @param {Uint8Array} bytes @returns {string} */
export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Bytes of a base64 string. @param {string} b64 @returns {Uint8Array} */
export function fromBase64(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

// ---- SDP helpers ---------------------------------------------------------------------------

/** The media sections of `sdp` (text after each `m=`), in order. @param {string} sdp */
function sections(sdp) {
  return sdp.split(/\r?\nm=/).slice(1);
}

/**
 * The session id of the `o=` line (RFC 4566): the same for every offer of one peer connection,
 * new when the remote side rebuilt its connection. @param {string} sdp @returns {string|null}
 */
export function sdpSessionId(sdp) {
  return /^o=\S+ (\S+) /m.exec(sdp)?.[1] ?? null;
}

/**
 * The ICE username fragment of the first media section (or the session level): it changes when
 * the remote side restarts ICE. @param {string} sdp @returns {string|null}
 */
export function sdpIceUfrag(sdp) {
  return /a=ice-ufrag:(\S+)/.exec(sdp)?.[1] ?? null;
}

/**
 * The m-lines the remote offerer wants to receive on (`a=recvonly` or `a=sendrecv`), by mid.
 * @param {string} sdp @returns {Map<string, string>} mid -> kind (`audio` | `video`)
 */
export function receivingMids(sdp) {
  const out = new Map();
  for (const sec of sections(sdp)) {
    const kind = sec.split(' ')[0];
    const mid = /a=mid:(\S+)/.exec(sec)?.[1];
    if (mid != null && (kind === 'audio' || kind === 'video') && /a=(recvonly|sendrecv)/.test(sec)) out.set(mid, kind);
  }
  return out;
}

/**
 * The track ids the remote side names in `a=msid:<stream> <track>`, by mid.
 * @param {string} sdp @returns {Map<string, string>} mid -> track id
 */
export function msidTracks(sdp) {
  const out = new Map();
  for (const sec of sections(sdp)) {
    const mid = /a=mid:(\S+)/.exec(sec)?.[1];
    const msid = /a=msid:\S+ (\S+)/.exec(sec)?.[1];
    if (mid != null && msid) out.set(mid, msid);
  }
  return out;
}
