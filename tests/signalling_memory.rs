//! Per-peer memory is bounded in bytes: peers that never read nor acknowledge while 60 KB
//! broadcasts flow are told (`bye` `slow_consumer`) once their unacknowledged frames exceed
//! `max_queue_bytes`, the server's memory stays bounded, and it returns after they leave.

mod common;

use std::time::Duration;

use common::*;
use streamwire::signalling::client::{Client, ClientConfig};
use streamwire::signalling::protocol::{ErrorCode, Payload, ServerMsg};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peers_are_told_and_memory_stays_bounded_and_returns() {
    let srv = ServeProcess::spawn(
        &[
            "--rate",
            "100000",
            "--burst",
            "100000",
            "--max-queue-bytes",
            "4194304",
        ],
        None,
    )
    .await;
    // 20 peers that join and then neither read nor acknowledge anything.
    let mut silent = Vec::new();
    for i in 0..20 {
        silent.push(
            Raw::join(&srv.url, "mem", &token("mem", &format!("s{i}"), &all()))
                .await
                .0,
        );
    }
    let mut cfg = ClientConfig::new(&srv.url, "mem", &token("mem", "sender", &all()));
    cfg.event_capacity = 64;
    let (sender, _ev) = within("sender", Client::connect(cfg)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = srv.rss_kib();
    let body = "m".repeat(60_000);
    let t0 = Instant::now();
    let mut peak = baseline;
    let mut pending = std::collections::VecDeque::new();
    for i in 0..1500u32 {
        pending.push_back(
            sender
                .start_message(None, Payload::Text(format!("{i}{body}")))
                .unwrap(),
        );
        if pending.len() >= 64 {
            let d = within("delivery", pending.pop_front().unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(d.reason, None, "{d:?}");
        }
        if i % 50 == 0 {
            peak = peak.max(srv.rss_kib());
        }
    }
    while let Some(p) = pending.pop_front() {
        within("delivery", p).await.unwrap().unwrap();
    }
    peak = peak.max(srv.rss_kib());
    let sent_in = t0.elapsed();
    // 1500 x 60 KB = 90 MB were broadcast; the 20 silent peers may hold 4 MiB each at most
    // (the bodies are shared, so far less in fact).
    assert!(
        peak < baseline + 40 * 1024,
        "server RSS grew from {baseline} KiB to {peak} KiB over {sent_in:?}"
    );
    // Every silent peer, reading at last, finds its frames and then the reason it was dropped.
    for (i, mut s) in silent.into_iter().enumerate() {
        let (code, reconnect, message) = within("bye", async {
            loop {
                if let ServerMsg::Bye {
                    code,
                    reconnect,
                    message,
                } = s.recv().await
                {
                    return (code, reconnect, message);
                }
            }
        })
        .await;
        assert_eq!(
            (code, reconnect),
            (ErrorCode::SlowConsumer, true),
            "peer {i}: {message}"
        );
        assert!(message.contains("max_queue_bytes"), "{message}");
    }
    // Memory returns once they are gone.
    sender.leave().await;
    let back = within("memory back", async {
        loop {
            let now = srv.rss_kib();
            if now < baseline + 16 * 1024 {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(back > 0);
    // And the server still serves.
    let (_p, w) = Raw::join(&srv.url, "mem", &token("mem", "late", &all())).await;
    assert!(matches!(w, ServerMsg::Welcome { .. }));
}
