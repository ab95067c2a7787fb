//! Helpers for the session tests: sessions joined to a real signalling server on 127.0.0.1,
//! an event log that can be polled, and bounded waits.
#![allow(dead_code)]

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

use streamwire::encoder::Codec;
use streamwire::session::{Session, SessionConfig, SessionEvent};
use streamwire::signalling::protocol::Grant;
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::PublisherConfig;

use crate::common;

/// A joined session plus every event it emitted so far.
pub struct Joined {
    pub session: Session,
    pub log: Arc<Mutex<Vec<SessionEvent>>>,
}

impl Joined {
    pub fn events(&self) -> Vec<SessionEvent> {
        self.log.lock().clone()
    }

    pub fn any(&self, f: impl Fn(&SessionEvent) -> bool) -> bool {
        self.log.lock().iter().any(f)
    }

    /// Video frames decoded from the peer of user `user`, found by its id.
    pub fn decoded_from(&self, peer_id: &str, kind: MediaKind) -> u64 {
        self.session.subscriber().counters(peer_id, kind).decoded
    }
}

/// A small, fast publisher config (test pattern + tone).
pub fn small(w: i32, h: i32, codec: Codec) -> PublisherConfig {
    PublisherConfig {
        width: w,
        height: h,
        codec,
        start_kbps: 400,
        ..PublisherConfig::default()
    }
}

/// Join `room` on `url` as `user` (all grants), publishing `publish`.
pub async fn join(
    url: &str,
    room: &str,
    user: &str,
    publish: Option<PublisherConfig>,
    tweak: impl FnOnce(&mut SessionConfig),
) -> Joined {
    join_as(url, room, user, &Grant::ALL, publish, tweak).await
}

/// [`join`] with a token carrying only `grants`.
pub async fn join_as(
    url: &str,
    room: &str,
    user: &str,
    grants: &[Grant],
    publish: Option<PublisherConfig>,
    tweak: impl FnOnce(&mut SessionConfig),
) -> Joined {
    let token = common::token(room, user, grants);
    let mut cfg = SessionConfig::loopback(url, room, &token);
    cfg.publish = publish;
    tweak(&mut cfg);
    let (session, mut rx) = Session::join(cfg).await.expect("join");
    let log: Arc<Mutex<Vec<SessionEvent>>> = Arc::default();
    let l2 = log.clone();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            l2.lock().push(ev);
        }
    });
    Joined { session, log }
}

/// Wait (bounded) until `cond` holds, polling every 50 ms.
pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`wait_for`] with an asynchronous condition (e.g. one that asks the session's actor).
pub async fn wait_until(
    what: &str,
    timeout: Duration,
    mut cond: impl AsyncFnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if cond().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The longest pause in decoded video of some (receiver, sender) pairs, sampled every 5 ms
/// by a task of its own from [`FrameGaps::watch`] until [`FrameGaps::finish`].
pub struct FrameGaps {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Duration>>,
}

impl FrameGaps {
    /// Watch video from `sender` (a peer id) decoded by each `receiver`.
    pub fn watch(pairs: Vec<(Session, String)>) -> FrameGaps {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let count = |(s, from): &(Session, String)| {
                s.subscriber().counters(from, MediaKind::Video).decoded
            };
            let start = Instant::now();
            let mut last: Vec<(u64, Instant)> = pairs.iter().map(|p| (count(p), start)).collect();
            let mut longest = vec![Duration::ZERO; pairs.len()];
            loop {
                let done = flag.load(std::sync::atomic::Ordering::Relaxed);
                let now = Instant::now();
                for (i, p) in pairs.iter().enumerate() {
                    let n = count(p);
                    if n > last[i].0 || done {
                        longest[i] = longest[i].max(now - last[i].1);
                        last[i] = (n, now);
                    }
                }
                if done {
                    return longest;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        FrameGaps { stop, task }
    }

    /// Stop watching: the longest pause of each pair, in the order given.
    pub async fn finish(self) -> Vec<Duration> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.expect("the frame gap watcher")
    }
}
