// The Streamwire call page: pre-join screen, then the call. Plain ES module, no build step.
// URL parameters (docs/web.md, "The call page"): room, name, token (joins at once), publish=0|1,
// attempts=N, res=WxH, fps=N.
import { StreamwireClient, StreamwireError } from './streamwire.js';
import { constraints, stopStream, levelMeter, listDevices } from './app-media.js';
import { Stage } from './app-call.js';
import { Chat } from './app-chat.js';
import { mountMediaTests } from './app-test.js';
import { mountWhiteboard } from './whiteboard/whiteboard.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

/** State the tests (and the console) can inspect. */
const app = {
  client: null, view: 'prejoin', status: '', messages: [], deliveries: [], peers: {}, errors: [],
  recovery: [], activeSpeaker: null, preview: null,
};
window.streamwireApp = app;

const chat = new Chat(app);
let stage = null;
let dev = false;
let joining = false;
let timers = [];
let callToken = '';
let preview = null;
let previewMeter = null;
let previewTimer = null;
let devices = { cam: '', mic: '' };

function status(text, kind = '') {
  app.status = text;
  $('status').textContent = text;
  $('status').className = kind;
}

function showView(view) {
  app.view = view;
  $('prejoin').hidden = view !== 'prejoin';
  $('call').hidden = view !== 'call';
}

// ---- pre-join ------------------------------------------------------------------------------

$('room').value = params.get('room') ?? 'demo';
$('name').value = params.get('name') ?? localStorage.getItem('streamwire.name') ?? '';
if (params.get('publish') === '0') $('cam-on').checked = $('mic-on').checked = false;
const roomText = () => $('room').value.trim() || 'demo';
function showRoom() {
  $('pj-room').textContent = `room ${roomText()}`;
  $('roomname').textContent = roomText();
}
showRoom();
$('room').addEventListener('input', showRoom);
if (params.has('room')) $('room-field').hidden = true;

async function startPreview() {
  stopPreview();
  const want = constraints(params, devices);
  const video = $('cam-on').checked && want.video;
  const audio = $('mic-on').checked && want.audio;
  if (!video && !audio) {
    $('notice').textContent = 'Turn the camera or the microphone on to preview it.';
    return;
  }
  try {
    preview = await navigator.mediaDevices.getUserMedia({ video, audio });
  } catch (e) {
    $('notice').textContent = `Camera/microphone denied or unavailable: ${e.message}.`;
    return;
  }
  app.preview = preview;
  $('notice').textContent = '';
  $('preview').srcObject = preview;
  $('preview-off').hidden = true;
  $('preview-stop').hidden = false;
  $('pj-meter').hidden = !preview.getAudioTracks().length;
  const audioTrack = preview.getAudioTracks()[0];
  if (audioTrack) {
    previewMeter = levelMeter(audioTrack);
    previewTimer = setInterval(() => {
      const v = Math.round(previewMeter.read() * 100);
      $('pj-meter').firstElementChild.style.width = `${v}%`;
      $('pj-meter').setAttribute('aria-valuenow', String(v));
    }, 100);
  }
  await listDevices($('pj-cam'), $('pj-mic'), devices).catch(() => {});
  $('pj-devices').hidden = false;
}

function stopPreview() {
  clearInterval(previewTimer);
  previewMeter?.close();
  previewMeter = null;
  stopStream(preview);
  preview = null;
  app.preview = null;
  $('preview').srcObject = null;
  $('preview-off').hidden = false;
  $('preview-stop').hidden = true;
  $('pj-meter').hidden = true;
  $('pj-meter').firstElementChild.style.width = '0';
}

$('preview-btn').addEventListener('click', startPreview);
$('preview-stop').addEventListener('click', () => {
  stopPreview();
  $('preview-btn').focus();
});
for (const id of ['cam-on', 'mic-on']) $(id).addEventListener('change', () => { if (preview) startPreview(); });
$('pj-cam').addEventListener('change', () => { devices.cam = $('pj-cam').value; if (preview) startPreview(); });
$('pj-mic').addEventListener('change', () => { devices.mic = $('pj-mic').value; if (preview) startPreview(); });
window.addEventListener('pagehide', stopPreview);

