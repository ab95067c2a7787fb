// SPDX-License-Identifier: MIT OR Apache-2.0
//! The whiteboard document shared by the Streamwire server, the `streamwire` library, the
//! browser client and `whiteboardsrc`: its layout in the Yjs CRDT ([`model`]), the painting
//! of a page ([`render`]) and the timestamped update log `whiteboardsrc` replays ([`log`]).
//!
//! ```
//! use gststreamwire::whiteboard::{insert_item, items, Item};
//! use yrs::{Doc, Transact};
//! let doc = Doc::new();
//! insert_item(&mut doc.transact_mut(), &Item::pen("s1", "p1", "ann", "#000000", 3.0, &[[0.0, 0.0, 0.5]]));
//! assert_eq!(items(&doc.transact(), Some("p1")).len(), 1);
//! ```

pub mod log;
pub mod model;
pub mod render;

pub use model::{
    Item, Kind, PAGE_HEIGHT, PAGE_WIDTH, Page, insert_item, insert_page, items, items_of, pages,
    remove_items,
};
pub use render::Canvas;
