// The drawing tools of the whiteboard panel: pointer input (mouse, touch, pen with pressure)
// on the canvas turned into board changes, and the text box editor (a positioned <input>).
import { textBox, itemBox, boxesMeet } from './paint.js';

/** The tools, in toolbar order: [tool, label]. */
export const TOOLS = [
  ['pen', 'Pen'], ['highlighter', 'Highlighter'], ['eraser', 'Eraser'], ['erase-area', 'Area eraser'], ['select', 'Select'],
  ['line', 'Line'], ['arrow', 'Arrow'],
  ['rect', 'Rectangle'], ['ellipse', 'Ellipse'], ['text', 'Text'], ['laser', 'Laser'], ['pan', 'Pan'],
];

/** Tools that change no document, so members without `draw` have them too. */
export const VIEW_TOOLS = new Set(['laser', 'pan']);

const SHAPES = new Set(['line', 'arrow', 'rect', 'ellipse']);

/** Text height in board units for line width `w` of the toolbar (8 × width, at least 16). */
export function textSize(w) {
  return Math.max(16, w * 8);
}

/** The topmost item of `items` (paint order) under board point (x, y), or null. */
export function hitItem(items, x, y) {
  for (const it of [...items].reverse()) {
    const pad = (it.width ?? 2) + 8;
    const px = x - (it.dx ?? 0), py = y - (it.dy ?? 0);
    if (it.pts) {
      for (let i = 0; i + 1 < it.pts.length; i += 3) if (Math.hypot(it.pts[i] - px, it.pts[i + 1] - py) <= pad) return it;
    } else if (it.x1 !== undefined) {
      const [x1, y1, x2, y2] = it.kind === 'text' ? textBox(it) : [it.x1, it.y1, it.x2, it.y2];
      if (px >= Math.min(x1, x2) - pad && px <= Math.max(x1, x2) + pad && py >= Math.min(y1, y2) - pad && py <= Math.max(y1, y2) + pad) return it;
    }
  }
  return null;
}

/**
 * Wire the tools to `canvas`. `panel`: {board, ui (tool, color, width, page, preview),
 * at(e) → [x, y, pressure] in board units, toCss(x, y) → [left, top] in CSS pixels of the
 * canvas, panBy(dx, dy) (move the view by CSS pixels), stage (the element holding the
 * canvas, where the text editor goes), redraw()}.
 * `ui.selection` holds the ids the select tool chose; `ui.band` ({box, color}) an area being
 * dragged and `ui.moving` ({ids, dx, dy}) items being moved, for painting.
 * Returns {cancel()} (drops an unfinished gesture or text edit) and
 * {deleteSelection()} (removes the selected items).
 */
