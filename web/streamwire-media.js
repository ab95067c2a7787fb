// Streamwire browser client: local media (publishing camera, microphone and screen, muting,
// device switching, releasing every capture). Functions of a StreamwireClient `c`; the client's
// methods of the same names (streamwire.js) are the public API and carry its documentation.

import { StreamwireError } from './streamwire-util.js';

/** Labels announced for local tracks (never the device's own name). */
const LABELS = { audio: 'microphone', video: 'camera' };

/** StreamwireClient#publish (documented there). */
export async function publish(c, stream, want = {}) {
  if (c.localStream) throw new StreamwireError('already_published', 'Already publishing camera/microphone; unpublish() first.');
  checkMayPublish(c);
  if (!stream) {
    const video = want.video ?? { width: 640, height: 480 };
    const audio = want.audio ?? true;
    c._videoWant = video;
    if (!video && !audio) throw new StreamwireError('media_denied', 'Nothing to capture: both video and audio are off.');
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video, audio });
    } catch (e) {
      throw new StreamwireError('media_denied', `Camera/microphone not available: ${e.name}: ${e.message}`);
    }
    if (c.state === 'failed' || c.state === 'closed' || c.localStream) {
      for (const t of stream.getTracks()) t.stop();
      throw new StreamwireError('not_connected', 'The client left while the camera was starting; the capture was released.');
    }
  }
  c.localStream = stream;
  c._videoWant ??= true;
  for (const t of stream.getTracks()) t.enabled = !c._muted[t.kind];
  if (c._muted.video) for (const t of stream.getVideoTracks()) t.stop();
  await addLocal(c, stream.getTracks().map((track) => ({ track, stream, label: LABELS[track.kind] ?? track.kind })));
  return stream;
}

/** StreamwireClient#shareScreen (documented there). */
export async function shareScreen(c) {
  if (c.screenStream) throw new StreamwireError('already_published', 'Already sharing the screen.');
  checkMayPublish(c);
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (e) {
    throw new StreamwireError('media_denied', `Screen sharing not available: ${e.name}: ${e.message}`);
  }
  if (!c._active() && c.state !== 'new') {
    for (const t of stream.getTracks()) t.stop();
    throw new StreamwireError('not_connected', 'Not in the room: the screen capture was released.');
  }
  c.screenStream = stream;
  const [track] = stream.getVideoTracks();
  track.addEventListener('ended', () => { if (c.screenStream === stream) c.stopScreenShare(); });
  await addLocal(c, [{ track, stream, label: 'screen' }]);
  return stream;
}

/** Stop sharing the screen (unpublish its track and stop the capture). */
export async function stopScreenShare(c) {
  const stream = c.screenStream;
  if (!stream) return;
  c.screenStream = null;
  await removeLocal(c, stream.getTracks());
}

/** StreamwireClient#unpublish (documented there). */
export async function unpublish(c) {
  const stream = c.localStream;
  if (!stream) return;
  c.localStream = null;
  await removeLocal(c, stream.getTracks());
}

/** StreamwireClient#switchDevice (documented there). */
export async function switchDevice(c, kind, deviceId) {
  const entry = cameraEntry(c, kind);
  if (!entry) throw new StreamwireError('not_published', `No published ${kind} track to switch.`);
  const base = kind === 'video' ? c._videoWant : {};
  const track = await capture(c, kind, { ...(typeof base === 'object' ? base : {}), deviceId: { exact: deviceId } });
  await replaceTrack(c, entry, track);
  return track;
}

/** The published camera (`video`) or microphone (`audio`) entry. */
export function cameraEntry(c, kind) {
  return c._local.find((l) => l.stream === c.localStream && l.track.kind === kind);
}

export async function capture(c, kind, constraints) {
  try {
    const s = await navigator.mediaDevices.getUserMedia({ [kind]: constraints });
    const [track] = s.getTracks();
    track.enabled = !c._muted[kind];
    return track;
  } catch (e) {
    throw new StreamwireError('media_denied', `Cannot open the ${kind === 'video' ? 'camera' : 'microphone'}: ${e.name}: ${e.message}`);
  }
}

