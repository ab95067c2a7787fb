// SPDX-License-Identifier: MIT OR Apache-2.0
//! The whiteboard document layout, read and written with `yrs` (the browser uses the same
//! layout with `yjs`; `docs/whiteboard.md` is the reference):
//!
//! - root map `pages`: page id → map `{order: number, bg?: string, bgw?: number, bgh?:
//!   number, author: string}`; pages are shown in ascending `order` (ties: by id). `bg` is
//!   the URL path of the page's background image (an imported document page).
//! - root map `items`: item id → map. What is fixed when an item is made is one entry `a`,
//!   a plain map (one Yjs value): `{page, kind, color, width, author, z}` and, for `line` /
//!   `arrow` / `rect` / `ellipse`, `x1, y1, x2, y2`; for `text`, `x1, y1` (top left) and
//!   `size`. What changes later has entries of its own: `pts` of `pen` / `highlighter`, an
//!   array of numbers `x, y, pressure, x, y, ...` appended while drawing; `text` of a text
//!   box; optional `dx, dy`, a move offset. Items are painted in ascending `z` (ties: by id).
//! - the shape before (boards saved before it still load): every attribute an entry of the
//!   item's map (`page`, `kind`, ..., `x1`, ...). Reading takes an entry of the map before
//!   the same key in `a`, so both shapes, and an entry set on a packed item, read the same.
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

/// Key of the entry holding an item's fixed attributes (one `Any` map).
pub const ATTRS: &str = "a";

/// An item's map and its fixed attributes `a` (empty for the shape before): a value is the
/// map's own entry if it has one, else the one in `a`.
struct Fields<'a, T: ReadTxn> {
    map: &'a MapRef,
    txn: &'a T,
    attrs: Option<std::sync::Arc<std::collections::HashMap<String, Any>>>,
}

impl<'a, T: ReadTxn> Fields<'a, T> {
    fn new(map: &'a MapRef, txn: &'a T) -> Self {
        let attrs = match map.get(txn, ATTRS) {
            Some(Out::Any(Any::Map(a))) => Some(a),
            _ => None,
        };
        Fields { map, txn, attrs }
    }

    fn any(&self, key: &str) -> Option<Any> {
        match self.map.get(self.txn, key) {
            Some(Out::Any(v)) => Some(v),
            Some(_) => None,
            None => self.attrs.as_ref()?.get(key).cloned(),
        }
    }

    fn num(&self, key: &str) -> Option<f64> {
        match self.any(key)? {
            Any::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        match self.any(key)? {
            Any::String(s) => Some(s.to_string()),
            _ => None,
        }
    }
}

fn read_item(id: &str, m: &MapRef, txn: &impl ReadTxn) -> Option<Item> {
    let fields = Fields::new(m, txn);
    let kind = Kind::parse(&fields.text("kind")?)?;
    let f = |k| fields.num(k).unwrap_or(0.0) as f32;
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
        page: fields.text("page").unwrap_or_default(),
        kind,
        color: fields.text("color").unwrap_or_else(|| "#000000".into()),
        width: fields.num("width").unwrap_or(3.0) as f32,
        author: fields.text("author").unwrap_or_default(),
        z: fields.num("z").unwrap_or(0.0),
        points,
        bounds: [f("x1"), f("y1"), f("x2"), f("y2")],
        text: fields.text("text").unwrap_or_default(),
        size: fields.num("size").unwrap_or(32.0) as f32,
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
            Out::YMap(m) if Fields::new(&m, txn).text("author").as_deref() == Some(user) => {
                Some(id.to_owned())
            }
            _ => None,
        })
        .collect()
}

