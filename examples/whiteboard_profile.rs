//! The pieces of a large whiteboard's join, in isolation (docs/benchmarks.md "Whiteboard"):
//! the server's encoding of the whole board (v1 and v2), base64 both ways, and yrs decoding
//! and applying it in a fresh document, with and without an update observer; the board is
//! the one `streamwire bench whiteboard` fills (strokes of 8 points).
//!
//!
//! Then it compares layouts of a stroke on the same board (`compare`): bytes per stroke and the
//! joiner's decode and apply, with the observer the library's `Whiteboard` has (transaction
//! cleanup) and with an `observe_update_v1` one.
//!
//! `cargo run --release --example whiteboard_profile -- 100000 [runs]`
use base64::Engine;
use gststreamwire::whiteboard::model::ITEMS;
use gststreamwire::whiteboard::{Item, insert_item};
use std::collections::HashMap;
use std::time::Instant;
use yrs::updates::decoder::Decode;
use yrs::{
    Any, ArrayPrelim, Doc, Map, MapPrelim, ReadTxn, StateVector, Transact, Update, WriteTxn,
};

/// The stroke `bench whiteboard` draws (src/bench/whiteboard.rs `stroke`, there without an author;
/// the benchmark lives in the binary, not the library).
fn stroke(id: String, i: usize) -> Item {
    let x = (i % 1500) as f32;
    let y = ((i / 1500) % 800) as f32;
    let pts: Vec<[f32; 3]> = (0..8)
        .map(|k| [x + k as f32 * 4.0, y + k as f32 * 2.0, 0.5])
        .collect();
    Item::pen(&id, "p1", "writer", "#1f1f1f", 3.0, &pts)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let doc = Doc::new();
    for b in 0..n / 200 {
        let mut t = doc.transact_mut();
        for i in b * 200..(b + 1) * 200 {
            let mut it = stroke(format!("s{i}"), i);
            it.z = i as f64;
            insert_item(&mut t, &it);
        }
    }
    let t = Instant::now();
    let v1 = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    println!("encode v1 {:?} {} bytes", t.elapsed(), v1.len());
    let t = Instant::now();
    let v2 = doc
        .transact()
        .encode_state_as_update_v2(&StateVector::default());
    println!("encode v2 {:?} {} bytes", t.elapsed(), v2.len());
    let t = Instant::now();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&v1);
    println!("b64 v1 {:?} {} chars", t.elapsed(), b64.len());
    let t = Instant::now();
    let _ = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .unwrap();
    println!("unb64 v1 {:?}", t.elapsed());
    let t = Instant::now();
    let u = Update::decode_v1(&v1).unwrap();
    println!("decode v1 {:?}", t.elapsed());
    let d = Doc::new();
    let t = Instant::now();
    d.transact_mut().apply_update(u).unwrap();
    println!("apply v1 {:?}", t.elapsed());
    let d3 = Doc::new();
    d3.observe_update_v1("k", |_, e: &yrs::UpdateEvent| {
        std::hint::black_box(e.update.len());
    })
    .unwrap();
    let t = Instant::now();
    let u = Update::decode_v1(&v1).unwrap();
    d3.transact_mut().apply_update(u).unwrap();
    println!("decode+apply v1 with update observer {:?}", t.elapsed());
    let t = Instant::now();
    let u = Update::decode_v2(&v2).unwrap();
    println!("decode v2 {:?}", t.elapsed());
    let d2 = Doc::new();
    let t = Instant::now();
    d2.transact_mut().apply_update(u).unwrap();
    println!("apply v2 {:?}", t.elapsed());
    let t = Instant::now();
    let items = gststreamwire::whiteboard::items(&d.transact(), None);
    println!("items() {:?} {}", t.elapsed(), items.len());
    let t = Instant::now();
    let sv = d.transact().state_vector();
    println!("sv {:?} {:?}", t.elapsed(), sv.len());
    compare(n, runs);
}

/// How many strokes a layout writes per transaction (as `bench whiteboard` does).
const BATCH: usize = 200;

/// The fixed attributes of `it` (and `z`) as one `Any` map.
fn attrs(it: &Item) -> HashMap<String, Any> {
    HashMap::from([
        ("page".to_owned(), Any::from(it.page.as_str())),
        ("kind".to_owned(), Any::from(it.kind.as_str())),
        ("color".to_owned(), Any::from(it.color.as_str())),
        ("width".to_owned(), Any::from(f64::from(it.width))),
        ("author".to_owned(), Any::from(it.author.as_str())),
        ("z".to_owned(), Any::from(it.z)),
    ])
}