/** A stable id for this browser, so that rejoining replaces the old member (dev tokens). */
function browserId() {
  let id = localStorage.getItem('streamwire.user');
  if (!id) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('');
    localStorage.setItem('streamwire.user', id);
  }
  return id;
}

async function mint(room, name) {
  const q = new URLSearchParams({ room, name, user: browserId() });
  const r = await fetch(`/dev/token?${q}`);
  if (!r.ok) throw new StreamwireError('token_mint', `Minting a token failed: ${(await r.text()).trim()}`);
  return (await r.json()).token;
}

// ---- echo test, network probe (app-test.js) -------------------------------------------------

/** The token of the URL or the token field; minted with --dev. */
async function roomToken(room, name) {
  const token = params.get('token') || $('token').value.trim();
  return !token && dev ? mint(room, name) : token;
}

const mediaTests = mountMediaTests(app, {
  client: async () => {
    const room = roomText();
    const token = await roomToken(room, $('name').value.trim() || 'guest');
    return new StreamwireClient({ url: wsUrl, room, token, leaveOnPageHide: false });
  },
  // The echo test sends the preview when it runs (it stays the preview), else a capture of
  // what the check boxes say.
  media: () => {
    if (preview) return { stream: preview };
    const want = constraints(params, devices);
    const video = $('cam-on').checked && want.video;
    const audio = $('mic-on').checked && want.audio;
    return video || audio ? { video, audio } : null;
  },
});

// ---- joining -------------------------------------------------------------------------------

const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;

async function join(ev) {
  ev?.preventDefault();
  if (joining) return;
  joining = true;
  $('joinbtn').disabled = true;
  $('notice').textContent = '';
  const room = roomText();
  const name = $('name').value.trim() || 'guest';
  localStorage.setItem('streamwire.name', $('name').value.trim());
  status('Joining…');
  await mediaTests.stop();
  let token;
  try {
    token = await roomToken(room, name);
  } catch (e) {
    return refused(e);
  }
  const c = new StreamwireClient({ url: wsUrl, room, token, metadata: { ua: 'web' }, maxAttempts: Number(params.get('attempts') ?? 10) });
  app.client = c;
  stage = new Stage(c, app);
  wire(c);
  try {
    await c.join({ publish: publishChoice() });
  } catch (e) {
    stage.clear();
    return refused(e);
  }
  enterCall(c, token, name);
  const e = c.publishError;
  if (e?.code === 'forbidden') {
    chat.line('Your room token does not allow publishing: you are in the call without camera and microphone.', 'system');
  } else if (e) {
    const text = `Camera/microphone denied or unavailable: ${e.message}. You are in the call without publishing.`;
    $('notice').textContent = text;
    app.notice = text;
    chat.line(text, 'system');
  }
  stage.setLocal(c.localStream, name);
  syncControls();
}

/**
 * What to publish with the join: the preview (handed to the client, which owns and stops it
 * from then on) or what to capture once the server accepted the join; null for nothing.
 */
function publishChoice() {
  const wantCam = $('cam-on').checked;
  const wantMic = $('mic-on').checked;
  let stream = preview;
  if (stream) {
    clearInterval(previewTimer);
    previewMeter?.close();
    previewMeter = null;
    preview = null;
    app.preview = null;
    $('preview').srcObject = null;
    $('preview-off').hidden = false;
    $('preview-stop').hidden = true;
    $('pj-meter').hidden = true;
    for (const t of stream.getTracks()) {
      if ((t.kind === 'video' && !wantCam) || (t.kind === 'audio' && !wantMic)) {
        t.stop();
        stream.removeTrack(t);
      }
    }
    if (stream.getTracks().length) return stream;
  }
  if (!wantCam && !wantMic) return null;
  const want = constraints(params, devices);
  return { video: wantCam && want.video, audio: wantMic && want.audio };
}

function refused(e) {
  joining = false;
  $('joinbtn').disabled = false;
  app.error = { code: e.code, message: e.message };
  if (e.code === 'server_unreachable') status(`Server gone: ${e.message}`, 'error');
  else status(`Cannot join: ${e.message}`, 'error');
}

function enterCall(c, token, name) {
  showView('call');
  status(`Joined room ${c.room} as ${c.name}.`);
  chat.start(c, token);
  callToken = token;
  if (matchMedia('(max-width: 720px)').matches) setChat(false);
  for (const p of c.peers.values()) stage.addPeer(p);
  timers = [setInterval(() => stage.tick(), 200), setInterval(() => stage.statsTick(), 1000)];
  syncControls();
  $('leave').focus();
}

