// The whiteboard panel of the call page: a toolbar (tools, colour, width, undo/redo, pages,
// clear page, export) and a canvas showing one page of the room's board (board.js), drawn
// with pointer events (mouse, touch, pen with pressure; tools.js), with the other members'
// laser pointers (presence.js).
//
// The app mounts it with one call: `mountWhiteboard(container, client, { token })`.
import { Board, PAGE_W, PAGE_H } from './board.js';
import { paintItem, paintPage, paintLaser } from './paint.js';
import { TOOLS, attachTools } from './tools.js';
import { pagePng, pageSvg, boardPdf, download } from './export.js';

const COLORS = ['#1f1f1f', '#d00000', '#0057d9', '#108a00', '#f5a100'];

/**
 * Build the panel inside `container` for `client` (joined). `token` is the room token, sent
 * with the requests for page background images. Returns the panel: `board` (the Board),
 * `page` (the page shown), `tool`, `undo()`, `redo()`, `exportPng()` / `exportSvg()` (this
 * page) and `exportPdf()` (the whole board), `lasers()` (the laser points painted now),
 * `destroy()`.
 *
 * ```js
 * const wb = mountWhiteboard(document.getElementById('whiteboard'), client, { token });
 * const svg = await wb.exportSvg(); // one element per item of the page shown
 * ```
 */
export function mountWhiteboard(container, client, { token = '', board: name = 'main' } = {}) {
  const board = new Board(client, name);
  container.classList.add('wb');
  container.replaceChildren();
  const bar = document.createElement('div');
  bar.className = 'wb-bar';
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', 'Whiteboard tools');
  const stage = document.createElement('div');
  stage.className = 'wb-stage';
  const canvas = document.createElement('canvas');
  canvas.className = 'wb-canvas';
  canvas.setAttribute('aria-label', 'Whiteboard');
  stage.append(canvas);
  const note = document.createElement('p');
  note.className = 'wb-note';
  note.setAttribute('role', 'status');
  container.append(bar, stage, note);

  const ui = {
    board, page: 'p1', tool: 'pen', color: COLORS[0], width: 4, preview: null,
    undo, redo, exportPng, exportSvg, exportPdf, lasers: () => board.presence.lasers(ui.page), destroy,
  };
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
  for (const [tool, label] of TOOLS) {
    tools[tool] = button(label, label, () => { ui.tool = tool; input.cancel(); syncBar(); });
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
  const undoBtn = button('Undo', 'Undo your last change (Ctrl+Z)', undo);
  undoBtn.dataset.action = 'undo';
  const redoBtn = button('Redo', 'Redo (Ctrl+Shift+Z)', redo);
  redoBtn.dataset.action = 'redo';
  const prev = button('‹', 'Previous page', () => turn(-1));
  const pageLabel = document.createElement('span');
  pageLabel.className = 'wb-page';
  bar.append(pageLabel);
  const next = button('›', 'Next page', () => turn(1));
  const add = button('+ Page', 'Add a page', () => { ui.page = board.addPage(); redraw(); });
  const clear = button('Clear page', 'Remove everything on this page (presenter)', () => board.clearPage(ui.page));
  const exports = [
    button('PNG', 'Download this page as PNG', async () => download(await exportPng(), `whiteboard-${ui.page}.png`)),
    button('SVG', 'Download this page as SVG', async () => download(await exportSvg(), `whiteboard-${ui.page}.svg`, 'image/svg+xml')),
    button('PDF', 'Download the whole board as PDF', async () => download(await exportPdf(), 'whiteboard.pdf', 'application/pdf')),
  ];
  exports.forEach((b, i) => { b.dataset.action = ['png', 'svg', 'pdf'][i]; });

  function syncBar() {
    for (const [t, b] of Object.entries(tools)) b.setAttribute('aria-pressed', String(t === ui.tool));
    const draw = board.canDraw;
    for (const [t, b] of Object.entries(tools)) b.disabled = !draw && t !== 'laser';
    add.disabled = !draw;
    color.disabled = width.disabled = !draw;
    undoBtn.disabled = !board.canUndo;
    redoBtn.disabled = !board.canRedo;
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
    if (p) { ui.page = p.id; input.cancel(); redraw(); }
  }

  function undo() {
    input.cancel();
    board.undo();
  }

  function redo() {
    input.cancel();
    board.redo();
  }

  const onKey = (e) => {
    if (container.hidden || !container.isConnected || !(e.ctrlKey || e.metaKey)) return;
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement || e.target?.isContentEditable) return;
    const k = e.key.toLowerCase();
    if (k === 'z' && !e.shiftKey) { e.preventDefault(); undo(); }
    else if ((k === 'z' && e.shiftKey) || k === 'y') { e.preventDefault(); redo(); }
  };
  document.addEventListener('keydown', onKey);

  // ---- export ----------------------------------------------------------------------------

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
  /** The background image of `url`, once loaded (null if it cannot be). */
  function loaded(url) {
    const img = background(url) ?? images.get(url);
    if (img.complete) return Promise.resolve(img.naturalWidth ? img : null);
    return new Promise((resolve) => {
      img.addEventListener('load', () => resolve(img), { once: true });
      img.addEventListener('error', () => resolve(null), { once: true });
    });
  }
  /** This page as a PNG Blob of 1600 × 900 pixels. */
  function exportPng() {
    return pagePng(board, ui.page, { background: loaded });
  }
  /** This page as an SVG string, one element per item. */
  function exportSvg() {
    return pageSvg(board, ui.page, { background: loaded });
  }
  /** The whole board as PDF bytes, one page per board page. */
  function exportPdf() {
    return boardPdf(board, { background: loaded });
  }

  // ---- painting --------------------------------------------------------------------------

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
    const pages = board.pageList();
    // The page shown was deleted (or undone): show the first one.
    if (board.synced && pages.length && !pages.some((p) => p.id === ui.page)) ui.page = pages[0].id;
    const g = canvas.getContext('2d');
    const { s, dx, dy } = view();
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.fillStyle = '#e8e8e8';
    g.fillRect(0, 0, cw, ch);
    g.setTransform(s, 0, 0, s, dx, dy);
    const page = pages.find((p) => p.id === ui.page);
    paintPage(g, board, ui.page, page?.bg ? background(page.bg) : null);
    if (ui.preview) paintItem(g, ui.preview);
    const lasers = board.presence.lasers(ui.page);
    for (const l of lasers) paintLaser(g, l.x, l.y, l.alpha);
    // Keep painting while a laser fades.
    if (lasers.length) redraw();
    syncBar();
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

  /** Board point → CSS pixels from the canvas's top left. */
  function toCss(x, y) {
    const r = canvas.getBoundingClientRect();
    const dpr = canvas.width / Math.max(1, r.width);
    const { s, dx, dy } = view();
    return [(x * s + dx) / dpr, (y * s + dy) / dpr];
  }

  const input = attachTools(canvas, { board, ui, at, toCss, stage, redraw });

  board.addEventListener('change', redraw);
  board.addEventListener('history', syncBar);
  board.presence.addEventListener('change', redraw);
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
    document.removeEventListener('keydown', onKey);
    input.cancel();
    resize.disconnect();
    board.destroy();
    container.replaceChildren();
  }
  return ui;
}
