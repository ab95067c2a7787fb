//! The pieces of a large whiteboard's join, in isolation (docs/benchmarks.md "Whiteboard"):
//! the server's encoding of the whole board (v1 and v2), base64 both ways, and yrs decoding
//! and applying it in a fresh document, with and without an update observer; the board is
//! the one `streamwire bench whiteboard` fills (strokes of 8 points).
//!
//! `cargo run --release --example whiteboard_profile -- 100000`
use base64::Engine;
use gststreamwire::whiteboard::{Item, insert_item};
use std::time::Instant;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

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
}
