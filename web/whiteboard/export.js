// Export of the whiteboard: a page as PNG (1600 × 900 pixels, one per board unit) or SVG
// (one element per item), the whole board as a PDF (one page per board page, each an
// embedded JPEG). docs/whiteboard.md, "Export".
import { PAGE_W, PAGE_H } from './board.js';
import { paintPage, arrowBarbs, pressureWidth, HIGHLIGHTER_ALPHA } from './paint.js';

/** PDF page size in points (the 16:9 board page at 0.6 pt per board unit). */
export const PDF_PAGE_PT = [960, 540];

/** JPEG quality of the PDF's page images. */
export const PDF_JPEG_QUALITY = 0.9;

/**
 * `background(url)`: a Promise of the loaded page background image (or null); the panel
 * passes its cache. Without it, pages are exported without their background.
 */
async function pageCanvas(board, page, background) {
  const c = document.createElement('canvas');
  c.width = PAGE_W;
  c.height = PAGE_H;
  const bg = board.pageList().find((p) => p.id === page)?.bg;
  const img = bg && background ? await background(bg) : null;
  paintPage(c.getContext('2d'), board, page, img);
  return c;
}

function toBlob(canvas, type, quality) {
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error(`${type} encoding failed`))), type, quality));
}

/** Page `page` of `board` as a PNG Blob of PAGE_W × PAGE_H pixels. */
export async function pagePng(board, page, { background } = {}) {
  return toBlob(await pageCanvas(board, page, background), 'image/png');
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v) => (Number.isFinite(v) ? Math.round(v * 10) / 10 : 0);
const colour = (c) => (/^#[0-9a-fA-F]{6}$/.test(c ?? '') ? c : '#000000');

/** One SVG element for item `it`. */
function svgItem(it) {
  const id = `data-id="${esc(it.id)}"`;
  const move = it.dx || it.dy ? ` transform="translate(${num(it.dx ?? 0)} ${num(it.dy ?? 0)})"` : '';
  const w = it.width ?? 2;
  const line = `fill="none" stroke="${colour(it.color)}" stroke-width="${num(w)}" stroke-linecap="round" stroke-linejoin="round"`;
  switch (it.kind) {
    case 'pen':
    case 'highlighter': {
      const p = it.pts ?? [];
      let d = '';
      let pressure = 0;
      for (let i = 0; i + 1 < p.length; i += 3) {
        d += `${i ? 'L' : 'M'}${num(p[i])} ${num(p[i + 1])}`;
        pressure += p[i + 2] ?? 0.5;
      }
      if (p.length === 3) d += 'l0 0'; // a dot: the round cap paints it
      const n = Math.max(1, Math.floor(p.length / 3));
      const width = it.kind === 'pen' ? pressureWidth(w, pressure / n) : w;
      const alpha = it.kind === 'highlighter' ? ` stroke-opacity="${HIGHLIGHTER_ALPHA}"` : '';
      return `<path ${id} d="${d}" fill="none" stroke="${colour(it.color)}" stroke-width="${num(width)}" stroke-linecap="round" stroke-linejoin="round"${alpha}${move}/>`;
    }
    case 'line':
      return `<line ${id} x1="${num(it.x1)}" y1="${num(it.y1)}" x2="${num(it.x2)}" y2="${num(it.y2)}" ${line}${move}/>`;
    case 'arrow': {
      const barbs = arrowBarbs(it.x1, it.y1, it.x2, it.y2, w).map(([x, y]) => `M${num(it.x2)} ${num(it.y2)}L${num(x)} ${num(y)}`).join('');
      return `<path ${id} d="M${num(it.x1)} ${num(it.y1)}L${num(it.x2)} ${num(it.y2)}${barbs}" ${line}${move}/>`;
    }
    case 'rect':
      return `<rect ${id} x="${num(Math.min(it.x1, it.x2))}" y="${num(Math.min(it.y1, it.y2))}" width="${num(Math.abs(it.x2 - it.x1))}" height="${num(Math.abs(it.y2 - it.y1))}" ${line}${move}/>`;
    case 'ellipse':
      return `<ellipse ${id} cx="${num((it.x1 + it.x2) / 2)}" cy="${num((it.y1 + it.y2) / 2)}" rx="${num(Math.abs(it.x2 - it.x1) / 2)}" ry="${num(Math.abs(it.y2 - it.y1) / 2)}" ${line}${move}/>`;
    case 'text':
      return `<text ${id} x="${num(it.x1)}" y="${num(it.y1)}" font-family="sans-serif" font-size="${num(it.size ?? 32)}" dominant-baseline="hanging" fill="${colour(it.color)}"${move}>${esc(it.text ?? '')}</text>`;
    default:
      return `<g ${id}/>`; // a kind this version does not know: kept as an empty element
  }
}

/**
 * Page `page` of `board` as an SVG document (a string): a white background `<rect>`, the page
 * background as an embedded `<image>` if `background` gives it, then one element per item
 * in paint order, each with `data-id` the item id.
 */
export async function pageSvg(board, page, { background } = {}) {
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${PAGE_W}" height="${PAGE_H}" viewBox="0 0 ${PAGE_W} ${PAGE_H}">`, `<rect width="${PAGE_W}" height="${PAGE_H}" fill="#ffffff"/>`];
  const bg = board.pageList().find((p) => p.id === page)?.bg;
  const img = bg && background ? await background(bg) : null;
  if (img) {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    c.getContext('2d').drawImage(img, 0, 0);
    const k = Math.min(PAGE_W / img.naturalWidth, PAGE_H / img.naturalHeight);
    const w = img.naturalWidth * k, h = img.naturalHeight * k;
    parts.push(`<image x="${num((PAGE_W - w) / 2)}" y="${num((PAGE_H - h) / 2)}" width="${num(w)}" height="${num(h)}" href="${c.toDataURL('image/png')}"/>`);
  }
  for (const it of board.itemList(page)) parts.push(svgItem(it));
  parts.push('</svg>');
  return parts.join('\n');
}

/**
 * The whole board as a PDF (a Uint8Array): one PDF_PAGE_PT page per board page, in page
 * order, each the page painted as a PAGE_W × PAGE_H JPEG (DCTDecode). Written by hand: a
 * catalog, a page tree, per page a page, its image and its content stream, and the xref.
 */
export async function boardPdf(board, { background } = {}) {
  const images = [];
  for (const p of board.pageList()) {
    const blob = await toBlob(await pageCanvas(board, p.id, background), 'image/jpeg', PDF_JPEG_QUALITY);
    images.push(new Uint8Array(await blob.arrayBuffer()));
  }
  const enc = new TextEncoder();
  const chunks = [];
  const offsets = [];
  let size = 0;
  const put = (x) => {
    const b = typeof x === 'string' ? enc.encode(x) : x;
    chunks.push(b);
    size += b.length;
  };
  const obj = (n, body) => {
    offsets[n] = size;
    put(`${n} 0 obj\n`);
    for (const part of body) put(part);
    put('\nendobj\n');
  };
  put('%PDF-1.4\n');
  const [pw, ph] = PDF_PAGE_PT;
  const kids = images.map((_, i) => `${3 + 3 * i} 0 R`).join(' ');
  obj(1, ['<< /Type /Catalog /Pages 2 0 R >>']);
  obj(2, [`<< /Type /Pages /Kids [${kids}] /Count ${images.length} >>`]);
  images.forEach((jpeg, i) => {
    const page = 3 + 3 * i, image = page + 1, content = page + 2;
    obj(page, [`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${pw} ${ph}] /Resources << /XObject << /Im0 ${image} 0 R >> >> /Contents ${content} 0 R >>`]);
    obj(image, [`<< /Type /XObject /Subtype /Image /Width ${PAGE_W} /Height ${PAGE_H} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length ${jpeg.length} >>\nstream\n`, jpeg, '\nendstream']);
    const draw = `q ${pw} 0 0 ${ph} 0 0 cm /Im0 Do Q`;
    obj(content, [`<< /Length ${draw.length} >>\nstream\n${draw}\nendstream`]);
  });
  const count = 3 + 3 * images.length;
  const xref = size;
  let table = `xref\n0 ${count}\n0000000000 65535 f \n`;
  for (let n = 1; n < count; n++) table += `${String(offsets[n]).padStart(10, '0')} 00000 n \n`;
  put(`${table}trailer\n<< /Size ${count} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

/** Offer `data` (a Blob, string or bytes) as a download named `name`. */
export function download(data, name, type) {
  const blob = data instanceof Blob ? data : new Blob([data], { type });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