function wire(c) {
  c.addEventListener('state', (e) => {
    if (app.client !== c) return;
    const s = e.detail.state;
    if (s === 'reconnecting') status('Connection lost: reconnecting…', 'warn');
    else if (s === 'resumed') status(`Reconnected to room ${c.room} (session resumed).`);
    else if (s === 'joined' && app.view === 'call') status(`Joined room ${c.room} as ${c.name}.`);
    else if (s === 'failed' && app.view === 'call') {
      const err = e.detail.error ?? {};
      exitCall(err.code === 'server_gone' ? `Server gone: ${err.message}` : err.message ?? 'Disconnected.', 'error');
    }
  });
  c.addEventListener('error', (e) => {
    if (app.client !== c) return;
    app.errors.push(e.detail);
    // Fatal errors end the call (the `state` handler); the others are told in the chat.
    if (c.state !== 'failed' && app.view === 'call') chat.line(`⚠ ${e.detail.message}`, 'system failed');
  });
  c.addEventListener('peerjoined', (e) => {
    const p = e.detail.peer;
    app.peers[p.peer_id] = { ...(app.peers[p.peer_id] ?? {}), name: p.name, tracks: 0 };
    stage.addPeer(p);
    // Members already in the room at join time are not news.
    if (c.state === 'joined' || c.state === 'resumed') chat.joined(p);
  });
  c.addEventListener('peerupdated', (e) => stage.updatePeer(e.detail.peer));
  c.addEventListener('peerleft', (e) => {
    stage.removePeer(e.detail.peerId);
    delete app.peers[e.detail.peerId];
    if (app.view === 'call') chat.left(e.detail.peer, e.detail.reason);
  });
  c.addEventListener('track', (e) => {
    stage.onTrack(e.detail);
    const link = c.pcs.get(e.detail.peerId);
    app.peers[e.detail.peerId] = { ...(app.peers[e.detail.peerId] ?? {}), tracks: link ? link.stream.getTracks().length + link.screenStream.getTracks().length : 0 };
  });
  c.addEventListener('trackended', (e) => stage.onTrackEnded(e.detail));
  c.addEventListener('peerstate', (e) => stage.onPeerState(e.detail.peerId, e.detail.state));
  c.addEventListener('recovery', (e) => {
    const d = e.detail;
    app.recovery.push(d);
    const who = c.peers.get(d.peerId)?.name ?? d.peerId;
    if ((d.action === 'ice_restart' && d.attempt === 1) || (d.action === 'rebuild' && d.by === 'remote')) chat.line(`Reconnecting media with ${who}…`, 'system');
    else if (d.action === 'recovered') chat.line(`Media with ${who} restored.`, 'system');
  });
  c.addEventListener('message', (e) => chat.message(e.detail));
}

function exitCall(text, kind = '') {
  const c = app.client;
  if (c && c.state !== 'closed' && c.state !== 'failed') c.leave();
  for (const t of timers) clearInterval(t);
  timers = [];
  stage?.clear();
  app.whiteboard?.destroy();
  app.whiteboard = null;
  $('whiteboard').hidden = true;
  $('wb-btn').setAttribute('aria-expanded', 'false');
  chat.stop();
  $('devices').hidden = true;
  showView('prejoin');
  joining = false;
  $('joinbtn').disabled = false;
  status(text, kind);
  $('joinbtn').focus();
}

// ---- call controls -------------------------------------------------------------------------

function syncControls() {
  const c = app.client;
  const audio = !!c?.localStream?.getAudioTracks().length;
  const video = !!c?.localStream?.getVideoTracks().length;
  const mutedA = !!c?.isMuted('audio');
  const mutedV = !!c?.isMuted('video');
  $('mic-btn').disabled = !audio;
  $('mic-btn').setAttribute('aria-pressed', String(audio && mutedA));
  $('mic-btn').querySelector('.txt').textContent = mutedA ? 'Unmute' : 'Mute';
  $('cam-btn').disabled = !video;
  $('cam-btn').setAttribute('aria-pressed', String(video && mutedV));
  $('cam-btn').querySelector('.txt').textContent = mutedV ? 'Camera on' : 'Camera off';
  const canPublish = !!c?.grants.has('publish');
  $('screen-btn').disabled = !canPublish || !navigator.mediaDevices?.getDisplayMedia;
  $('screen-btn').setAttribute('aria-pressed', String(!!c?.screenStream));
  $('screen-btn').querySelector('.txt').textContent = c?.screenStream ? 'Stop sharing' : 'Share screen';
  $('devices-btn').disabled = !c?.localStream;
  stage?.setLocalMuted({ audio: mutedA, video: mutedV });
}

