// Awareness of a board (docs/whiteboard.md, "Laser pointer and presence"): each page's laser
// pointer and current page, as y-protocols awareness messages in `whiteboard` frames. It is
// ephemeral: never part of the Yjs document, so never stored by the server; this page sends at
// most AWARENESS_RATE updates a second (the server drops what exceeds its own limit).
import { awareness as aw, encoding } from '../vendor/yjs.js';

/** Awareness updates this page sends per second at most (later changes are coalesced). */
export const AWARENESS_RATE = 20;

/** A remote laser point fades out over this many milliseconds after its last move. */
export const LASER_FADE_MS = 1500;

/** Origin of awareness updates that came from the server. */
const REMOTE = 'streamwire-remote';

/** The awareness of one board (`board`: a Board). */
export class Presence extends EventTarget {
  constructor(board) {
    super();
    this.board = board;
    this.awareness = new aw.Awareness(board.doc);
    /** Awareness updates sent so far (tests check the rate limit with it). */
    this.sent = 0;
    /** Remote clients: clientID → {user, page, laser, presenter, at} (`at`: when received). */
    this.seen = new Map();
    this._last = -Infinity;
    this._timer = null;
    this._closing = false;
    this.awareness.on('update', (_change, origin) => {
      if (origin === 'local') this._schedule();
    });
    this.awareness.on('change', ({ removed }, origin) => {
      if (origin === 'local') return;
      for (const c of removed) this.seen.delete(c);
      this.dispatchEvent(new CustomEvent('change'));
    });
    this.awareness.setLocalState({ user: board.user, page: null, laser: null, presenter: board.isPresenter });
  }

  /** Apply an awareness update received from the server. */
  receive(update) {
    aw.applyAwarenessUpdate(this.awareness, update, REMOTE);
    const now = performance.now();
    let newcomer = false;
    for (const [c, st] of this.awareness.getStates()) {
      if (c === this.awareness.clientID) continue;
      const old = this.seen.get(c);
      newcomer ||= !old;
      const moved = !old || JSON.stringify(old.laser) !== JSON.stringify(st.laser) || old.page !== st.page;
      this.seen.set(c, { ...st, at: moved ? now : old.at });
    }
    // A member new to this page learns this page's state (its page, for following) at once,
    // not at the next 15 s renewal; it does the same, once, for this page.
    if (newcomer) this._schedule();
    this.dispatchEvent(new CustomEvent('change'));
  }

  /** Show this page's laser at board point (x, y) of `page`; `null` x hides it. */
  setLaser(page, x, y) {
    const laser = x === null ? null : [Math.round(x), Math.round(y)];
    this._set({ page, laser });
  }

  /** Tell the others which page this page shows (the presenter's is followed). */
  setPage(page) {
    this._set({ page });
  }

  _set(fields) {
    const st = this.awareness.getLocalState() ?? {};
    this.awareness.setLocalState({ ...st, ...fields, user: this.board.user, presenter: this.board.isPresenter });
  }

  /**
   * The other members' laser points on `page` still visible now: [{user, x, y, alpha}],
   * alpha falling from 1 to 0 over LASER_FADE_MS after the last move.
   */
  lasers(page, now = performance.now()) {
    const out = [];
    for (const st of this.seen.values()) {
      if (!st.laser || st.page !== page) continue;
      const age = now - st.at;
      if (age < LASER_FADE_MS) out.push({ user: st.user, x: st.laser[0], y: st.laser[1], alpha: 1 - age / LASER_FADE_MS });
    }
    return out;
  }

  /** The page the presenter (a member with `admin`) shows, if one is known. */
  presenterPage() {
    for (const st of this.seen.values()) if (st.presenter && st.page) return st.page;
    return null;
  }

  _schedule() {
    if (this._closing) {
      this._send();
      return;
    }
    if (this._timer !== null) return;
    const wait = Math.max(0, this._last + 1000 / AWARENESS_RATE - performance.now());
    this._timer = setTimeout(() => {
      this._timer = null;
      this._send();
    }, wait);
  }

  _send() {
    if (this.board.client.state !== 'joined') return; // ephemeral: nothing kept for later
    this._last = performance.now();
    this.sent++;
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 1); // y-protocols: awareness message
    encoding.writeVarUint8Array(e, aw.encodeAwarenessUpdate(this.awareness, [this.awareness.clientID]));
    this.board.client.sendWhiteboard(this.board.name, encoding.toUint8Array(e));
  }

  /** Say goodbye (the others drop this page's laser at once) and stop. */
  destroy() {
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    this._closing = true;
    this.awareness.destroy();
  }
}
