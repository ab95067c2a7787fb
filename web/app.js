// Demo page for the Streamwire browser client. URL parameters prefill the form:
// ?room=R&token=T&name=N&publish=0|1&autojoin=1&attempts=N (reconnect attempts, default 10)
import { StreamwireClient, StreamwireError } from './streamwire.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
for (const k of ['room', 'token', 'name']) if (params.has(k)) $(k).value = params.get(k);
if (params.get('publish') === '0') $('publish').checked = false;

/** State the tests (and the console) can inspect. */
const app = { client: null, status: '', messages: [], deliveries: [], peers: {} };
window.streamwireApp = app;

function status(text, kind = '') {
  app.status = text;
  $('status').textContent = text;
  $('status').className = kind;
}

const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;

// The mint button exists only when the server runs with --dev.
fetch('/dev').then((r) => r.json()).then((d) => { $('mint').hidden = !d.dev; }).catch(() => {});
$('mint').onclick = async () => {
  const q = new URLSearchParams({ room: $('room').value, name: $('name').value || 'guest' });
  const r = await fetch(`/dev/token?${q}`);
  if (!r.ok) return status(`Minting a token failed: ${await r.text()}`, 'error');
  $('token').value = (await r.json()).token;
  status('Token minted (valid for one hour).');
};

function tile(peerId, name) {
  let t = document.querySelector(`.tile[data-peer="${peerId}"]`);
  if (!t) {
    t = document.createElement('div');
    t.className = 'tile';
    t.dataset.peer = peerId;
    t.innerHTML = '<video autoplay playsinline></video><span class="name"></span><span class="stats"></span>';
    $('tiles').append(t);
  }
  if (name) t.querySelector('.name').textContent = name;
  return t;
}

function logLine(text, cls = '') {
  const li = document.createElement('li');
  li.textContent = text;
  li.className = cls;
  $('log').append(li);
  li.scrollIntoView();
  return li;
}

let statsTimer = null;
async function refreshStats() {
  const c = app.client;
  if (!c) return;
  for (const id of c.pcs.keys()) {
    const s = await c.getStats(id);
    if (!s) continue;
    app.peers[id] = { ...(app.peers[id] ?? {}), stats: s };
    const t = document.querySelector(`.tile[data-peer="${id}"] .stats`);
    if (t) {
      t.textContent = `${s.bitrateKbps} kbit/s  ${s.fps} fps\nRTT ${s.rttMs ?? '-'} ms  loss ${s.lossPct} %\njitter ${s.jitterMs} ms  quality ${s.quality}/5`;
    }
  }
}

