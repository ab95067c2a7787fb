// The whiteboard document of a room in the browser: a Yjs document kept in sync with the
// server over the Streamwire connection (docs/whiteboard.md; `whiteboard` frames carrying
// y-protocols messages). The layout is the one of gststreamwire::whiteboard::model: an
// item's fixed attributes are one entry `a` of its map (a plain object), what changes later
// (`pts`, `text`, `dx`, `dy`) entries of their own; items of the shape before (every
// attribute an entry of the map) read the same, an entry of the map before the key in `a`.
import { Y, sync, encoding, decoding } from '../vendor/yjs.js';
import { Presence } from './presence.js';

/** Page size in board units. */
export const PAGE_W = 1600;
export const PAGE_H = 900;

/** Origin of transactions applying what came from the server (not sent back). */
const REMOTE = 'streamwire-remote';

/**
 * Origin of this page's own changes: the only origin the undo manager tracks, so undo and
 * redo touch what this page drew, never another member's strokes.
 */
const LOCAL = 'streamwire-local';

/**
 * A sync answer larger than one chunk comes in chunks (docs/whiteboard.md, "Size of a
 * board"): y-protocols custom messages `MSG_SYNC_CHUNK` (transfer, total, offset, data), each
 * confirmed with `MSG_SYNC_CHUNK_ACK` (transfer, received); as `streamwire::whiteboard::chunk`.
 */
const MSG_SYNC_CHUNK = 8;
const MSG_SYNC_CHUNK_ACK = 9;

/** Key of an item's fixed attributes (one plain object). */
const ATTRS = 'a';

/** Attribute `key` of item map `m`: its own entry, else the one in `a`. */
function field(m, key) {
  return m.has(key) ? m.get(key) : m.get(ATTRS)?.[key];
}

/** One board of the room, synced through `client` (a StreamwireClient, joined). */
export class Board extends EventTarget {
  /** @param {import('../streamwire.js').StreamwireClient} client @param {string} [name] */
  constructor(client, name = 'main') {
    super();
    this.client = client;
    this.name = name;
    this.doc = new Y.Doc();
    this.pages = this.doc.getMap('pages');
    this.items = this.doc.getMap('items');
    this.synced = false;
    this.errors = [];
    /** A sync answer arriving in chunks: {transfer, total, parts, received}. */
    this._partial = null;
    /**
     * Undo/redo of this page's own changes (items and pages), one step per action: a stroke
     * with all its points, a shape, a text box, an erase, a cleared page, a new page.
     */
    this.undoManager = new Y.UndoManager([this.items, this.pages], {
      trackedOrigins: new Set([LOCAL]),
      captureTimeout: Infinity,
    });
    this.undoManager.on('stack-item-added', () => this.dispatchEvent(new CustomEvent('history')));
    this.undoManager.on('stack-item-popped', () => this.dispatchEvent(new CustomEvent('history')));
    /** Awareness (laser pointer, current page): ephemeral, rate-limited, never in the document. */
    this.presence = new Presence(this);
    this._onUpdate = (update, origin) => {
      if (origin !== REMOTE) this._send((e) => sync.writeUpdate(e, update));
      this.dispatchEvent(new CustomEvent('change', { detail: { remote: origin === REMOTE } }));
    };
    this.doc.on('update', this._onUpdate);
    this._onFrame = (e) => {
      if (e.detail.board === this.name) this._receive(e.detail.data);
    };
    this._onState = (e) => {
      // A fresh join (the old session was lost): sync again.
      if (e.detail.state === 'joined') this.resync();
    };
    this._onError = (e) => {
      if (e.detail.inType === 'whiteboard') {
        this.errors.push({ code: e.detail.code, message: e.detail.message });
        this.dispatchEvent(new CustomEvent('refused', { detail: e.detail }));
      }
    };
    client.addEventListener('whiteboard', this._onFrame);
    client.addEventListener('state', this._onState);
    client.addEventListener('error', this._onError);
    this.resync();
  }

  /** Whether the token allows changing the board (`draw` or `publish`). */
  get canDraw() {
    return this.client.grants.has('draw') || this.client.grants.has('publish');
  }

  /** Whether the token is the presenter's (`admin`): may change what others made. */
  get isPresenter() {
    return this.client.grants.has('admin');
  }

  /** The token's user id (written as the author of what this page draws). */
  get user() {
    return this.client.user ?? '';
  }

