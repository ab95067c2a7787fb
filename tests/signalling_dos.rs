//! Unauthenticated denial of service against a real `streamwire serve` process: partial and
//! trickled request heads are cut at the handshake deadline (the server's file descriptors
//! return to their baseline), connections waiting to join are capped globally and per source,
//! the accept loop backs off when the process runs out of descriptors, invalid HTTP requests
//! get a 4xx answer; joined clients keep talking throughout.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use streamwire::signalling::client::{Client, ClientConfig};
use streamwire::signalling::protocol::{DeliveryStatus, Payload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// A TCP connection to `to` from the loopback address `from` (127.0.0.0/8 is all loopback).
async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from, 0))?;
    s.connect(to).await
}

/// Read until the server closes (EOF or reset) or `limit` passes; the elapsed time if closed.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut buf = [0u8; 256];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return t0.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

fn client_cfg(url: &str, room: &str, user: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, room, &token(room, user, &all()));
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c
}

/// A sends B a message every 20 ms until `stop`; returns (delivered, not delivered).
fn talk(
    a: Client,
    b_id: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<(u32, u32)> {
    tokio::spawn(async move {
        let (mut ok, mut bad) = (0, 0);
        while !*stop.borrow() {
            match tokio::time::timeout(
                T,
                a.send_message(Some(&b_id), Payload::Text("still here".into())),
            )
            .await
            {
                Ok(Ok(d)) if d.status == DeliveryStatus::Delivered => ok += 1,
                _ => bad += 1,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (ok, bad)
    })
}

/// 1,000 connections from ten source addresses that never complete their request head: a
/// third close after one byte, a third trickle a byte every 700 ms, a third send half a head
/// and wait. With a 2 s handshake deadline and 16 pending connections per source, the server
/// holds at most 160 of them at any time, cuts every one at the deadline, and is back to its
/// baseline descriptor count right after; two joined clients message each other throughout
/// and a third joins in the middle of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_request_heads_are_cut_at_the_deadline_and_never_leak() {
    let deadline = Duration::from_secs(2);
    let srv = ServeProcess::spawn(
        &[
            "--handshake-timeout",
            "2s",
            "--max-pending",
            "400",
            "--max-pending-per-ip",
            "16",
        ],
        Some(512),
    )
    .await;
    let (a, _aev) = within("a joins", Client::connect(client_cfg(&srv.url, "dos", "a")))
        .await
        .unwrap();
    let (b, _bev) = within("b joins", Client::connect(client_cfg(&srv.url, "dos", "b")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = srv.fd_count();
    assert!(baseline > 0);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let talker = talk(a.clone(), b.peer_id().unwrap(), stop_rx);

    let target = srv.addr;
    let t0 = Instant::now();
    let mut attackers = Vec::new();
    for i in 0..1000u32 {
        let from: IpAddr = format!("127.0.0.{}", 2 + i % 10).parse().unwrap();
        attackers.push(tokio::spawn(async move {
            let Ok(mut s) = connect_from(from, target).await else {
                return (i % 3, None);
            };
            match i % 3 {
                0 => {
                    // One byte, then close: the server must not keep its end (CLOSE-WAIT).
                    let _ = s.write_all(b"G").await;
                    (0, None)
                }
                1 => {
                    // Trickle: one byte every 700 ms, never a complete head.
                    let head = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n";
                    let t = Instant::now();
                    for byte in head {
                        if s.write_all(&[*byte]).await.is_err() {
                            return (1, Some(t.elapsed()));
                        }
                        if closed_within(&mut s, Duration::from_millis(700))
                            .await
                            .is_some()
                        {
                            return (1, Some(t.elapsed()));
                        }
                    }
                    (1, None)
                }
                _ => {
                    // Half a head, then silence.
                    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
                    (2, closed_within(&mut s, Duration::from_secs(8)).await)
                }
            }
        }));
    }
    // A newcomer joins while the attack is on.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (c, _cev) = within(
        "c joins during the attack",
        Client::connect(client_cfg(&srv.url, "dos", "c")),
    )
    .await
    .unwrap();
    // At no time does the server hold more than the per-source caps allow.
    let mut peak = 0;
    let mut back_at = None;
    while t0.elapsed() < Duration::from_secs(9) {
        let n = srv.fd_count();
        peak = peak.max(n);
        if n <= baseline + 1 && t0.elapsed() > deadline {
            back_at = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let launched = t0.elapsed();
    assert!(
        peak <= baseline + 1 + 160 + 8,
        "at most 16 pending connections per source: peak {peak} fds, baseline {baseline}"
    );
    let back_at = back_at.unwrap_or_else(|| {
        panic!(
            "descriptors never returned to the baseline {baseline}: {} now (leaked sockets); log:\n{}",
            srv.fd_count(),
            srv.log()
        )
    });
    assert!(
        back_at < deadline + Duration::from_secs(3),
        "back to baseline {back_at:?} after the attack started (deadline {deadline:?})"
    );
    let mut cut = Vec::new();
    for h in attackers {
        if let (1 | 2, Some(t)) = h.await.unwrap() {
            cut.push(t);
        }
    }
    assert!(
        cut.iter()
            .all(|t| *t < deadline + Duration::from_millis(1500)),
        "every slow head is cut at the deadline: {:?}",
        cut.iter().max()
    );
    stop_tx.send_replace(true);
    let (ok, bad) = within("talker", talker).await.unwrap();
    assert_eq!(
        bad, 0,
        "messages between joined clients failed during the attack"
    );
    assert!(ok >= 20, "only {ok} messages during {launched:?}");
    let log = srv.log();
    assert!(!log.contains("Too many open files"), "{log}");
    for x in [a, b, c] {
        x.leave().await;
    }
}

/// With only 64 descriptors and the default (larger) pending limit, held partial heads run the
/// process out of descriptors: the accept loop backs off (a handful of log lines, not one per
/// attempt) and serves again once the handshake deadline has freed them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_backs_off_when_out_of_descriptors_and_recovers() {
    let srv = ServeProcess::spawn(&["--handshake-timeout", "2s"], Some(64)).await;
    let target = srv.addr;
    let mut held = Vec::new();
    for i in 0..150u32 {
        let from: IpAddr = format!("127.0.1.{}", 1 + i % 50).parse().unwrap();
        if let Ok(mut s) = connect_from(from, target).await {
            let _ = s.write_all(b"GET / HTTP/1.1\r\n").await;
            held.push(s);
        }
    }
    // Out of descriptors for a while: the kernel queues further connections meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(held);
    let (c, _ev) = within("join after the exhaustion", async {
        loop {
            let mut cfg = client_cfg(&srv.url, "emfile", "c");
            cfg.max_attempts = 1;
            if let Ok(x) = Client::connect(cfg).await {
                return x;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let d = within("message", c.send_message(None, Payload::Text("ok".into())))
        .await
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let log = srv.log();
    let failures = log.matches("accepting a connection failed").count();
    assert!(
        log.contains("Too many open files"),
        "the test did exhaust the descriptors: {log}"
    );
    assert!(
        (1..=5).contains(&failures),
        "accept failures are logged with backoff, not per attempt: {failures} lines\n{log}"
    );
    c.leave().await;
}

/// Send `request` raw and return the server's answer (until it closes).
async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = within("answer", s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn invalid_http_requests_get_a_4xx_answer() {
    let srv = start(config()).await;
    let no_key = raw_http(
        srv.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(
        no_key.starts_with("HTTP/1.1 400 ") && no_key.contains("Sec-WebSocket-Key"),
        "{no_key}"
    );
    let bad_key = raw_http(
        srv.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
    )
    .await;
    assert!(bad_key.starts_with("HTTP/1.1 400 "), "{bad_key}");
    let old = raw_http(
        srv.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert!(
        old.starts_with("HTTP/1.1 426 ") && old.contains("Sec-WebSocket-Version: 13"),
        "{old}"
    );
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let long = raw_http(srv.addr, long.as_bytes()).await;
    assert!(
        long.starts_with("HTTP/1.1 414 "),
        "{}",
        &long[..long.len().min(200)]
    );
    let fields = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-Filler: 0123456789\r\n".repeat(500)
    );
    let fields = raw_http(srv.addr, fields.as_bytes()).await;
    assert!(fields.starts_with("HTTP/1.1 431 "), "{fields}");
    let garbage = raw_http(
        srv.addr,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    )
    .await;
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
    let post = raw_http(
        srv.addr,
        b"POST /report HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    // The server still serves WebSocket peers.
    let (_a, w) = Raw::join(&srv.url, "ok", &token("ok", "a", &all())).await;
    assert!(matches!(
        w,
        streamwire::signalling::protocol::ServerMsg::Welcome { .. }
    ));
    assert_eq!(
        srv.handle.stats().pending,
        0,
        "the refused requests hold nothing"
    );
}
