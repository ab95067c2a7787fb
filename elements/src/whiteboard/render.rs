// SPDX-License-Identifier: MIT OR Apache-2.0
//! Painting one whiteboard page into an RGBA picture with `tiny-skia`: a white page, the
//! page's background image fitted into it, then the items in paint order. Text boxes are
//! not painted (there is no font rasteriser here); every other kind is.

use tiny_skia::{
    FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, PixmapPaint, Rect, Stroke, Transform,
};

use super::model::{Item, Kind, PAGE_HEIGHT, PAGE_WIDTH};

/// A picture being painted: `width × height` RGBA (every pixel opaque).
pub struct Canvas {
    pixmap: Pixmap,
    scale: f32,
    dx: f32,
    dy: f32,
}

impl Canvas {
    /// A white canvas; `None` for a zero size.
    ///
    /// ```
    /// use gststreamwire::whiteboard::{Canvas, Item};
    /// let mut c = Canvas::new(320, 180).unwrap();
    /// c.paint(&[Item::pen("s", "p1", "ann", "#ff0000", 20.0, &[[0.0, 450.0, 1.0], [1600.0, 450.0, 1.0]])]);
    /// let px = c.pixel(160, 90);
    /// assert!(px[0] > 200 && px[1] < 60, "{px:?}");
    /// ```
    pub fn new(width: u32, height: u32) -> Option<Canvas> {
        let mut pixmap = Pixmap::new(width, height)?;
        pixmap.fill(tiny_skia::Color::WHITE);
        // Fit the page (16:9) into the picture, centred.
        let scale = (width as f32 / PAGE_WIDTH).min(height as f32 / PAGE_HEIGHT);
        let dx = (width as f32 - PAGE_WIDTH * scale) / 2.0;
        let dy = (height as f32 - PAGE_HEIGHT * scale) / 2.0;
        Some(Canvas {
            pixmap,
            scale,
            dx,
            dy,
        })
    }

    /// Start over: white.
    pub fn clear(&mut self) {
        self.pixmap.fill(tiny_skia::Color::WHITE);
    }

    fn transform(&self) -> Transform {
        Transform::from_row(self.scale, 0.0, 0.0, self.scale, self.dx, self.dy)
    }

    /// Board coordinates to pixel coordinates.
    pub fn to_pixels(&self, x: f32, y: f32) -> (f32, f32) {
        (x * self.scale + self.dx, y * self.scale + self.dy)
    }

    /// Paint a background image (PNG bytes) fitted into the page; false when it cannot be
    /// decoded.
    pub fn background_png(&mut self, png: &[u8]) -> bool {
        let Ok(img) = Pixmap::decode_png(png) else {
            return false;
        };
        let s = (PAGE_WIDTH / img.width() as f32).min(PAGE_HEIGHT / img.height() as f32);
        let ox = (PAGE_WIDTH - img.width() as f32 * s) / 2.0;
        let oy = (PAGE_HEIGHT - img.height() as f32 * s) / 2.0;
        let t = self.transform().pre_translate(ox, oy).pre_scale(s, s);
        self.pixmap.draw_pixmap(
            0,
            0,
            img.as_ref(),
            &PixmapPaint {
                quality: tiny_skia::FilterQuality::Bilinear,
                ..PixmapPaint::default()
            },
            t,
            None,
        );
        true
    }

    /// Paint items in the given order.
    pub fn paint(&mut self, items: &[Item]) {
        for item in items {
            self.paint_item(item);
        }
    }

