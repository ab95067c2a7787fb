// Painting board items on a 2D canvas context in board units (the panel and the PNG/PDF
// export share it), and their geometry: arrow heads and bounding boxes.
import { PAGE_W, PAGE_H } from './board.js';

/** Highlighter ink opacity. */
export const HIGHLIGHTER_ALPHA = 0.35;

/** Line width of a freehand segment: the width follows the pressure (0.5 when unknown). */
export function pressureWidth(width, pressure) {
  return width * (0.5 + (pressure ?? 0.5));
}

/**
 * The two barbs of an arrow from (x1, y1) to (x2, y2) of line width `w`: [[x, y], [x, y]],
 * each drawn from the tip (x2, y2). The same geometry as `whiteboardsrc`.
 */
export function arrowBarbs(x1, y1, x2, y2, w) {
  const len = Math.max(Math.hypot(x2 - x1, y2 - y1), 1e-3);
  const ux = (x2 - x1) / len, uy = (y2 - y1) / len;
  const head = Math.max(w * 4, 12);
  return [-1, 1].map((side) => [x2 - head * ux + side * head * 0.5 * uy, y2 - head * uy - side * head * 0.5 * ux]);
}

/** A text box's approximate box [x1, y1, x2, y2] (0.6 em per character, one line). */
export function textBox(it) {
  const size = it.size ?? 32;
  return [it.x1, it.y1, it.x1 + Math.max(1, (it.text ?? '').length) * size * 0.6, it.y1 + size];
}

/**
 * An item's bounding box [x1, y1, x2, y2] in board units, its move offset applied and half its
 * line width around it.
 */
export function itemBox(it) {
  let b;
  if (it.pts?.length) {
    b = [Infinity, Infinity, -Infinity, -Infinity];
    for (let i = 0; i + 1 < it.pts.length; i += 3) {
      b = [Math.min(b[0], it.pts[i]), Math.min(b[1], it.pts[i + 1]), Math.max(b[2], it.pts[i]), Math.max(b[3], it.pts[i + 1])];
    }
  } else if (it.kind === 'text') {
    b = textBox(it);
  } else if (it.x1 !== undefined) {
    b = [Math.min(it.x1, it.x2), Math.min(it.y1, it.y2), Math.max(it.x1, it.x2), Math.max(it.y1, it.y2)];
  } else {
    return null;
  }
  const pad = (it.width ?? 2) / 2, dx = it.dx ?? 0, dy = it.dy ?? 0;
  return [b[0] - pad + dx, b[1] - pad + dy, b[2] + pad + dx, b[3] + pad + dy];
}

/** Whether boxes a and b ([x1, y1, x2, y2], ordered) overlap. */
export function boxesMeet(a, b) {
  return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
}

/** A dashed outline of box `b` (a selection, a selection or erase area being dragged). */
export function paintBox(g, b, color = '#0057d9') {
  g.save();
  g.strokeStyle = color;
  g.lineWidth = 2;
  g.setLineDash([8, 6]);
  g.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
  g.restore();
}

/** Paint one item (a plain object of Board.itemList) on `g`, in board units. */
export function paintItem(g, it) {
  g.save();
  g.translate(it.dx ?? 0, it.dy ?? 0);
  g.strokeStyle = it.color ?? '#000000';
  g.fillStyle = it.color ?? '#000000';
  g.lineCap = 'round';
  g.lineJoin = 'round';
  g.globalAlpha = it.kind === 'highlighter' ? HIGHLIGHTER_ALPHA : 1;
  const w = it.width ?? 2;
  g.lineWidth = w;
  if (it.kind === 'pen' || it.kind === 'highlighter') {
    const p = it.pts ?? [];
    if (it.kind === 'highlighter' && p.length >= 6) {
      // One path, so overlapping segments do not darken the translucent ink.
      g.beginPath();
      g.moveTo(p[0], p[1]);
      for (let i = 3; i + 1 < p.length; i += 3) g.lineTo(p[i], p[i + 1]);
      g.stroke();
    } else {
      for (let i = 3; i + 2 < p.length; i += 3) {
        g.lineWidth = pressureWidth(w, p[i + 2]);
        g.beginPath();
        g.moveTo(p[i - 3], p[i - 2]);
        g.lineTo(p[i], p[i + 1]);
        g.stroke();
      }
    }
    if (p.length >= 3 && p.length < 6) {
      g.beginPath();
      g.arc(p[0], p[1], pressureWidth(w, p[2]) / 2, 0, Math.PI * 2);
      g.fill();
    }
  } else if (it.kind === 'rect') {
    g.strokeRect(Math.min(it.x1, it.x2), Math.min(it.y1, it.y2), Math.abs(it.x2 - it.x1), Math.abs(it.y2 - it.y1));
  } else if (it.kind === 'ellipse') {
    g.beginPath();
    g.ellipse((it.x1 + it.x2) / 2, (it.y1 + it.y2) / 2, Math.abs(it.x2 - it.x1) / 2, Math.abs(it.y2 - it.y1) / 2, 0, 0, Math.PI * 2);
    g.stroke();
  } else if (it.kind === 'line' || it.kind === 'arrow') {
    g.beginPath();
    g.moveTo(it.x1, it.y1);
    g.lineTo(it.x2, it.y2);
    if (it.kind === 'arrow') {
      for (const [bx, by] of arrowBarbs(it.x1, it.y1, it.x2, it.y2, w)) {
        g.moveTo(it.x2, it.y2);
        g.lineTo(bx, by);
      }
    }
    g.stroke();
  } else if (it.kind === 'text') {
    g.font = `${it.size ?? 32}px sans-serif`;
    g.textBaseline = 'top';
    g.fillText(it.text ?? '', it.x1, it.y1);
  }
  g.restore();
}

/**
 * Paint `page` of `board` on `g` (its transform already maps board units): white paper, the
 * background image `img` (if loaded) fitted in, then the items in paint order (each passed
 * through `map` first: the panel shows items being moved at their new place).
 */
export function paintPage(g, board, page, img, map = (it) => it) {
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, PAGE_W, PAGE_H);
  if (img) {
    const k = Math.min(PAGE_W / img.naturalWidth, PAGE_H / img.naturalHeight);
    g.drawImage(img, (PAGE_W - img.naturalWidth * k) / 2, (PAGE_H - img.naturalHeight * k) / 2, img.naturalWidth * k, img.naturalHeight * k);
  }
  for (const it of board.itemList(page)) paintItem(g, map(it));
}

/** A remote laser point: a red dot with a halo, `alpha` its fade. */
export function paintLaser(g, x, y, alpha) {
  g.save();
  g.globalAlpha = Math.max(0, Math.min(1, alpha));
  g.fillStyle = 'rgba(255, 0, 0, 0.3)';
  g.beginPath();
  g.arc(x, y, 18, 0, Math.PI * 2);
  g.fill();
  g.fillStyle = '#ff0000';
  g.beginPath();
  g.arc(x, y, 7, 0, Math.PI * 2);
  g.fill();
  g.restore();
}
