//! `Session::whiteboard()` against a real server: a session (a bot) annotates the room's
//! board, a bare member sees it with the session's user as author, and the session observes
//! the member's stroke.
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test whiteboard_session'

mod common;

use std::time::Duration;

use common::*;
use gststreamwire::whiteboard::Item;
use streamwire::session::{Session, SessionConfig};
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::Grant;
use streamwire::whiteboard::Whiteboard;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_draws_on_and_observes_the_rooms_board() {
    let srv = start(config()).await;
    let (session, _events) = within(
        "session join",
        Session::join(SessionConfig::loopback(
            &srv.url,
            "wbs",
            &token("wbs", "bot", &[Grant::Draw, Grant::Subscribe]),
        )),
    )
    .await
    .unwrap();
    let board = session.whiteboard("main").unwrap();
    // The same handle on a second call.
    assert_eq!(
        session.whiteboard("main").unwrap().state_vector(),
        board.state_vector()
    );
    within("session board synced", board.synced()).await;
    let mut changes = board.changes();

    let (client, mut events) = within(
        "member",
        Client::connect(ClientConfig::new(
            &srv.url,
            "wbs",
            &token("wbs", "ann", &[Grant::Draw]),
        )),
    )
    .await
    .unwrap();
    let member = Whiteboard::open(&client, "main", "ann").unwrap();
    let m2 = member.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let Event::Whiteboard { data, .. } = ev {
                m2.receive(&data).unwrap();
            }
        }
    });
    within("member synced", member.synced()).await;

    board
        .draw(&Item::pen(
            "bot-1",
            "p1",
            "",
            "#d00000",
            4.0,
            &[[100.0, 100.0, 0.5], [400.0, 300.0, 0.5]],
        ))
        .unwrap();
    let deadline = tokio::time::Instant::now() + T;
    while member.items(None).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the member never got the bot's stroke"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = member.items(None);
    assert_eq!(got[0].id, "bot-1");
    assert_eq!(got[0].author, "bot", "the author is the session's user");

    member
        .draw(&Item::pen(
            "ann-1",
            "p1",
            "",
            "#0000ff",
            4.0,
            &[[500.0, 500.0, 0.5]],
        ))
        .unwrap();
    within("the session observes ann's stroke", async {
        loop {
            let c = changes.recv().await.expect("changes");
            if c.remote && board.items(None).iter().any(|i| i.id == "ann-1") {
                break;
            }
        }
    })
    .await;
    session.leave().await;
}