  _send(write) {
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 0); // y-protocols: sync message
    write(e);
    this.client.sendWhiteboard(this.name, encoding.toUint8Array(e));
  }

  /** Send sync step 1 (done on creation and after a fresh join). */
  resync() {
    this._send((e) => sync.writeSyncStep1(e, this.doc));
  }

  _receive(data) {
    const d = decoding.createDecoder(data);
    const kind = decoding.readVarUint(d);
    if (kind === MSG_SYNC_CHUNK) return this._receiveChunk(decoding.readVarUint8Array(d));
    if (kind === 1) {
      this.presence.receive(decoding.readVarUint8Array(d));
      return;
    }
    if (kind !== 0) return;
    const reply = encoding.createEncoder();
    encoding.writeVarUint(reply, 0);
    const type = sync.readSyncMessage(d, reply, this.doc, REMOTE);
    // Step 1 of the server: answer with what it lacks.
    if (encoding.length(reply) > 1) this.client.sendWhiteboard(this.name, encoding.toUint8Array(reply));
    if (type === sync.messageYjsSyncStep2 && !this.synced) {
      this.synced = true;
      this.dispatchEvent(new CustomEvent('synced'));
    }
  }

  /** One chunk of a sync answer: kept, confirmed; once complete applied, then step 1 again. */
  _receiveChunk(payload) {
    const p = decoding.createDecoder(payload);
    const transfer = decoding.readVarUint(p);
    const total = decoding.readVarUint(p);
    const offset = decoding.readVarUint(p);
    const bytes = decoding.readVarUint8Array(p);
    if (offset === 0) this._partial = { transfer, total, parts: [], received: 0 };
    const t = this._partial;
    if (!t || t.transfer !== transfer || t.received !== offset || offset + bytes.length > total) return;
    t.parts.push(bytes);
    t.received += bytes.length;
    // Acknowledge the stream first: the server's queue holds the chunks until then.
    this.client.acknowledgeReceived();
    const ack = encoding.createEncoder();
    encoding.writeVarUint(ack, transfer);
    encoding.writeVarUint(ack, t.received);
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, MSG_SYNC_CHUNK_ACK);
    encoding.writeVarUint8Array(e, encoding.toUint8Array(ack));
    this.client.sendWhiteboard(this.name, encoding.toUint8Array(e));
    if (t.received < t.total) return;
    this._partial = null;
    const whole = new Uint8Array(t.total);
    let at = 0;
    for (const part of t.parts) {
      whole.set(part, at);
      at += part.length;
    }
    Y.applyUpdate(this.doc, whole, REMOTE);
    // What changed while the chunks travelled: a normal (small) step 2 answers this.
    this.resync();
  }

  /** The pages in order: [{id, order, author, bg, bgw, bgh}]. */
  pageList() {
    const out = [];
    this.pages.forEach((m, id) => out.push({ id, order: m.get('order') ?? 0, author: m.get('author') ?? '', bg: m.get('bg'), bgw: m.get('bgw'), bgh: m.get('bgh') }));
    out.sort((a, b) => a.order - b.order || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return out;
  }

  /** The items of `page`, in paint order, as plain objects. */
  itemList(page) {
    const out = [];
    this.items.forEach((m, id) => {
      if (!(m instanceof Y.Map) || (page !== undefined && field(m, 'page') !== page)) return;
      const { [ATTRS]: a, ...own } = Object.fromEntries(m.entries());
      const o = { ...(a && typeof a === 'object' ? a : {}), ...own };
      if (o.pts instanceof Y.Array) o.pts = o.pts.toArray();
      out.push({ id, ...o });
    });
    out.sort((a, b) => (a.z ?? 0) - (b.z ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return out;
  }

  /** Run `f` as one undoable action of this page. */
  _act(f) {
    this.undoManager.stopCapturing();
    this.doc.transact(f, LOCAL);
  }

  /** Undo this page's last action (not other members' ones); false if there is none. */
  undo() {
    return this.undoManager.undo() !== null;
  }

  /** Redo what `undo` took back; false if there is nothing to redo. */
  redo() {
    return this.undoManager.redo() !== null;
  }

  get canUndo() {
    return this.undoManager.canUndo();
  }

  get canRedo() {
    return this.undoManager.canRedo();
  }

  /** A fresh item id. */
  newId() {
    return `${this.doc.clientID.toString(36)}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
  }

  /**
   * Start a freehand stroke (`pen` or `highlighter`) at `point` [x, y, pressure]; returns its
   * id. Extend it with `extend`.
   */
  startStroke(page, kind, color, width, point) {
    const id = this.newId();
    this._act(() => {
      const m = new Y.Map();
      this.items.set(id, m);
      m.set(ATTRS, { page, kind, color, width, author: this.user, z: Date.now() });
      const pts = new Y.Array();
      m.set('pts', pts);
      pts.push(point);
    });
    return id;
  }

  /** Append points (flat x, y, pressure, ...) to stroke `id`. */
  extend(id, flat) {
    const m = this.items.get(id);
    // Same undo step as the stroke's start (no stopCapturing in between).
    if (m && flat.length) this.doc.transact(() => m.get('pts').push(flat), LOCAL);
  }

  /** Add a shape (`line`, `arrow`, `rect`, `ellipse`) from (x1, y1) to (x2, y2). */
  addShape(page, kind, color, width, [x1, y1, x2, y2]) {
    const id = this.newId();
    this._act(() => {
      const m = new Y.Map();
      this.items.set(id, m);
      m.set(ATTRS, { page, kind, color, width, author: this.user, z: Date.now(), x1, y1, x2, y2 });
    });
    return id;
  }

  /**
   * Add a text box with its top left at (x, y): `size` is the text height in board units.
   * Returns its id.
   */
  addText(page, x, y, text, color, size) {
    const id = this.newId();
    this._act(() => {
      const m = new Y.Map();
      this.items.set(id, m);
      m.set(ATTRS, { page, kind: 'text', color, width: 1, author: this.user, z: Date.now(), x1: x, y1: y, size });
      m.set('text', text);
    });
    return id;
  }

  /** Replace the text of text box `id` (own ones; anyone's for the presenter). */
  setText(id, text) {
    const m = this.items.get(id);
    if (m && field(m, 'kind') === 'text') this._act(() => m.set('text', text));
  }

  /** Move items by (dx, dy) board units: their `dx, dy` offsets grow (one undoable action). */
  moveItems(ids, dx, dy) {
    this._act(() => {
      for (const id of ids) {
        const m = this.items.get(id);
        if (!m) continue;
        m.set('dx', Math.round(((m.get('dx') ?? 0) + dx) * 10) / 10);
        m.set('dy', Math.round(((m.get('dy') ?? 0) + dy) * 10) / 10);
      }
    });
  }

  /** Remove items by id (own ones; anyone's for the presenter: the server enforces it). */
  remove(ids) {
    this._act(() => { for (const id of ids) this.items.delete(id); });
  }

  /** Remove every item of `page` (the presenter's "clear page"). */
  clearPage(page) {
    this.remove(this.itemList(page).map((i) => i.id));
  }

  /** Add an empty page after the last one; returns its id. */
  addPage() {
    const list = this.pageList();
    const id = `p-${this.newId()}`;
    this._act(() => {
      const m = new Y.Map();
      this.pages.set(id, m);
      m.set('order', (list.at(-1)?.order ?? 0) + 1);
      m.set('author', this.user);
    });
    return id;
  }

  /** Whether this page may move page `id`: the presenter any page, a member its own. */
  mayMovePage(id) {
    if (this.isPresenter) return true;
    return this.pageList().find((p) => p.id === id)?.author === this.user;
  }

  /**
   * Whether this page may delete page `id`: the presenter any page; a member a page it made
   * with nothing of others on it (the server refuses removing others' items).
   */
  mayDeletePage(id) {
    return this.mayMovePage(id) && (this.isPresenter || this.itemList(id).every((i) => i.author === this.user));
  }

  /** Delete page `id` and its items (one undoable action). The last page stays. */
  deletePage(id) {
    if (this.pageList().length <= 1 || !this.pages.has(id)) return false;
    const items = this.itemList(id).map((i) => i.id);
    this._act(() => {
      for (const i of items) this.items.delete(i);
      this.pages.delete(id);
    });
    return true;
  }

  /**
   * Move page `id` by `step` places (-1: one earlier, 1: one later) by giving it an `order`
   * between its new neighbours'; only that page's map changes. False if it cannot move.
   */
  movePage(id, step) {
    const list = this.pageList();
    const i = list.findIndex((p) => p.id === id);
    const j = i + step;
    if (i < 0 || j < 0 || j >= list.length) return false;
    const rest = list.filter((p) => p.id !== id);
    // Insert at index j of the list without the page.
    const before = rest[j - 1]?.order, after = rest[j]?.order;
    let order;
    if (before === undefined) order = after - 1;
    else if (after === undefined) order = before + 1;
    else order = (before + after) / 2;
    const m = this.pages.get(id);
    this._act(() => m.set('order', order));
    return true;
  }

  /**
   * The state vector in its canonical v1 encoding (entries sorted by client id), as lowercase
   * hex: equal on two members (or the Rust library's `Whiteboard::state_vector`) means the
   * same updates.
   */
  stateVectorHex() {
    const sv = [...Y.decodeStateVector(Y.encodeStateVector(this.doc))].sort((a, b) => a[0] - b[0]);
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, sv.length);
    for (const [client, clock] of sv) {
      encoding.writeVarUint(e, client);
      encoding.writeVarUint(e, clock);
    }
    return Array.from(encoding.toUint8Array(e), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /** Stop syncing. */
  destroy() {
    this.client.removeEventListener('whiteboard', this._onFrame);
    this.client.removeEventListener('state', this._onState);
    this.client.removeEventListener('error', this._onError);
    this.presence.destroy();
    this.undoManager.destroy();
    this.doc.off('update', this._onUpdate);
    this.doc.destroy();
  }
}