    fn paint_item(&mut self, item: &Item) {
        let [r, g, b] = item.rgb();
        let mut paint = Paint {
            anti_alias: true,
            ..Default::default()
        };
        let alpha = if item.kind == Kind::Highlighter {
            90
        } else {
            255
        };
        paint.set_color_rgba8(r, g, b, alpha);
        let t = self
            .transform()
            .pre_translate(item.offset[0], item.offset[1]);
        let width = item.width.max(0.5);
        let stroke = |w: f32| Stroke {
            width: w,
            line_cap: LineCap::Round,
            line_join: LineJoin::Round,
            ..Stroke::default()
        };
        let [x1, y1, x2, y2] = item.bounds;
        match item.kind {
            Kind::Pen | Kind::Highlighter => {
                let pts = &item.points;
                if pts.len() == 1 {
                    let w = width * pressure_factor(pts[0][2]);
                    if let Some(path) = PathBuilder::from_circle(pts[0][0], pts[0][1], w / 2.0) {
                        self.pixmap
                            .fill_path(&path, &paint, FillRule::Winding, t, None);
                    }
                    return;
                }
                if item.kind == Kind::Highlighter {
                    // One path, so overlapping segments do not darken the translucent ink.
                    let mut pb = PathBuilder::new();
                    for (i, p) in pts.iter().enumerate() {
                        if i == 0 {
                            pb.move_to(p[0], p[1]);
                        } else {
                            pb.line_to(p[0], p[1]);
                        }
                    }
                    if let Some(path) = pb.finish() {
                        self.pixmap
                            .stroke_path(&path, &paint, &stroke(width), t, None);
                    }
                    return;
                }
                // Pressure varies the width per segment.
                for w in pts.windows(2) {
                    let mut pb = PathBuilder::new();
                    pb.move_to(w[0][0], w[0][1]);
                    pb.line_to(w[1][0], w[1][1]);
                    let pw = width * pressure_factor((w[0][2] + w[1][2]) / 2.0);
                    if let Some(path) = pb.finish() {
                        self.pixmap.stroke_path(&path, &paint, &stroke(pw), t, None);
                    }
                }
            }
            Kind::Line | Kind::Arrow => {
                let mut pb = PathBuilder::new();
                pb.move_to(x1, y1);
                pb.line_to(x2, y2);
                if item.kind == Kind::Arrow {
                    let (ux, uy) = (x2 - x1, y2 - y1);
                    let len = (ux * ux + uy * uy).sqrt().max(1e-3);
                    let (ux, uy) = (ux / len, uy / len);
                    let head = (width * 4.0).max(12.0);
                    for side in [-1.0f32, 1.0] {
                        pb.move_to(x2, y2);
                        pb.line_to(
                            x2 - head * ux + side * head * 0.5 * uy,
                            y2 - head * uy - side * head * 0.5 * ux,
                        );
                    }
                }
                if let Some(path) = pb.finish() {
                    self.pixmap
                        .stroke_path(&path, &paint, &stroke(width), t, None);
                }
            }
            Kind::Rect | Kind::Ellipse => {
                let Some(rect) = Rect::from_ltrb(x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2))
                else {
                    return;
                };
                let path = if item.kind == Kind::Rect {
                    Some(PathBuilder::from_rect(rect))
                } else {
                    PathBuilder::from_oval(rect)
                };
                if let Some(path) = path {
                    self.pixmap
                        .stroke_path(&path, &paint, &stroke(width), t, None);
                }
            }
            Kind::Text => {}
        }
    }

    /// The RGBA bytes, row after row (`width * 4` bytes each).
    pub fn data(&self) -> &[u8] {
        self.pixmap.data()
    }

    /// One pixel's RGBA.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * self.pixmap.width() + x) * 4) as usize;
        let d = self.pixmap.data();
        [d[i], d[i + 1], d[i + 2], d[i + 3]]
    }

    /// The picture as PNG.
    pub fn png(&self) -> Result<Vec<u8>, String> {
        self.pixmap.encode_png().map_err(|e| e.to_string())
    }
}

/// Width factor for a pressure of 0..1: 0.5 (light) to 1.5 (full); 0.5 (a mouse) gives 1.
fn pressure_factor(p: f32) -> f32 {
    0.5 + p.clamp(0.0, 1.0)
}
