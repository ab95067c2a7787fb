// The whiteboard panel of the call page: a toolbar (pen, highlighter, eraser, rectangle,
// colour, width, pages, clear page) and a canvas showing one page of the room's board
// (board.js), drawn with pointer events (mouse, touch, pen with pressure).
//
// The app mounts it with one call: `mountWhiteboard(container, client, { token })`.
import { Board, PAGE_W, PAGE_H } from './board.js';

const COLORS = ['#1f1f1f', '#d00000', '#0057d9', '#108a00', '#f5a100'];

/**
 * Build the panel inside `container` for `client` (joined). `token` is the room token, sent
 * with the requests for page background images. Returns the panel: `board` (the Board),
 * `page` (the page shown), `destroy()`.
 */
export function mountWhiteboard(container, client, { token = '', board: name = 'main' } = {}) {
  const board = new Board(client, name);
  container.classList.add('wb');
  container.replaceChildren();
  const bar = document.createElement('div');
  bar.className = 'wb-bar';
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', 'Whiteboard tools');
  const canvas = document.createElement('canvas');
  canvas.className = 'wb-canvas';
  canvas.setAttribute('aria-label', 'Whiteboard');
  const note = document.createElement('p');
  note.className = 'wb-note';
  note.setAttribute('role', 'status');
  container.append(bar, canvas, note);

  const ui = { board, page: 'p1', tool: 'pen', color: COLORS[0], width: 4, destroy };
  const button = (label, title, onClick) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.title = title;
    b.addEventListener('click', onClick);
    bar.append(b);
    return b;
  };
  const tools = {};
  for (const [tool, label] of [['pen', 'Pen'], ['highlighter', 'Highlighter'], ['eraser', 'Eraser'], ['rect', 'Rectangle']]) {
    tools[tool] = button(label, label, () => { ui.tool = tool; syncBar(); });
    tools[tool].dataset.tool = tool;
  }
  const color = document.createElement('select');
  color.setAttribute('aria-label', 'Colour');
  for (const c of COLORS) color.append(new Option(c, c));
  color.addEventListener('change', () => { ui.color = color.value; });
  const width = document.createElement('input');
  width.type = 'range';
  width.min = '1';
  width.max = '40';
  width.value = String(ui.width);
  width.setAttribute('aria-label', 'Line width');
  width.addEventListener('input', () => { ui.width = Number(width.value); });
  bar.append(color, width);
  const prev = button('‹', 'Previous page', () => turn(-1));
  const pageLabel = document.createElement('span');
  pageLabel.className = 'wb-page';
  bar.append(pageLabel);
  const next = button('›', 'Next page', () => turn(1));
  const add = button('+ Page', 'Add a page', () => { ui.page = board.addPage(); redraw(); });
  const clear = button('Clear page', 'Remove everything on this page (presenter)', () => board.clearPage(ui.page));

  function syncBar() {
    for (const [t, b] of Object.entries(tools)) b.setAttribute('aria-pressed', String(t === ui.tool));
    const draw = board.canDraw;
    for (const b of [...Object.values(tools), add]) b.disabled = !draw;
    color.disabled = width.disabled = !draw;
    clear.disabled = !board.isPresenter;
    const pages = board.pageList();
    const i = pages.findIndex((p) => p.id === ui.page);
    pageLabel.textContent = `${i + 1} / ${pages.length}`;
    prev.disabled = i <= 0;
    next.disabled = i < 0 || i >= pages.length - 1;
    note.textContent = draw ? '' : 'You can see the whiteboard; your room token does not allow drawing.';
  }

  function turn(step) {
    const pages = board.pageList();
    const i = pages.findIndex((p) => p.id === ui.page);
    const p = pages[i + step];
    if (p) { ui.page = p.id; redraw(); }
  }

  // ---- painting --------------------------------------------------------------------------

  const images = new Map();
  function background(url) {
    let img = images.get(url);
    if (!img) {
      img = new Image();
      img.onload = redraw;
      img.src = `${url}?token=${encodeURIComponent(token)}`;
      images.set(url, img);
    }
    return img.complete && img.naturalWidth ? img : null;
  }

  /** Board units → canvas pixels. */
  function view() {
    const w = canvas.width, h = canvas.height;
    const s = Math.min(w / PAGE_W, h / PAGE_H);
    return { s, dx: (w - PAGE_W * s) / 2, dy: (h - PAGE_H * s) / 2 };
  }

  let queued = false;
  function redraw() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(paint);
  }

  function paint() {
    queued = false;
    const r = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const cw = Math.max(1, Math.round(r.width * dpr)), ch = Math.max(1, Math.round(r.height * dpr));
    if (canvas.width !== cw || canvas.height !== ch) { canvas.width = cw; canvas.height = ch; }
    const g = canvas.getContext('2d');
    const { s, dx, dy } = view();
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.fillStyle = '#e8e8e8';
    g.fillRect(0, 0, cw, ch);
    g.setTransform(s, 0, 0, s, dx, dy);
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, PAGE_W, PAGE_H);
    const page = board.pageList().find((p) => p.id === ui.page);
    if (page?.bg) {
      const img = background(page.bg);
      if (img) {
        const k = Math.min(PAGE_W / img.naturalWidth, PAGE_H / img.naturalHeight);
        g.drawImage(img, (PAGE_W - img.naturalWidth * k) / 2, (PAGE_H - img.naturalHeight * k) / 2, img.naturalWidth * k, img.naturalHeight * k);
      }
    }
    for (const it of board.itemList(ui.page)) paintItem(g, it);
    syncBar();
  }

  function paintItem(g, it) {
    g.save();
    g.translate(it.dx ?? 0, it.dy ?? 0);
    g.strokeStyle = it.color ?? '#000000';
    g.lineCap = 'round';
    g.lineJoin = 'round';
    g.globalAlpha = it.kind === 'highlighter' ? 0.35 : 1;
    const w = it.width ?? 2;
    if (it.kind === 'pen' || it.kind === 'highlighter') {
      const p = it.pts ?? [];
      // Segments: the width follows the pressure (0.5 when the device reports none).
      for (let i = 3; i + 2 < p.length; i += 3) {
        g.lineWidth = w * (0.5 + (p[i + 2] ?? 0.5));
        g.beginPath();
        g.moveTo(p[i - 3], p[i - 2]);
        g.lineTo(p[i], p[i + 1]);
        g.stroke();
      }
      if (p.length >= 3 && p.length < 6) {
        g.fillStyle = g.strokeStyle;
        g.beginPath();
        g.arc(p[0], p[1], w / 2, 0, Math.PI * 2);
        g.fill();
      }
    } else if (it.kind === 'rect') {
      g.lineWidth = w;
      g.strokeRect(Math.min(it.x1, it.x2), Math.min(it.y1, it.y2), Math.abs(it.x2 - it.x1), Math.abs(it.y2 - it.y1));
    } else if (it.kind === 'ellipse') {
      g.lineWidth = w;
      g.beginPath();
      g.ellipse((it.x1 + it.x2) / 2, (it.y1 + it.y2) / 2, Math.abs(it.x2 - it.x1) / 2, Math.abs(it.y2 - it.y1) / 2, 0, 0, Math.PI * 2);
      g.stroke();
    } else if (it.kind === 'line' || it.kind === 'arrow') {
      g.lineWidth = w;
      g.beginPath();
      g.moveTo(it.x1, it.y1);
      g.lineTo(it.x2, it.y2);
      g.stroke();
    } else if (it.kind === 'text') {
      g.fillStyle = it.color ?? '#000000';
      g.font = `${it.size ?? 32}px sans-serif`;
      g.textBaseline = 'top';
      g.fillText(it.text ?? '', it.x1, it.y1);
    }
    g.restore();
  }

  // ---- input -----------------------------------------------------------------------------

  /** A pointer event's position in board units, with its pressure (0.5 when unknown). */
  function at(e) {
    const r = canvas.getBoundingClientRect();
    const dpr = canvas.width / Math.max(1, r.width);
    const { s, dx, dy } = view();
    const x = ((e.clientX - r.left) * dpr - dx) / s;
    const y = ((e.clientY - r.top) * dpr - dy) / s;
    const p = e.pointerType === 'pen' || (e.pressure > 0 && e.pressure !== 0.5) ? e.pressure : 0.5;
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10, Math.round(p * 100) / 100];
  }

  function hit(x, y) {
    const mine = board.itemList(ui.page).reverse();
    for (const it of mine) {
      const pad = (it.width ?? 2) + 8;
      if (it.pts) {
        for (let i = 0; i + 1 < it.pts.length; i += 3) if (Math.hypot(it.pts[i] - x, it.pts[i + 1] - y) <= pad) return it;
      } else if (it.x1 !== undefined) {
        if (x >= Math.min(it.x1, it.x2) - pad && x <= Math.max(it.x1, it.x2) + pad && y >= Math.min(it.y1, it.y2) - pad && y <= Math.max(it.y1, it.y2) + pad) return it;
      }
    }
    return null;
  }

  let active = null; // { id, pointerId, pending: [] } or { shape: [x1, y1], pointerId }
  let flushQueued = false;
  function flush() {
    flushQueued = false;
    if (active?.id && active.pending.length) {
      board.extend(active.id, active.pending);
      active.pending = [];
    }
  }

  canvas.addEventListener('pointerdown', (e) => {
    if (!board.canDraw || active) return;
    e.preventDefault();
    try { canvas.setPointerCapture(e.pointerId); } catch { /* synthetic pointers */ }
    const p = at(e);
    if (ui.tool === 'eraser') {
      const it = hit(p[0], p[1]);
      if (it && (it.author === board.user || board.isPresenter)) board.remove([it.id]);
      active = { pointerId: e.pointerId, erase: true };
    } else if (ui.tool === 'rect') {
      active = { pointerId: e.pointerId, shape: p };
    } else {
      active = { pointerId: e.pointerId, id: board.startStroke(ui.page, ui.tool, ui.color, ui.tool === 'highlighter' ? ui.width * 4 : ui.width, p), pending: [] };
    }
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!active || e.pointerId !== active.pointerId) return;
    const p = at(e);
    if (active.erase) {
      const it = hit(p[0], p[1]);
      if (it && (it.author === board.user || board.isPresenter)) board.remove([it.id]);
    } else if (active.id) {
      // Points are sent once per animation frame: one update, not one per event.
      active.pending.push(...p);
      if (!flushQueued) { flushQueued = true; requestAnimationFrame(flush); }
    }
  });
  const end = (e) => {
    if (!active || e.pointerId !== active.pointerId) return;
    if (active.shape) board.addShape(ui.page, 'rect', ui.color, ui.width, [...active.shape.slice(0, 2), ...at(e).slice(0, 2)]);
    flush();
    active = null;
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);

  board.addEventListener('change', redraw);
  board.addEventListener('synced', () => {
    if (!board.pageList().some((p) => p.id === ui.page)) ui.page = board.pageList()[0]?.id ?? 'p1';
    redraw();
  });
  board.addEventListener('refused', (e) => { note.textContent = `Not applied: ${e.detail.message}`; });
  const resize = new ResizeObserver(redraw);
  resize.observe(canvas);
  syncBar();
  redraw();

  function destroy() {
    resize.disconnect();
    board.destroy();
    container.replaceChildren();
  }
  return ui;
}
