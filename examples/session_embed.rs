//! Embedding a Streamwire session in an application: join a room, publish a test pattern, print
//! what happens, say hello over the data channel, leave after 10 s.
//!
//! ```sh
//! streamwire serve --secret-file s.key &             # signalling server on 127.0.0.1:8443
//! TOKEN=$(streamwire token --secret-file s.key --room demo --user app)
//! cargo run --example session_embed -- ws://127.0.0.1:8443 demo "$TOKEN"
//! ```
use std::time::Duration;

use streamwire::session::{Session, SessionConfig, SessionEvent};
use streamwire::signalling::protocol::Payload;
use streamwire::webrtc::publisher::PublisherConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(room), Some(token)) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: session_embed URL ROOM TOKEN");
    };
    let mut cfg = SessionConfig::new(&url, &room, &token);
    cfg.publish = Some(PublisherConfig::default()); // test pattern + tone, VP8 + Opus
    let (session, mut events) = Session::join(cfg).await?;
    println!("joined as {:?}", session.peer_id());

    let stop = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(ev) = events.recv() => match ev {
                SessionEvent::PeerJoined { peer_id, user } => println!("{user} joined ({peer_id})"),
                SessionEvent::TrackAdded { peer_id, kind, codec } => {
                    println!("receiving {kind:?} ({codec}) from {peer_id}")
                }
                SessionEvent::DataChannelOpen { peer_id } => {
                    session.send_data(Some(&peer_id), &Payload::Text("hello".into())).await?;
                }
                SessionEvent::Message { from, via, payload } => {
                    println!("message from {from} via {via:?}: {payload:?}")
                }
                SessionEvent::Stats(s) => println!("{}", s.stats.status_line()),
                SessionEvent::PeerLeft { peer_id } => println!("{peer_id} left"),
                _ => {}
            },
        }
    }
    session.leave().await;
    Ok(())
}
