// Call page: the stage. A tile per member who publishes (video, or an avatar while the camera
// is off or the member sends audio only), a screen-share tile per share, an avatar chip for
// members who publish nothing; audio level, speaking and active-speaker marks, connection
// quality (0-5) and figures per tile. Tiles follow presence and connection state.

import { levelMeter } from './app-media.js';
import { ActiveSpeaker, dbovOf } from './streamwire-speaker.js';

/** Audio level (0..1) above which a member counts as speaking. */
export const SPEAKING_LEVEL = 0.02;
/** A member stays marked speaking this long after the level fell below SPEAKING_LEVEL. */
const SPEAKING_HOLD_MS = 700;

const $ = (id) => document.getElementById(id);

function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  return ((parts[0]?.[0] ?? '?') + (parts.length > 1 ? parts.at(-1)[0] : '')).toUpperCase();
}

function hue(s) {
  let h = 0;
  for (const c of String(s)) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

function avatar(name, user) {
  const a = document.createElement('span');
  a.className = 'avatar';
  a.style.setProperty('--hue', String(hue(user ?? name)));
  a.textContent = initials(name);
  a.setAttribute('aria-hidden', 'true');
  return a;
}

/** The stage of one call. `state` is the page's inspectable state (window.streamwireApp). */
export class Stage {
  /** @param {import('./streamwire.js').StreamwireClient} client @param {any} state */
  constructor(client, state) {
    this.client = client;
    this.state = state;
    /** @type {Map<string, {name: string, user: string, camera?: HTMLElement, screen?: HTMLElement, chip?: HTMLElement, heard: number, connection: string}>} */
    this.members = new Map();
    this.active = null;
    /** The same active-speaker rules as the client's, over every member, this page included. */
    this.speaker = new ActiveSpeaker();
    this.localMeter = null;
    this.grid = $('grid');
    this.people = $('people');
    // The size each remote video is shown at goes to the client (in an SFU room the server
    // then forwards the simulcast layer that covers it; a hidden tile is 0x0).
    this.sizes = globalThis.ResizeObserver ? new ResizeObserver((entries) => {
      for (const e of entries) {
        // A removed tile reports 0x0 once: stop watching it (its track is gone).
        if (!e.target.isConnected) this.sizes.unobserve(e.target);
        else this._reportSize(e.target, e.contentRect.width, e.contentRect.height);
      }
    }) : null;
  }

  _reportSize(v, width, height) {
    const track = v.srcObject?.getVideoTracks?.()[0];
    const dpr = globalThis.devicePixelRatio || 1;
    if (track) this.client.setRenderedSize(track, width * dpr, height * dpr);
  }

  _member(id, name, user) {
    let m = this.members.get(id);
    if (!m) {
      m = { name, user, heard: 0, connection: 'new' };
      this.members.set(id, m);
    }
    if (name) m.name = name;
    return m;
  }

  _tile(id, kind) {
    const m = this.members.get(id);
    if (m[kind]) return m[kind];
    const t = document.createElement('div');
    t.className = 'tile no-video';
    t.dataset.peer = id;
    t.dataset.kind = kind;
    const label = kind === 'screen' ? `${m.name} (screen)` : m.name;
    t.setAttribute('role', 'group');
    t.setAttribute('aria-label', label);
    // Focusable, so keyboard users can see the figures shown on hover.
    t.tabIndex = 0;
    const v = document.createElement('video');
    v.autoplay = true;
    v.playsInline = true;
    if (id === 'local') v.muted = true;
    t.append(v, avatar(m.name, m.user));
    const row = document.createElement('div');
    row.className = 'label';
    const level = document.createElement('span');
    level.className = 'level';
    level.setAttribute('aria-hidden', 'true');
    level.append(document.createElement('i'));
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = label;
    const mic = document.createElement('span');
    mic.className = 'mic';
    row.append(level, name, mic);
    t.append(row);
    if (id !== 'local') {
      const q = document.createElement('span');
      q.className = 'quality';
      q.dataset.q = '';
      q.setAttribute('role', 'img');
      q.setAttribute('aria-label', 'Connection quality unknown');
      for (let i = 0; i < 5; i++) q.append(document.createElement('i'));
      const stats = document.createElement('span');
      stats.className = 'stats';
      const st = document.createElement('span');
      st.className = 'state';
      t.append(q, stats, st);
    }
    m[kind] = t;
    // The local camera first, screen shares next to their owner.
    if (id === 'local' && kind === 'camera') this.grid.prepend(t);
    else this.grid.append(t);
    this._layout();
    return t;
  }

  _chip(id) {
    const m = this.members.get(id);
    if (m.chip) return m.chip;
    const li = document.createElement('li');
    li.dataset.peer = id;
    const level = document.createElement('span');
    level.className = 'level';
    level.setAttribute('aria-hidden', 'true');
    level.append(document.createElement('i'));
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = m.name;
    const mic = document.createElement('span');
    mic.className = 'mic';
    li.append(avatar(m.name, m.user), name, level, mic);
    m.chip = li;
    this.people.append(li);
    return li;
  }

  /** Show `id` as a tile when it publishes (announced or received), else as a chip. */
  _place(id) {
    const m = this.members.get(id);
    if (!m) return;
    const peer = this.client.peers.get(id);
    const link = this.client.pcs.get(id);
    const announced = (peer?.tracks ?? []).some((t) => t.kind !== 'data' && t.label !== 'screen');
    const received = link ? link.stream.getTracks().length > 0 : false;
    if (announced || received) {
      this._tile(id, 'camera');
      m.chip?.remove();
      m.chip = undefined;
    } else {
      m.camera?.remove();
      m.camera = undefined;
      this._chip(id);
    }
    const screen = link ? link.screenStream.getTracks().length > 0 : false;
    if (!screen && m.screen) {
      m.screen.remove();
      m.screen = undefined;
    }
    this._layout();
  }

  _layout() {
    this.grid.classList.toggle('many', this.grid.children.length >= 3);
  }

  /** A member is in the room. @param {import('./streamwire.js').PeerInfo} peer */
  addPeer(peer) {
    this._member(peer.peer_id, peer.name, peer.user);
    this._place(peer.peer_id);
    this._muteMarks(peer.peer_id, peer.metadata?.muted);
  }

  /** Presence or published tracks of a member changed. */
  updatePeer(peer) {
    if (!this.members.has(peer.peer_id)) return this.addPeer(peer);
    this._place(peer.peer_id);
    this._muteMarks(peer.peer_id, peer.metadata?.muted);
  }

  /** A member left (or the session was lost): every element of it goes. */
  removePeer(id) {
    const m = this.members.get(id);
    if (!m) return;
    for (const el of [m.camera, m.screen, m.chip]) el?.remove();
    this.members.delete(id);
    if (this.active === id) this.active = null;
    this._layout();
  }

  /** A remote track arrived. */
  onTrack({ peerId, stream, screen }) {
    const m = this._member(peerId, this.client.peers.get(peerId)?.name ?? peerId);
    if (screen) {
      const t = this._tile(peerId, 'screen');
      this._attach(t, stream);
    } else {
      this._place(peerId);
      if (m.camera) this._attach(m.camera, stream);
    }
  }

  /** A remote track ended (unpublished, or its connection was rebuilt). */
  onTrackEnded({ peerId }) {
    this._place(peerId);
  }

  _attach(tile, stream) {
    const v = tile.querySelector('video');
    if (v.srcObject !== stream) v.srcObject = stream;
    v.play().catch(() => {});
    this.sizes?.observe(v);
    this._reportSize(v, v.clientWidth, v.clientHeight);
  }

  /** Connection state of the peer connection to `peerId`. */
  onPeerState(peerId, state) {
    const m = this.members.get(peerId);
    if (!m) return;
    m.connection = state;
    const text = state === 'disconnected' ? 'Reconnecting…' : state === 'failed' ? 'Connection lost' : '';
    for (const t of [m.camera, m.screen]) {
      if (!t) continue;
      t.querySelector('.state').textContent = text;
      if (text) {
        t.querySelector('.stats').textContent = '';
        this._quality(t, null);
      }
    }
  }

  /** The local camera/microphone (null: not publishing). @param {MediaStream|null} stream */
  setLocal(stream, name) {
    this.localMeter?.close();
    this.localMeter = null;
    const m = this._member('local', `${name} (you)`, 'local');
    if (!stream) {
      m.camera?.remove();
      m.camera = undefined;
      this._chip('local');
      return;
    }
    m.chip?.remove();
    m.chip = undefined;
    const t = this._tile('local', 'camera');
    this._attach(t, stream);
    const audio = stream.getAudioTracks()[0];
    if (audio) this.localMeter = levelMeter(audio);
  }

  /** The local screen share (null: none). @param {MediaStream|null} stream */
  setLocalScreen(stream) {
    const m = this._member('local', undefined, 'local');
    if (!stream) {
      m.screen?.remove();
      m.screen = undefined;
      this._layout();
      return;
    }
    this._attach(this._tile('local', 'screen'), stream);
  }

  _muteMarks(id, muted) {
    const m = this.members.get(id);
    if (!m) return;
    for (const el of [m.camera, m.chip]) {
      el?.querySelector('.mic')?.classList.toggle('mic-off', !!muted?.audio);
    }
    if (m.camera) m.camera.dataset.cameraOff = muted?.video ? '1' : '';
  }

  /** Local mute marks (`muted` as StreamwireClient keeps it). */
  setLocalMuted(muted) {
    this._muteMarks('local', muted);
  }

  /** Every 200 ms: audio levels, speaking and active speaker, video or avatar. */
  tick() {
    const now = performance.now();
    const levels = new Map();
    for (const [id, m] of this.members) {
      const level = id === 'local' ? (this.localMeter?.read() ?? 0) : this.client.audioLevel(id);
      if (level > SPEAKING_LEVEL) m.heard = now;
      levels.set(id, dbovOf(level));
      const speaking = now - m.heard < SPEAKING_HOLD_MS;
      for (const el of [m.camera, m.chip]) {
        if (!el) continue;
        el.classList.toggle('speaking', speaking);
        const bar = el.querySelector('.level i');
        if (bar) bar.style.height = `${Math.round(Math.min(1, level * 3) * 100)}%`;
      }
      const st = (this.state.peers[id] ??= {});
      Object.assign(st, { name: m.name, level, speaking });
      for (const t of [m.camera, m.screen]) {
        if (!t) continue;
        const v = t.querySelector('video');
        const track = v.srcObject?.getVideoTracks?.()[0];
        const shows = !!track && track.readyState === 'live' && !track.muted && track.enabled !== false && t.dataset.cameraOff !== '1';
        t.classList.toggle('no-video', !shows);
      }
    }
    const changed = this.speaker.observe(levels, now);
    if (changed !== undefined) this.active = changed;
    for (const [id, m] of this.members) m.camera?.classList.toggle('active', id === this.active);
    this.state.activeSpeaker = this.active;
  }

  /** Every second: receive figures and the quality score of every remote tile. */
  async statsTick() {
    for (const [id, link] of this.client.pcs) {
      const m = this.members.get(id);
      const s = await link.stats().catch(() => null);
      if (!s || !m) continue;
      const st = (this.state.peers[id] ??= {});
      st.stats = s;
      st.connection = link.pc.connectionState;
      if (link.pc.connectionState !== 'connected') continue;
      for (const t of [m.camera, m.screen]) {
        if (!t) continue;
        t.querySelector('.stats').textContent =
          `${s.bitrateKbps} kbit/s  ${s.fps} fps\nRTT ${s.rttMs ?? '-'} ms  loss ${s.lossPct} %\njitter ${s.jitterMs} ms  quality ${s.quality}/5`;
        this._quality(t, s.quality);
      }
    }
  }

  _quality(tile, q) {
    const el = tile.querySelector('.quality');
    if (!el) return;
    el.dataset.q = q == null ? '' : String(q);
    el.setAttribute('aria-label', q == null ? 'Connection quality unknown' : `Connection quality ${q} of 5`);
    el.title = el.getAttribute('aria-label');
  }

  /** Remove everything (left the call). */
  clear() {
    this.localMeter?.close();
    this.localMeter = null;
    this.members.clear();
    this.grid.replaceChildren();
    this.people.replaceChildren();
    this.active = null;
    this.speaker = new ActiveSpeaker();
  }
}
