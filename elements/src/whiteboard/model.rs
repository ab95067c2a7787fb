// SPDX-License-Identifier: MIT OR Apache-2.0
//! The whiteboard document layout, read and written with `yrs` (the browser uses the same
//! layout with `yjs`; `docs/whiteboard.md` is the reference):
//!
//! - root map `pages`: page id → map `{order: number, bg?: string, bgw?: number, bgh?:
//!   number, author: string}`; pages are shown in ascending `order` (ties: by id). `bg` is
//!   the URL path of the page's background image (an imported document page).
//! - root map `items`: item id → map `{page, kind, color, width, author, z, ...}` with, by
//!   `kind`: `pen` / `highlighter`: `pts`, an array of numbers `x, y, pressure, x, y, ...`
//!   appended while drawing; `line` / `arrow` / `rect` / `ellipse`: `x1, y1, x2, y2`;
//!   `text`: `x1, y1` (top left), `text`, `size`. Optional `dx, dy`: a move offset.
//!   Items are painted in ascending `z` (ties: by id).
//!
//! Coordinates are board units on a page of [`PAGE_WIDTH`] × [`PAGE_HEIGHT`].

use yrs::{
    Any, Array, ArrayPrelim, Map, MapPrelim, MapRef, Out, ReadTxn, TransactionMut, WriteTxn,
};

/// Page width in board units.
pub const PAGE_WIDTH: f32 = 1600.0;
/// Page height in board units.
pub const PAGE_HEIGHT: f32 = 900.0;
/// Name of the root map of pages.
pub const PAGES: &str = "pages";
/// Name of the root map of items.
pub const ITEMS: &str = "items";

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Freehand stroke.
    Pen,
    /// Freehand, translucent and wide.
    Highlighter,
    /// Straight line.
    Line,
    /// Line with an arrow head at its end.
    Arrow,
    /// Rectangle outline.
    Rect,
    /// Ellipse outline inside the box.
    Ellipse,
    /// A text box.
    Text,
}

impl Kind {
    /// The wire name (`pen`, `highlighter`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pen => "pen",
            Kind::Highlighter => "highlighter",
            Kind::Line => "line",
            Kind::Arrow => "arrow",
            Kind::Rect => "rect",
            Kind::Ellipse => "ellipse",
            Kind::Text => "text",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::Pen,
            Kind::Highlighter,
            Kind::Line,
            Kind::Arrow,
            Kind::Rect,
            Kind::Ellipse,
            Kind::Text,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Freehand kinds carry `pts`.
    pub fn is_freehand(self) -> bool {
        matches!(self, Kind::Pen | Kind::Highlighter)
    }
}

/// One item of a page.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Item id (key in `items`).
    pub id: String,
    /// Page id.
    pub page: String,
    /// What it is.
    pub kind: Kind,
    /// `#rrggbb`.
    pub color: String,
    /// Line width, board units.
    pub width: f32,
    /// User id (token `sub`) of who drew it.
    pub author: String,
    /// Paint order.
    pub z: f64,
    /// Freehand points `(x, y, pressure 0..1)`.
    pub points: Vec<[f32; 3]>,
    /// Shape box or line ends `(x1, y1, x2, y2)`; text: top left in the first two.
    pub bounds: [f32; 4],
    /// Text of a text box.
    pub text: String,
    /// Text size, board units.
    pub size: f32,
    /// Move offset.
    pub offset: [f32; 2],
}

impl Item {
    /// A new freehand pen stroke.
    ///
    /// ```
    /// let s = gststreamwire::whiteboard::Item::pen("s1", "p1", "ann", "#ff0000", 4.0, &[[10.0, 10.0, 0.5], [50.0, 50.0, 0.5]]);
    /// assert_eq!(s.points.len(), 2);
    /// ```
    pub fn pen(
        id: &str,
        page: &str,
        author: &str,
        color: &str,
        width: f32,
        points: &[[f32; 3]],
    ) -> Item {
        Item {
            id: id.into(),
            page: page.into(),
            kind: Kind::Pen,
            color: color.into(),
            width,
            author: author.into(),
            z: 0.0,
            points: points.to_vec(),
            bounds: [0.0; 4],
            text: String::new(),
            size: 0.0,
            offset: [0.0; 2],
        }
    }

