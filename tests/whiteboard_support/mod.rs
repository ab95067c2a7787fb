//! Rust members of a room's whiteboard through a real server, for the whiteboard tests.

#![allow(dead_code)]

use std::time::Duration;

use gststreamwire::whiteboard::Item;
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::{ErrorCode, Grant};
use streamwire::whiteboard::Whiteboard;
use tokio::sync::mpsc;

use super::common::*;

/// A member with its board open; the client's events are routed to the board, the server's
/// errors to `errors`.
pub struct Member {
    pub client: Client,
    pub board: Whiteboard,
    pub errors: mpsc::UnboundedReceiver<(ErrorCode, String, Option<String>)>,
}

pub async fn member(url: &str, room: &str, user: &str, grants: &[Grant]) -> Member {
    let mut cfg = ClientConfig::new(url, room, &token(room, user, grants));
    cfg.backoff_initial = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(200);
    let (client, mut events) = within("connect", Client::connect(cfg)).await.unwrap();
    let board = Whiteboard::open(&client, "main", user).unwrap();
    let (tx, errors) = mpsc::unbounded_channel();
    let b = board.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                Event::Whiteboard { board, data, .. } if board == "main" => {
                    b.receive(&data).unwrap()
                }
                Event::ServerError {
                    code,
                    message,
                    in_type,
                    ..
                } => {
                    let _ = tx.send((code, message, in_type));
                }
                _ => {}
            }
        }
    });
    within("synced", board.synced()).await;
    Member {
        client,
        board,
        errors,
    }
}

pub fn stroke(id: &str, author: &str, x: f32) -> Item {
    Item::pen(
        id,
        "p1",
        author,
        "#d00000",
        4.0,
        &[[x, 100.0, 0.5], [x + 50.0, 200.0, 0.5]],
    )
}

/// Wait until `board` holds exactly the items `ids` (sorted), or fail naming what it holds.
pub async fn until_items(what: &str, board: &Whiteboard, ids: &[&str]) {
    let want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let mut got: Vec<String> = board.items(None).into_iter().map(|i| i.id).collect();
        got.sort();
        if got == want {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{what}: board holds {got:?}, expected {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn next_error(m: &mut Member) -> (ErrorCode, String, Option<String>) {
    within("server error", m.errors.recv()).await.unwrap()
}

pub const DRAW: &[Grant] = &[Grant::Draw];
pub const VIEW: &[Grant] = &[Grant::Subscribe];
pub const PRESENTER: &[Grant] = &[Grant::Draw, Grant::Admin];