export function attachTools(canvas, panel) {
  const { board, ui } = panel;
  let active = null;
  let flushQueued = false;
  let editor = null;

  const mayChange = (it) => it && (it.author === board.user || board.isPresenter);
  ui.selection = [];

  /** The items of this page meeting box `b` (from two corners) that this page may change. */
  function inArea(a, b) {
    const box = [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
    return board.itemList(ui.page).filter((it) => mayChange(it) && itemBox(it) && boxesMeet(itemBox(it), box));
  }

  const band = (a, b, color) => ({ box: [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])], color });

  function flush() {
    flushQueued = false;
    if (active?.id && active.pending.length) {
      board.extend(active.id, active.pending);
      active.pending = [];
    }
  }

  function erase(p) {
    const it = hitItem(board.itemList(ui.page), p[0], p[1]);
    if (mayChange(it)) board.remove([it.id]);
  }

  /** Open the text editor at board point (x, y), editing `item` if given. */
  function editText(x, y, item) {
    closeEditor(false);
    const input = document.createElement('input');
    input.type = 'text';
    input.className = 'wb-text';
    input.setAttribute('aria-label', 'Text');
    const size = item?.size ?? textSize(ui.width);
    const [left, top] = panel.toCss(x, y);
    input.style.left = `${left}px`;
    input.style.top = `${top}px`;
    input.style.color = item?.color ?? ui.color;
    input.style.fontSize = `${Math.max(12, panel.toCss(size, 0)[0] - panel.toCss(0, 0)[0])}px`;
    input.value = item?.text ?? '';
    editor = { input, x, y, item, page: ui.page, size };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); closeEditor(true); }
      if (e.key === 'Escape') { e.preventDefault(); closeEditor(false); }
    });
    input.addEventListener('blur', () => closeEditor(true));
    panel.stage.append(input);
    input.focus();
  }

  function closeEditor(commit) {
    if (!editor) return;
    const { input, x, y, item, page, size } = editor;
    editor = null;
    const text = input.value.trim();
    input.remove();
    if (!commit) return;
    if (item) {
      if (!text) board.remove([item.id]);
      else if (text !== item.text) board.setText(item.id, text);
    } else if (text) {
      board.addText(page, x, y, text, ui.color, size);
    }
  }

  canvas.addEventListener('pointerdown', (e) => {
    if (active) return;
    // The laser and the pan need no `draw` grant: they change no document.
    if (!board.canDraw && !VIEW_TOOLS.has(ui.tool)) return;
    e.preventDefault();
    try { canvas.setPointerCapture(e.pointerId); } catch { /* synthetic pointers */ }
    const p = at(e);
    if (ui.tool === 'eraser') {
      erase(p);
      active = { pointerId: e.pointerId, erase: true };
    } else if (ui.tool === 'laser') {
      board.presence.setLaser(ui.page, p[0], p[1]);
      active = { pointerId: e.pointerId, laser: true };
    } else if (ui.tool === 'erase-area') {
      active = { pointerId: e.pointerId, eraseArea: p };
    } else if (ui.tool === 'select') {
      const it = hitItem(board.itemList(ui.page), p[0], p[1]);
      if (mayChange(it)) {
        if (!ui.selection.includes(it.id)) ui.selection = e.shiftKey ? [...ui.selection, it.id] : [it.id];
        active = { pointerId: e.pointerId, move: p };
      } else {
        if (!e.shiftKey) ui.selection = [];
        active = { pointerId: e.pointerId, selectArea: p };
      }
      panel.redraw();
    } else if (ui.tool === 'pan') {
      active = { pointerId: e.pointerId, pan: [e.clientX, e.clientY] };
    } else if (ui.tool === 'text') {
      const it = hitItem(board.itemList(ui.page).filter((i) => i.kind === 'text'), p[0], p[1]);
      if (mayChange(it)) editText(it.x1, it.y1, it);
      else editText(p[0], p[1], null);
    } else if (SHAPES.has(ui.tool)) {
      active = { pointerId: e.pointerId, shape: ui.tool, from: p };
    } else {
      const width = ui.tool === 'highlighter' ? ui.width * 4 : ui.width;
      active = { pointerId: e.pointerId, id: board.startStroke(ui.page, ui.tool, ui.color, width, p), pending: [] };
    }
  });

  function at(e) {
    return panel.at(e);
  }

  canvas.addEventListener('pointermove', (e) => {
    if (!active || e.pointerId !== active.pointerId) return;
    if (active.pan) {
      panel.panBy(e.clientX - active.pan[0], e.clientY - active.pan[1]);
      active.pan = [e.clientX, e.clientY];
      return;
    }
    const p = at(e);
    if (active.erase) {
      erase(p);
    } else if (active.eraseArea || active.selectArea) {
      ui.band = band(active.eraseArea ?? active.selectArea, p, active.eraseArea ? '#d00000' : '#0057d9');
      panel.redraw();
    } else if (active.move) {
      ui.moving = { ids: ui.selection, dx: p[0] - active.move[0], dy: p[1] - active.move[1] };
      panel.redraw();
    } else if (active.laser) {
      board.presence.setLaser(ui.page, p[0], p[1]);
    } else if (active.shape) {
      ui.preview = { kind: active.shape, color: ui.color, width: ui.width, x1: active.from[0], y1: active.from[1], x2: p[0], y2: p[1] };
      panel.redraw();
    } else if (active.id) {
      // Points are sent once per animation frame: one update, not one per event.
      active.pending.push(...p);
      if (!flushQueued) { flushQueued = true; requestAnimationFrame(flush); }
    }
  });

  const end = (e) => {
    if (!active || e.pointerId !== active.pointerId) return;
    if (active.shape) {
      const p = at(e);
      ui.preview = null;
      if (Math.hypot(p[0] - active.from[0], p[1] - active.from[1]) >= 2) {
        board.addShape(ui.page, active.shape, ui.color, ui.width, [active.from[0], active.from[1], p[0], p[1]]);
      }
      panel.redraw();
    } else if (active.laser) {
      board.presence.setLaser(ui.page, null, null);
    } else if (active.eraseArea) {
      const gone = inArea(active.eraseArea, at(e)).map((it) => it.id);
      if (gone.length) board.remove(gone);
    } else if (active.selectArea) {
      const got = inArea(active.selectArea, at(e)).map((it) => it.id);
      ui.selection = [...new Set([...ui.selection, ...got])];
    } else if (active.move) {
      const p = at(e);
      const dx = p[0] - active.move[0], dy = p[1] - active.move[1];
      if (Math.hypot(dx, dy) >= 1) board.moveItems(ui.selection, dx, dy);
    }
    if (ui.band || ui.moving) {
      ui.band = null;
      ui.moving = null;
      panel.redraw();
    }
    flush();
    active = null;
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);

  return {
    cancel() {
      active = null;
      ui.preview = ui.band = ui.moving = null;
      ui.selection = [];
      closeEditor(false);
    },
    deleteSelection() {
      const ids = ui.selection.filter((id) => board.items.has(id));
      ui.selection = [];
      if (ids.length) board.remove(ids);
      panel.redraw();
    },
  };
}
