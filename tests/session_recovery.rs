//! Recovery after a network change, with two real sessions, a real signalling server and real
//! webrtcbin peers, each test in a network namespace of its own (it changes the network):
//! the media path cut for 5 s by nftables, and the addresses of the machine replaced. Media
//! must flow again within 3 s of the path returning, and the events tell what happened.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test session_recovery'

mod common;
mod netns_support;
mod session_support;

use std::time::{Duration, Instant};

use netns_support::{isolated, sh};
use session_support::{Joined, join, small, wait_for};
use streamwire::encoder::Codec;
use streamwire::session::{RebuildReason, Recovery, SessionEvent};
use streamwire::webrtc::MediaKind;

const T: Duration = Duration::from_secs(30);
/// The aim: media again within this long of the path returning.
const BACK_WITHIN: Duration = Duration::from_secs(3);

fn recoveries(j: &Joined) -> Vec<Recovery> {
    j.events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Recovery { recovery, .. } => Some(recovery),
            _ => None,
        })
        .collect()
}

/// Both directions decoded `n` more video frames than at `a0`/`b0`.
fn both_ways(alice: &Joined, a_id: &str, bob: &Joined, b_id: &str) -> (u64, u64) {
    (
        alice.decoded_from(b_id, MediaKind::Video),
        bob.decoded_from(a_id, MediaKind::Video),
    )
}

/// Two sessions (alice first, so bob offers), each publishing, video flowing both ways.
async fn pair(
    url: &str,
    tweak: impl Fn(&mut streamwire::session::SessionConfig) + Copy,
) -> (Joined, String, Joined, String) {
    let alice = join(url, "r", "alice", Some(small(320, 240, Codec::Vp8)), tweak).await;
    let bob = join(url, "r", "bob", Some(small(320, 240, Codec::Vp8)), tweak).await;
    let a_id = alice.session.peer_id().unwrap();
    let b_id = bob.session.peer_id().unwrap();
    wait_for("video both ways", T, || {
        let (a, b) = both_ways(&alice, &a_id, &bob, &b_id);
        a > 10 && b > 10
    })
    .await;
    (alice, a_id, bob, b_id)
}

/// Wait until both directions decoded 5 frames more than now; how long that took.
async fn media_again(alice: &Joined, a_id: &str, bob: &Joined, b_id: &str) -> Duration {
    let (a0, b0) = both_ways(alice, a_id, bob, b_id);
    wait_for("media again both ways", T, || {
        let (a, b) = both_ways(alice, a_id, bob, b_id);
        a >= a0 + 5 && b >= b0 + 5
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_cut_for_5_s_carries_media_again_within_3_s() {
    if !isolated("a_path_cut_for_5_s_carries_media_again_within_3_s") {
        return;
    }
    let server = common::start(common::config()).await;
    let (alice, a_id, bob, b_id) = pair(&server.url, |_| {}).await;
    let port = server.addr.port();

    // Cut every path but the signalling socket: all UDP, and TCP not to or from the server
    // (ICE-TCP candidates would otherwise carry the media).
    sh(&format!(
        "nft add table inet cut && nft add chain inet cut in '{{ type filter hook input priority 0; }}' \
         && nft add rule inet cut in meta l4proto udp drop \
         && nft add rule inet cut in tcp sport != {port} tcp dport != {port} drop"
    ));
    let cut = Instant::now();
    wait_for(
        "both sides report the stall",
        Duration::from_secs(5),
        || {
            [&alice, &bob].iter().all(|j| {
                recoveries(j)
                    .iter()
                    .any(|r| matches!(r, Recovery::Stalled { .. }))
            })
        },
    )
    .await;
    let (a_cut, b_cut) = both_ways(&alice, &a_id, &bob, &b_id);
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(cut.elapsed())).await;
    // Nothing got through while cut (one frame may have been in flight).
    let (a_late, b_late) = both_ways(&alice, &a_id, &bob, &b_id);
    assert!(
        a_late <= a_cut + 1 && b_late <= b_cut + 1,
        "media flowed while cut"
    );
    sh("nft delete table inet cut");

    let back = media_again(&alice, &a_id, &bob, &b_id).await;
    println!("path cut for 5 s: media again both ways {back:?} after it returned");
    assert!(back <= BACK_WITHIN, "media again only after {back:?}");

    // The offerer (bob, the newcomer) rebuilt the silent connection; alice answered the new
    // one; both report recovery.
    wait_for("both sides report recovery", Duration::from_secs(5), || {
        [&alice, &bob].iter().all(|j| {
            recoveries(j)
                .iter()
                .any(|r| matches!(r, Recovery::Recovered { .. }))
        })
    })
    .await;
    let b = recoveries(&bob);
    assert!(
        b.contains(&Recovery::Rebuilding {
            attempt: 1,
            reason: RebuildReason::Stalled
        }),
        "bob: {b:?}"
    );
    let a = recoveries(&alice);
    assert!(
        a.iter().any(|r| matches!(
            r,
            Recovery::Rebuilding {
                reason: RebuildReason::RemoteRestart,
                ..
            }
        )),
        "alice: {a:?}"
    );
    assert!(
        matches!(b.last(), Some(Recovery::Recovered { rebuilt: true, .. })),
        "bob: {b:?}"
    );
    // The peers stayed members: no PeerLeft.
    for j in [&alice, &bob] {
        assert!(!j.any(|e| matches!(e, SessionEvent::PeerLeft { .. })));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_addresses_carry_media_again_within_3_s() {
    if !isolated("replaced_addresses_carry_media_again_within_3_s") {
        return;
    }
    // Two addresses besides loopback; ICE gathers on every interface (libnice skips `lo`).
    sh("ip link add v0 type veth peer name v1 \
        && ip addr add 10.77.0.1/24 dev v0 && ip addr add 10.77.0.2/24 dev v1 \
        && ip link set v0 up && ip link set v1 up");
    let server = common::start(common::config()).await;
    let (alice, a_id, bob, b_id) = pair(&server.url, |cfg| cfg.local_addresses.clear()).await;

    // Both addresses replaced: the old candidate pairs are gone for good.
    sh("ip addr flush dev v0 && ip addr flush dev v1 \
        && ip addr add 10.77.1.1/24 dev v0 && ip addr add 10.77.1.2/24 dev v1");
    let back = media_again(&alice, &a_id, &bob, &b_id).await;
    println!("addresses replaced: media again both ways after {back:?}");
    assert!(back <= BACK_WITHIN, "media again only after {back:?}");

    let b = recoveries(&bob);
    assert_eq!(
        b.first(),
        Some(&Recovery::Rebuilding {
            attempt: 1,
            reason: RebuildReason::AddressChanged
        }),
        "bob: {b:?}"
    );
    let a = recoveries(&alice);
    assert!(
        a.iter().any(|r| matches!(
            r,
            Recovery::Rebuilding {
                reason: RebuildReason::RemoteRestart,
                ..
            }
        )),
        "alice: {a:?}"
    );
}
