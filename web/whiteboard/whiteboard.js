// The whiteboard panel of the call page: a toolbar (tools, colour, width, undo/redo, pages,
// clear page, export) and a canvas showing one page of the room's board (board.js), drawn
// with pointer events (mouse, touch, pen with pressure; tools.js), with the other members'
// laser pointers (presence.js).
//
// The app mounts it with one call: `mountWhiteboard(container, client, { token })`.
import { Board, PAGE_W, PAGE_H } from './board.js';
import { paintItem, paintPage, paintLaser, paintBox, itemBox } from './paint.js';
import { TOOLS, VIEW_TOOLS, attachTools } from './tools.js';
import { pagePng, pageSvg, boardPdf, download } from './export.js';

const COLORS = ['#1f1f1f', '#d00000', '#0057d9', '#108a00', '#f5a100'];

/** Zoom range (1: the page fits the canvas) and the factor of one zoom step. */
export const ZOOM_MIN = 0.5;
export const ZOOM_MAX = 8;
export const ZOOM_STEP = 1.25;

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
    zoom: 1, center: [PAGE_W / 2, PAGE_H / 2], follow: true,
    undo, redo, zoomBy, exportPng, exportSvg, exportPdf, lasers: () => board.presence.lasers(ui.page), destroy,
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
  const delSel = button('Delete', 'Delete the selected items (Delete key)', () => input.deleteSelection());
  delSel.dataset.action = 'delete-selection';
  const prev = button('‹', 'Previous page', () => turn(-1));
  const pageLabel = document.createElement('span');
  pageLabel.className = 'wb-page';
  bar.append(pageLabel);
  const next = button('›', 'Next page', () => turn(1));
  const add = button('+ Page', 'Add a page', () => { ui.page = board.addPage(); redraw(); });
  const earlier = button('◂ Move', 'Move this page one earlier', () => board.movePage(ui.page, -1));
  earlier.dataset.action = 'page-earlier';
  const later = button('Move ▸', 'Move this page one later', () => board.movePage(ui.page, 1));
  later.dataset.action = 'page-later';
  const del = button('Delete page', 'Delete this page and everything on it', () => { input.cancel(); board.deletePage(ui.page); redraw(); });
  del.dataset.action = 'delete-page';
  const followBox = document.createElement('input');
  followBox.type = 'checkbox';
  followBox.checked = true;
  followBox.addEventListener('change', () => { ui.follow = followBox.checked; followed = null; follow(); });
  const followLabel = document.createElement('label');
  followLabel.className = 'wb-follow';
  followLabel.title = "Show the page the presenter shows";
  followLabel.append(followBox, ' Follow presenter');
  bar.append(followLabel);
  const zoomOut = button('−', 'Zoom out (Ctrl+wheel)', () => zoomBy(1 / ZOOM_STEP));
  zoomOut.dataset.action = 'zoom-out';
  const zoomIn = button('+', 'Zoom in (Ctrl+wheel)', () => zoomBy(ZOOM_STEP));
  zoomIn.dataset.action = 'zoom-in';
  const fit = button('Fit', 'Show the whole page', () => { ui.zoom = 1; ui.center = [PAGE_W / 2, PAGE_H / 2]; redraw(); });
  fit.dataset.action = 'zoom-fit';
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
    for (const [t, b] of Object.entries(tools)) b.disabled = !draw && !VIEW_TOOLS.has(t);
    add.disabled = !draw;
    del.disabled = !draw || !board.mayDeletePage(ui.page) || board.pageList().length <= 1;
    earlier.disabled = later.disabled = !draw || !board.mayMovePage(ui.page);
    followLabel.hidden = board.isPresenter;
    zoomOut.disabled = ui.zoom <= ZOOM_MIN;
    zoomIn.disabled = ui.zoom >= ZOOM_MAX;
    color.disabled = width.disabled = !draw;
    undoBtn.disabled = !board.canUndo;
    delSel.disabled = !ui.selection?.length;
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

  /** Follow the presenter's page when it changes (unless opted out). */
  let followed = null;
  function follow() {
    if (!ui.follow || board.isPresenter) return;
    const p = board.presence.presenterPage();
    if (!p || p === followed || !board.pageList().some((x) => x.id === p)) return;
    followed = p;
    if (ui.page !== p) { ui.page = p; input.cancel(); redraw(); }
  }

  /**
   * Zoom by `factor` keeping the board point under CSS point (x, y) of the canvas in place
   * (default: the centre).
   */
  function zoomBy(factor, x, y) {
    const z = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, ui.zoom * factor));
    if (x === undefined) { ui.zoom = z; redraw(); return; }
    const r = canvas.getBoundingClientRect();
    const dpr = canvas.width / Math.max(1, r.width);
    const { s, dx, dy } = view();
    const px = x * dpr, py = y * dpr;
    const bx = (px - dx) / s, by = (py - dy) / s;
    ui.zoom = z;
    const s2 = view().s;
    ui.center = clampCenter([(canvas.width / 2 - (px - bx * s2)) / s2, (canvas.height / 2 - (py - by * s2)) / s2]);
    redraw();
  }

  const clampCenter = ([x, y]) => [Math.min(PAGE_W, Math.max(0, x)), Math.min(PAGE_H, Math.max(0, y))];

  /** Move the view by (dx, dy) CSS pixels (the page follows the pointer). */
  function panBy(dx, dy) {
    const r = canvas.getBoundingClientRect();
    const dpr = canvas.width / Math.max(1, r.width);
    const { s } = view();
    ui.center = clampCenter([ui.center[0] - (dx * dpr) / s, ui.center[1] - (dy * dpr) / s]);
    redraw();
  }

  canvas.addEventListener('wheel', (e) => {
    const r = canvas.getBoundingClientRect();
    if (e.ctrlKey || e.metaKey) {
      e.preventDefault();
      zoomBy(e.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, e.clientX - r.left, e.clientY - r.top);
    } else if (ui.zoom > 1) {
      e.preventDefault();
      panBy(-e.deltaX, -e.deltaY);
    }
  }, { passive: false });

  function undo() {
    input.cancel();
    board.undo();
  }

  function redo() {
    input.cancel();
    board.redo();
  }

  const onKey = (e) => {
    if (container.hidden || !container.isConnected) return;
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement || e.target?.isContentEditable) return;
    if ((e.key === 'Delete' || e.key === 'Backspace') && ui.selection?.length) {
      e.preventDefault();
      input.deleteSelection();
      return;
    }
    if (!(e.ctrlKey || e.metaKey)) return;
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
    const s = Math.min(w / PAGE_W, h / PAGE_H) * ui.zoom;
    return { s, dx: w / 2 - ui.center[0] * s, dy: h / 2 - ui.center[1] * s };
  }

  let queued = false;
  let announced = null;
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
    if (announced !== ui.page) { announced = ui.page; board.presence.setPage(ui.page); }
    const g = canvas.getContext('2d');
    const { s, dx, dy } = view();
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.fillStyle = '#e8e8e8';
    g.fillRect(0, 0, cw, ch);
    g.setTransform(s, 0, 0, s, dx, dy);
    const page = pages.find((p) => p.id === ui.page);
    const moving = ui.moving ? new Set(ui.moving.ids) : null;
    const shift = (it) => (moving?.has(it.id) ? { ...it, dx: (it.dx ?? 0) + ui.moving.dx, dy: (it.dy ?? 0) + ui.moving.dy } : it);
    paintPage(g, board, ui.page, page?.bg ? background(page.bg) : null, shift);
    if (ui.preview) paintItem(g, ui.preview);
    // The selection (ids still on this page), outlined.
    const selected = new Set(ui.selection ?? []);
    for (const it of board.itemList(ui.page)) {
      const b = selected.has(it.id) && itemBox(shift(it));
      if (b) paintBox(g, [b[0] - 6, b[1] - 6, b[2] + 6, b[3] + 6]);
    }
    if (ui.band) paintBox(g, ui.band.box, ui.band.color);
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

  const input = attachTools(canvas, { board, ui, at, toCss, panBy, stage, redraw });

  board.addEventListener('change', () => { follow(); redraw(); });
  board.addEventListener('history', syncBar);
  board.presence.addEventListener('change', () => { follow(); redraw(); });
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