    /// `#rrggbb` as RGB bytes (black when malformed).
    pub fn rgb(&self) -> [u8; 3] {
        parse_color(&self.color).unwrap_or([0, 0, 0])
    }
}

/// Parse `#rrggbb`.
pub fn parse_color(s: &str) -> Option<[u8; 3]> {
    let h = s.strip_prefix('#')?;
    if h.len() != 6 {
        return None;
    }
    let v = u32::from_str_radix(h, 16).ok()?;
    Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

/// One page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Page id (key in `pages`).
    pub id: String,
    /// Sort key.
    pub order: f64,
    /// URL path of the background image, if any.
    pub background: Option<String>,
    /// Background size in pixels.
    pub background_size: (u32, u32),
    /// Who added it.
    pub author: String,
}

fn num(m: &MapRef, txn: &impl ReadTxn, key: &str) -> Option<f64> {
    match m.get(txn, key)? {
        Out::Any(Any::Number(n)) => n.as_f64(),
        _ => None,
    }
}

fn text(m: &MapRef, txn: &impl ReadTxn, key: &str) -> Option<String> {
    match m.get(txn, key)? {
        Out::Any(Any::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// Every page, in display order.
pub fn pages(txn: &impl ReadTxn) -> Vec<Page> {
    let Some(root) = txn.get_map(PAGES) else {
        return Vec::new();
    };
    let mut out: Vec<Page> = root
        .iter(txn)
        .filter_map(|(id, v)| match v {
            Out::YMap(m) => Some(Page {
                id: id.to_owned(),
                order: num(&m, txn, "order").unwrap_or(0.0),
                background: text(&m, txn, "bg"),
                background_size: (
                    num(&m, txn, "bgw").unwrap_or(0.0) as u32,
                    num(&m, txn, "bgh").unwrap_or(0.0) as u32,
                ),
                author: text(&m, txn, "author").unwrap_or_default(),
            }),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.order.total_cmp(&b.order).then_with(|| a.id.cmp(&b.id)));
    out
}

fn read_item(id: &str, m: &MapRef, txn: &impl ReadTxn) -> Option<Item> {
    let kind = Kind::parse(&text(m, txn, "kind")?)?;
    let f = |k| num(m, txn, k).unwrap_or(0.0) as f32;
    let mut points = Vec::new();
    if let Some(Out::YArray(a)) = m.get(txn, "pts") {
        let mut flat = a.iter(txn).filter_map(|v| match v {
            Out::Any(Any::Number(n)) => n.as_f64().map(|v| v as f32),
            _ => None,
        });
        while let (Some(x), Some(y), Some(p)) = (flat.next(), flat.next(), flat.next()) {
            points.push([x, y, p]);
        }
    }
    Some(Item {
        id: id.to_owned(),
        page: text(m, txn, "page").unwrap_or_default(),
        kind,
        color: text(m, txn, "color").unwrap_or_else(|| "#000000".into()),
        width: num(m, txn, "width").unwrap_or(3.0) as f32,
        author: text(m, txn, "author").unwrap_or_default(),
        z: num(m, txn, "z").unwrap_or(0.0),
        points,
        bounds: [f("x1"), f("y1"), f("x2"), f("y2")],
        text: text(m, txn, "text").unwrap_or_default(),
        size: num(m, txn, "size").unwrap_or(32.0) as f32,
        offset: [f("dx"), f("dy")],
    })
}

/// The items of `page` (every page when `None`), in paint order.
pub fn items(txn: &impl ReadTxn, page: Option<&str>) -> Vec<Item> {
    let Some(root) = txn.get_map(ITEMS) else {
        return Vec::new();
    };
    let mut out: Vec<Item> = root
        .iter(txn)
        .filter_map(|(id, v)| match v {
            Out::YMap(m) => read_item(id, &m, txn),
            _ => None,
        })
        .filter(|i| page.is_none_or(|p| i.page == p))
        .collect();
    out.sort_by(|a, b| a.z.total_cmp(&b.z).then_with(|| a.id.cmp(&b.id)));
    out
}

/// Ids of the items authored by `user`.
pub fn items_of(txn: &impl ReadTxn, user: &str) -> Vec<String> {
    let Some(root) = txn.get_map(ITEMS) else {
        return Vec::new();
    };
    root.iter(txn)
        .filter_map(|(id, v)| match v {
            Out::YMap(m) if text(&m, txn, "author").as_deref() == Some(user) => Some(id.to_owned()),
            _ => None,
        })
        .collect()
}

/// Write `item` (replacing an item of the same id).
pub fn insert_item(txn: &mut TransactionMut, item: &Item) {
    let root = txn.get_or_insert_map(ITEMS);
    let mut fields: Vec<(&str, yrs::In)> = vec![
        ("page", item.page.as_str().into()),
        ("kind", item.kind.as_str().into()),
        ("color", item.color.as_str().into()),
        ("width", f64::from(item.width).into()),
        ("author", item.author.as_str().into()),
        ("z", item.z.into()),
    ];
    if item.kind.is_freehand() {
        let flat: Vec<f64> = item
            .points
            .iter()
            .flat_map(|p| p.iter().map(|v| f64::from(*v)))
            .collect();
        fields.push(("pts", ArrayPrelim::from(flat).into()));
    } else {
        for (k, v) in ["x1", "y1", "x2", "y2"].iter().zip(item.bounds) {
            fields.push((k, f64::from(v).into()));
        }
    }
    if item.kind == Kind::Text {
        fields.push(("text", item.text.as_str().into()));
        fields.push(("size", f64::from(item.size).into()));
    }
    root.insert(txn, item.id.as_str(), MapPrelim::from_iter(fields));
}

/// Add a page; `background` is the URL path and pixel size of its background image.
pub fn insert_page(
    txn: &mut TransactionMut,
    id: &str,
    order: f64,
    author: &str,
    background: Option<(&str, u32, u32)>,
) {
    let root = txn.get_or_insert_map(PAGES);
    let mut fields: Vec<(&str, yrs::In)> = vec![("order", order.into()), ("author", author.into())];
    if let Some((bg, w, h)) = background {
        fields.push(("bg", bg.into()));
        fields.push(("bgw", f64::from(w).into()));
        fields.push(("bgh", f64::from(h).into()));
    }
    root.insert(txn, id, MapPrelim::from_iter(fields));
}

/// Remove items by id; returns how many existed.
pub fn remove_items(txn: &mut TransactionMut, ids: &[String]) -> usize {
    let root = txn.get_or_insert_map(ITEMS);
    ids.iter()
        .filter(|id| root.remove(txn, id).is_some())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, Transact};

    #[test]
    fn items_round_trip_in_paint_order() {
        let doc = Doc::new();
        {
            let mut t = doc.transact_mut();
            let mut a = Item::pen("b", "p1", "ann", "#00ff00", 2.0, &[[1.0, 2.0, 0.5]]);
            a.z = 2.0;
            insert_item(&mut t, &a);
            let mut r = Item::pen("a", "p1", "bob", "#0000ff", 3.0, &[]);
            r.kind = Kind::Rect;
            r.bounds = [1.0, 2.0, 3.0, 4.0];
            r.z = 1.0;
            insert_item(&mut t, &r);
            insert_page(&mut t, "p1", 1.0, "ann", Some(("/bg.png", 10, 20)));
        }
        let t = doc.transact();
        let got = items(&t, Some("p1"));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].kind, Kind::Rect);
        assert_eq!(got[0].bounds, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(got[1].points, vec![[1.0, 2.0, 0.5]]);
        assert_eq!(got[1].rgb(), [0, 255, 0]);
        assert_eq!(items_of(&t, "bob"), vec!["a".to_string()]);
        let p = pages(&t);
        assert_eq!(p[0].background.as_deref(), Some("/bg.png"));
        assert_eq!(p[0].background_size, (10, 20));
    }
}