async function join(ev) {
  ev?.preventDefault();
  const c = new StreamwireClient({
    url: wsUrl, room: $('room').value, token: $('token').value.trim(), metadata: { ua: 'web' },
    maxAttempts: Number(params.get('attempts') ?? 10),
  });
  app.client = c;
  c.addEventListener('state', (e) => {
    const s = e.detail.state;
    if (s === 'reconnecting') status('Connection lost: reconnecting…', 'warn');
    else if (s === 'resumed') status(`Reconnected to room ${c.room} (session resumed).`);
    else if (s === 'joined') status(`Joined room ${c.room} as ${c.name}.`);
    else if (s === 'closed') status('Left the room.');
  });
  c.addEventListener('error', (e) => {
    if (e.detail.code === 'server_gone') status(`Server gone: ${e.detail.message}`, 'error');
    else status(`Error (${e.detail.code}): ${e.detail.message}`, 'error');
  });
  c.addEventListener('peerjoined', (e) => {
    const p = e.detail.peer;
    app.peers[p.peer_id] = { name: p.name, tracks: 0 };
    tile(p.peer_id, p.name);
    logLine(`${p.name} joined`);
  });
  c.addEventListener('peerleft', (e) => {
    document.querySelector(`.tile[data-peer="${e.detail.peerId}"]`)?.remove();
    delete app.peers[e.detail.peerId];
  });
  c.addEventListener('track', (e) => {
    const t = tile(e.detail.peerId);
    const v = t.querySelector('video');
    if (v.srcObject !== e.detail.stream) v.srcObject = e.detail.stream;
    v.play().catch(() => {});
    app.peers[e.detail.peerId] = { ...(app.peers[e.detail.peerId] ?? {}), tracks: e.detail.stream.getTracks().length };
  });
  c.addEventListener('message', (e) => {
    const d = e.detail;
    app.messages.push({ from: d.from, seq: d.seq, text: d.text });
    const who = c.peers.get(d.from)?.name ?? d.from;
    logLine(`${who}: ${d.text ?? `[${d.binary?.length} bytes]`}`);
  });
  $('joinbtn').disabled = true;
  $('notice').textContent = '';
  try {
    if ($('publish').checked) {
      try {
        const s = await c.publish();
        const me = tile('local', 'me');
        me.querySelector('video').muted = true;
        me.querySelector('video').srcObject = s;
      } catch (e) {
        $('notice').textContent = `Camera/microphone denied or unavailable: ${e.message}. Joining without publishing.`;
      }
    }
    await c.join();
    $('leave').disabled = false;
    $('muteA').disabled = $('muteV').disabled = !c.localStream;
    $('text').disabled = $('send').disabled = false;
    statsTimer = setInterval(refreshStats, 1000);
    $('feedback').hidden = false;
    $('fbstatus').textContent = '';
    // The report needs a token with the `admin` grant for this room (the server says so
    // otherwise); a link cannot send an Authorization header, so the token goes in the URL.
    const rq = new URLSearchParams({ room: c.room, token: $('token').value.trim() });
    $('report').href = `/report?${rq}`;
    $('report').hidden = false;
  } catch (e) {
    $('joinbtn').disabled = false;
    if (e instanceof StreamwireError && e.code === 'server_unreachable') status(`Server gone: ${e.message}`, 'error');
    else status(`Cannot join: ${e.message}`, 'error');
    app.error = { code: e.code, message: e.message };
  }
}

$('join').addEventListener('submit', join);
$('leave').onclick = () => {
  app.client?.leave();
  clearInterval(statsTimer);
  $('tiles').replaceChildren();
  $('joinbtn').disabled = false;
  $('leave').disabled = true;
};
let micMuted = false;
let camOff = false;
$('muteA').onclick = () => {
  micMuted = app.client.setMuted('audio', !micMuted);
  $('muteA').textContent = micMuted ? 'Unmute mic' : 'Mute mic';
};
$('muteV').onclick = () => {
  camOff = app.client.setMuted('video', !camOff);
  $('muteV').textContent = camOff ? 'Start camera' : 'Stop camera';
};
$('say').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const text = $('text').value;
  if (!text) return;
  $('text').value = '';
  const li = logLine(`me: ${text}`);
  const d = await app.client.sendMessage(text);
  app.deliveries.push(d);
  li.title = d.status === 'delivered' ? `delivered to ${d.recipients}` : `failed: ${d.reason}`;
  if (d.status !== 'delivered') li.className = 'failed';
});

if (params.get('autojoin') === '1') join();

$('feedback').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const picked = document.querySelector('#rating input:checked');
  if (!picked) {
    $('fbstatus').textContent = 'Pick a rating from 1 to 5 first.';
    return;
  }
  $('fbsend').disabled = true;
  try {
    await app.client.sendFeedback(Number(picked.value), $('comment').value);
    app.feedback = { rating: Number(picked.value), comment: $('comment').value.trim() };
    $('fbstatus').textContent = 'Thank you, feedback sent.';
    $('comment').value = '';
  } catch (e) {
    $('fbstatus').textContent = `Feedback not sent: ${e.message}`;
    app.feedbackError = { code: e.code, message: e.message, field: e.field };
  } finally {
    $('fbsend').disabled = false;
  }
});