fn flat(it: &Item) -> Vec<f64> {
    it.points
        .iter()
        .flat_map(|p| p.iter().map(|v| f64::from(*v)))
        .collect()
}

/// The layout before the packed one (one map entry per attribute), as the model wrote it.
fn old_shape(t: &mut yrs::TransactionMut, it: &Item) {
    let root = t.get_or_insert_map(ITEMS);
    let fields: Vec<(&str, yrs::In)> = vec![
        ("page", it.page.as_str().into()),
        ("kind", it.kind.as_str().into()),
        ("color", it.color.as_str().into()),
        ("width", f64::from(it.width).into()),
        ("author", it.author.as_str().into()),
        ("z", it.z.into()),
        ("pts", ArrayPrelim::from(flat(it)).into()),
    ];
    root.insert(t, it.id.as_str(), MapPrelim::from_iter(fields));
}

/// The candidate layouts: name, and how it writes one stroke.
type Writer = fn(&mut yrs::TransactionMut, &Item);
const LAYOUTS: [(&str, Writer); 4] = [
    ("before: Y.Map of 7 entries, pts a Y.Array", old_shape),
    ("packed: Y.Map {a: Any map, pts: Y.Array}", |t, it| {
        let root = t.get_or_insert_map(ITEMS);
        let fields: Vec<(&str, yrs::In)> = vec![
            ("a", Any::from(attrs(it)).into()),
            ("pts", ArrayPrelim::from(flat(it)).into()),
        ];
        root.insert(t, it.id.as_str(), MapPrelim::from_iter(fields));
    }),
    ("one Any map, pts an Any array of numbers", |t, it| {
        let root = t.get_or_insert_map(ITEMS);
        let mut m = attrs(it);
        let pts: Vec<Any> = flat(it).into_iter().map(Any::from).collect();
        m.insert("pts".to_owned(), Any::from(pts));
        root.insert(t, it.id.as_str(), Any::from(m));
    }),
    ("one Any map, pts a buffer of f32 LE", |t, it| {
        let root = t.get_or_insert_map(ITEMS);
        let mut m = attrs(it);
        let bytes: Vec<u8> = it
            .points
            .iter()
            .flat_map(|p| p.iter().flat_map(|v| v.to_le_bytes()))
            .collect();
        m.insert("pts".to_owned(), Any::Buffer(bytes.into()));
        root.insert(t, it.id.as_str(), Any::from(m));
    }),
];

/// Fill a board of `n` strokes with `write`, then time the joiner's side: decode and apply
/// the whole v1 update in a fresh document (with the library's transaction-cleanup observer,
/// as `Whiteboard` has, and with an `observe_update_v1` observer); median of `runs`.
fn compare(n: usize, runs: usize) {
    println!(
        "layout | bytes/stroke | clock | decode ms | apply ms | decode+apply, cleanup observer ms | decode+apply, update observer ms"
    );
    for (name, write) in LAYOUTS {
        let doc = Doc::new();
        for b in 0..n / BATCH {
            let mut t = doc.transact_mut();
            for i in b * BATCH..(b + 1) * BATCH {
                let mut it = stroke(format!("s{i}"), i);
                it.z = i as f64;
                write(&mut t, &it);
            }
        }
        let v1 = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let blocks: u32 = doc.transact().state_vector().iter().map(|(_, c)| *c).sum();
        let (mut dec, mut app, mut clean, mut upd) = (vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            let t = Instant::now();
            let u = Update::decode_v1(&v1).unwrap();
            dec.push(t.elapsed());
            let d = Doc::new();
            let t = Instant::now();
            d.transact_mut().apply_update(u).unwrap();
            app.push(t.elapsed());
            let d = Doc::new();
            d.observe_transaction_cleanup("k", |txn, _| {
                std::hint::black_box(txn.before_state() != txn.after_state());
            })
            .unwrap();
            let t = Instant::now();
            let u = Update::decode_v1(&v1).unwrap();
            d.transact_mut().apply_update(u).unwrap();
            clean.push(t.elapsed());
            let d = Doc::new();
            d.observe_update_v1("k", |_, e: &yrs::UpdateEvent| {
                std::hint::black_box(e.update.len());
            })
            .unwrap();
            let t = Instant::now();
            let u = Update::decode_v1(&v1).unwrap();
            d.transact_mut().apply_update(u).unwrap();
            upd.push(t.elapsed());
        }
        let med = |v: &mut Vec<std::time::Duration>| {
            v.sort();
            v[v.len() / 2].as_secs_f64() * 1000.0
        };
        println!(
            "{name} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0}",
            v1.len() / n,
            blocks,
            med(&mut dec),
            med(&mut app),
            med(&mut clean),
            med(&mut upd)
        );
    }
}