/** Put `track` in place of `entry.track` on every sender and in the published stream. */
export async function replaceTrack(c, entry, track) {
  const old = entry.track;
  for (const link of c.pcs.values()) {
    for (const s of link.pc.getSenders()) if (s.track === old) await s.replaceTrack(track);
  }
  entry.stream.removeTrack(old);
  entry.stream.addTrack(track);
  entry.track = track;
  old.stop();
}

export function checkMayPublish(c) {
  if (c.state !== 'new' && c.state !== 'connecting' && !c._active()) {
    throw new StreamwireError('not_connected', 'Not in the room: join() first.');
  }
  if (c._active() && !c.grants.has('publish')) {
    throw new StreamwireError('forbidden', 'Your room token does not allow publishing (no `publish` grant).', 'grants');
  }
}

export async function addLocal(c, entries) {
  c._local.push(...entries);
  // Before the join, `welcome` announces them; while reconnecting, the frames are kept and
  // sent after the resume.
  if (!c._active()) return;
  await c._queue.push(async () => {
    announce(c, entries);
    // Where this client offers it re-offers with the new tracks; where it answers, the
    // announcement asks the offerer (docs/protocol.md, "Negotiation roles").
    for (const link of c.pcs.values()) await link.reoffer();
  });
}

export async function removeLocal(c, tracks) {
  const gone = c._local.filter((l) => tracks.includes(l.track));
  c._local = c._local.filter((l) => !tracks.includes(l.track));
  if (c._active() && gone.length) {
    await c._queue.push(async () => {
      for (const l of gone) {
        try {
          c._sendReliable({ type: 'unpublish', track_id: l.track.id });
        } catch (e) {
          c._emitError(e.code, e.message);
        }
      }
      for (const link of c.pcs.values()) await link.withdraw(gone.map((l) => l.track));
    });
  }
  for (const t of tracks) t.stop();
}

export function announce(c, entries) {
  for (const { track, label } of entries) {
    try {
      // A video track's capture size: an SFU maps its subscribers' rendered sizes to layers.
      const { width, height } = track.kind === 'video' ? (track.getSettings?.() ?? {}) : {};
      const size = width > 0 && height > 0 ? { width, height } : {};
      c._sendReliable({ type: 'publish', track: { id: track.id, kind: track.kind, label, ...size } });
    } catch (e) {
      c._emitError(e.code, e.message);
    }
  }
}

/** Stop every track this client publishes or captured; forget them. */
export function releaseLocal(c) {
  for (const l of c._local) l.track.stop();
  for (const s of [c.localStream, c.screenStream]) for (const t of s?.getTracks() ?? []) t.stop();
  c._local = [];
  c.localStream = null;
  c.screenStream = null;
}

/** StreamwireClient#setMuted (documented there). */
export async function setMuted(c, kind, muted) {
  c._muted[kind] = muted;
  for (const l of c._local) if (l.track.kind === kind && l.label !== 'screen') l.track.enabled = !muted;
  const cam = kind === 'video' ? cameraEntry(c, 'video') : null;
  if (cam && muted) {
    cam.deviceId = cam.track.getSettings?.().deviceId;
    cam.track.stop();
  } else if (cam && cam.track.readyState === 'ended') {
    const want = typeof c._videoWant === 'object' ? c._videoWant : {};
    const track = await capture(c, 'video', cam.deviceId ? { ...want, deviceId: { exact: cam.deviceId } } : want);
    if (c._muted.video || cameraEntry(c, 'video') !== cam) {
      track.stop();
    } else {
      await replaceTrack(c, cam, track);
    }
  }
  const base = c.metadata && typeof c.metadata === 'object' ? c.metadata : {};
  c.metadata = { ...base, muted: { ...c._muted } };
  if (c._active()) {
    try {
      c._sendReliable({ type: 'set_metadata', metadata: c.metadata });
    } catch (e) {
      c._emitError(e.code, e.message);
    }
  }
  return muted;
}