$('join-form').addEventListener('submit', join);
$('leave').addEventListener('click', () => exitCall('You left the room.'));
$('mic-btn').addEventListener('click', async () => {
  const c = app.client;
  await c.setMuted('audio', !c.isMuted('audio')).catch((e) => chat.line(`⚠ ${e.message}`, 'system failed'));
  syncControls();
});
$('cam-btn').addEventListener('click', async () => {
  const c = app.client;
  $('cam-btn').disabled = true;
  await c.setMuted('video', !c.isMuted('video')).catch((e) => chat.line(`⚠ ${e.message}`, 'system failed'));
  syncControls();
});
$('screen-btn').addEventListener('click', async () => {
  const c = app.client;
  try {
    if (c.screenStream) await c.stopScreenShare();
    else {
      const s = await c.shareScreen();
      stage.setLocalScreen(s);
      s.getVideoTracks()[0].addEventListener('ended', () => { stage?.setLocalScreen(null); syncControls(); });
    }
  } catch (e) {
    chat.line(`⚠ ${e.message}`, 'system failed');
  }
  if (!c.screenStream) stage.setLocalScreen(null);
  syncControls();
});
$('devices-btn').addEventListener('click', async () => {
  const open = $('devices').hidden;
  $('devices').hidden = !open;
  $('devices-btn').setAttribute('aria-expanded', String(open));
  if (!open) return;
  const c = app.client;
  const settings = (k) => c?.localStream?.getTracks().find((t) => t.kind === k)?.getSettings().deviceId;
  await listDevices($('call-cam'), $('call-mic'), { cam: settings('video'), mic: settings('audio') }).catch(() => {});
  $('call-cam').focus();
});
for (const [id, kind] of [['call-cam', 'video'], ['call-mic', 'audio']]) {
  $(id).addEventListener('change', async () => {
    try {
      await app.client.switchDevice(kind, $(id).value);
      devices[kind === 'video' ? 'cam' : 'mic'] = $(id).value;
    } catch (e) {
      chat.line(`⚠ ${e.message}`, 'system failed');
    }
  });
}
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !$('devices').hidden) {
    $('devices').hidden = true;
    $('devices-btn').setAttribute('aria-expanded', 'false');
    $('devices-btn').focus();
  }
});

function setChat(open) {
  $('call').classList.toggle('chat-closed', !open);
  $('chat-btn').setAttribute('aria-expanded', String(open));
  if (open) chat.seen();
}
// Going narrow (a phone turned, a window resized) closes the chat, which would cover the stage.
matchMedia('(max-width: 720px)').addEventListener('change', (e) => { if (e.matches) setChat(false); });
$('wb-btn').addEventListener('click', () => {
  // The room's whiteboard (web/whiteboard/): mounted, and synced, when first opened.
  if (!app.whiteboard && app.client) app.whiteboard = mountWhiteboard($('whiteboard'), app.client, { token: callToken });
  const open = $('whiteboard').hidden;
  $('whiteboard').hidden = !open;
  $('wb-btn').setAttribute('aria-expanded', String(open));
});
$('chat-btn').addEventListener('click', () => {
  const open = $('call').classList.contains('chat-closed');
  setChat(open);
  if (open) $('text').focus();
});

// ---- start ---------------------------------------------------------------------------------

showView('prejoin');
status('Not connected.');
fetch('/dev')
  .then((r) => r.json())
  .then((d) => { dev = !!d.dev; })
  .catch(() => {})
  .finally(() => {
    $('token-field').hidden = dev || params.has('token');
    app.ready = true;
    // A token in the URL: join at once (camera and microphone as `publish` says, captured after the join).
    if (params.get('token')) join();
  });