/// Write `item` (replacing an item of the same id) in the packed shape: its fixed attributes
/// one entry `a`, then `pts` (freehand) or `text` (text box), and `dx, dy` when it is moved.
pub fn insert_item(txn: &mut TransactionMut, item: &Item) {
    let root = txn.get_or_insert_map(ITEMS);
    let mut attrs: Vec<(&str, Any)> = vec![
        ("page", item.page.as_str().into()),
        ("kind", item.kind.as_str().into()),
        ("color", item.color.as_str().into()),
        ("width", f64::from(item.width).into()),
        ("author", item.author.as_str().into()),
        ("z", item.z.into()),
    ];
    let mut fields: Vec<(&str, yrs::In)> = Vec::new();
    if item.kind.is_freehand() {
        let flat: Vec<f64> = item
            .points
            .iter()
            .flat_map(|p| p.iter().map(|v| f64::from(*v)))
            .collect();
        fields.push(("pts", ArrayPrelim::from(flat).into()));
    } else if item.kind == Kind::Text {
        attrs.push(("x1", f64::from(item.bounds[0]).into()));
        attrs.push(("y1", f64::from(item.bounds[1]).into()));
        attrs.push(("size", f64::from(item.size).into()));
        fields.push(("text", item.text.as_str().into()));
    } else {
        for (k, v) in ["x1", "y1", "x2", "y2"].iter().zip(item.bounds) {
            attrs.push((k, f64::from(v).into()));
        }
    }
    if item.offset != [0.0, 0.0] {
        fields.push(("dx", f64::from(item.offset[0]).into()));
        fields.push(("dy", f64::from(item.offset[1]).into()));
    }
    let attrs: std::collections::HashMap<String, Any> =
        attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    fields.push((ATTRS, Any::from(attrs).into()));
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

    /// `item` in the shape before the packed one: every attribute an entry of its map.
    fn insert_old_shape(txn: &mut TransactionMut, item: &Item) {
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
                .flatten()
                .map(|v| f64::from(*v))
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

    fn samples() -> Vec<Item> {
        let mut pen = Item::pen(
            "s",
            "p1",
            "ann",
            "#ff0000",
            4.0,
            &[[1.0, 2.0, 0.5], [3.5, 4.25, 1.0]],
        );
        pen.z = 1.0;
        pen.size = 32.0;
        let mut rect = Item::pen("r", "p1", "bob", "#00ff00", 2.0, &[]);
        rect.kind = Kind::Rect;
        rect.bounds = [10.0, 20.0, 30.0, 40.0];
        rect.z = 2.0;
        rect.size = 32.0;
        let mut text = Item::pen("t", "p2", "ann", "#0000ff", 1.0, &[]);
        text.kind = Kind::Text;
        text.bounds = [5.0, 6.0, 0.0, 0.0];
        text.text = "hello".into();
        text.size = 24.0;
        text.z = 3.0;
        vec![pen, rect, text]
    }

    #[test]
    fn a_board_in_the_shape_before_reads_like_the_packed_one() {
        let (old, new) = (Doc::new(), Doc::new());
        for it in samples() {
            insert_old_shape(&mut old.transact_mut(), &it);
            insert_item(&mut new.transact_mut(), &it);
        }
        let (old, new) = (old.transact(), new.transact());
        assert_eq!(items(&old, None), samples());
        assert_eq!(items(&new, None), samples());
        assert_eq!(items(&old, Some("p2")), items(&new, Some("p2")));
        for t in [&old, &new] {
            let mut ids = items_of(t, "ann");
            ids.sort();
            assert_eq!(ids, ["s", "t"]);
        }
    }

    #[test]
    fn packed_items_have_one_entry_of_fixed_attributes_and_own_entries_win() {
        let doc = Doc::new();
        let mut moved = samples().remove(1);
        moved.offset = [7.0, 8.0];
        insert_item(&mut doc.transact_mut(), &moved);
        insert_item(&mut doc.transact_mut(), &samples()[2]);
        let root = doc.get_or_insert_map(ITEMS);
        {
            let mut t = doc.transact_mut();
            let Some(Out::YMap(r)) = root.get(&t, "r") else {
                panic!("no r");
            };
            let mut keys: Vec<String> = r.keys(&t).map(str::to_owned).collect();
            keys.sort();
            assert_eq!(keys, [ATTRS, "dx", "dy"]);
            let Some(Out::YMap(tb)) = root.get(&t, "t") else {
                panic!("no t");
            };
            let mut keys: Vec<String> = tb.keys(&t).map(str::to_owned).collect();
            keys.sort();
            assert_eq!(keys, [ATTRS, "text"]);
            // An entry of the map (as an older client writes it) comes before `a`.
            r.insert(&mut t, "x1", 11.0);
            tb.insert(&mut t, "text", "edited");
        }
        let got = items(&doc.transact(), None);
        assert_eq!(got[0].bounds, [11.0, 20.0, 30.0, 40.0]);
        assert_eq!(got[0].offset, [7.0, 8.0]);
        assert_eq!(got[1].text, "edited");
        assert_eq!(got[1].size, 24.0);
    }
}
