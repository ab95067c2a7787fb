//! Recovery after a network change, browser side: two call pages (the first joined answers,
//! the second offers), the media path cut by nftables (all UDP, and TCP but the signalling
//! socket) until the offering page has started an ICE restart and for at least 5 s. Media
//! flows again both ways within 3 s of the path returning, and the page's events say what
//! happened (`peerstate` disconnected, `recovery` ice_restart, then recovered). The test runs in
//! a network namespace of its own (it changes the network).
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test web_recovery'

mod browser_support;
mod common;
mod netns_support;

use std::time::{Duration, Instant};

use browser_support::{Browser, page_url};
use netns_support::{isolated, sh};
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(30);
const BACK_WITHIN: Duration = Duration::from_secs(3);

/// JS: video frames decoded from the other page (summed over this page's connections).
const FRAMES: &str = "(async () => { let n = 0; for (const l of window.streamwireApp.client.pcs.values())
    (await l.pc.getStats()).forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'video') n += s.framesDecoded ?? 0; });
    return n; })()";

async fn frames(b: &mut Browser) -> u64 {
    b.eval(FRAMES).await.as_u64().expect("a frame count")
}

async fn open(srv: &common::TestServer, name: &str) -> Browser {
    let mut b = Browser::launch().await;
    let token = common::token("rec", name, &common::all());
    b.goto(&format!(
        "{}&res=320x240&fps=15",
        page_url(srv.addr, "rec", &token, name, true)
    ))
    .await;
    b.wait_for(
        &format!("{name} in the call"),
        "window.streamwireApp?.view === 'call' && window.streamwireApp.client.state === 'joined'",
        LONG,
    )
    .await;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_path_recovers_by_ice_restart_within_3_s_of_its_return() {
    if !isolated("a_cut_path_recovers_by_ice_restart_within_3_s_of_its_return") {
        return;
    }
    let srv = common::start(common::config()).await;
    let mut ann = open(&srv, "ann").await;
    let mut bob = open(&srv, "bob").await;
    for b in [&mut ann, &mut bob] {
        b.wait_for(
            "video from the other page",
            &format!("{FRAMES}.then(n => n > 20)"),
            LONG,
        )
        .await;
    }
    assert_eq!(
        bob.eval("[...window.streamwireApp.client.pcs.values()].map(l => l.offerer)")
            .await,
        json!([true]),
        "the newcomer offers"
    );

    // Spare the signalling socket and the two DevTools connections.
    let spare = format!(
        "{{ {}, {}, {} }}",
        srv.addr.port(),
        ann.devtools_port,
        bob.devtools_port
    );
    sh(&format!(
        "nft add table inet cut && nft add chain inet cut in '{{ type filter hook input priority 0; }}' \
         && nft add rule inet cut in meta l4proto udp drop \
         && nft add rule inet cut in tcp sport != '{spare}' tcp dport != '{spare}' drop"
    ));
    let cut = Instant::now();
    // The offerer notices (disconnected) and restarts ICE while the path is still cut.
    bob.wait_for(
        "bob to restart ICE",
        "window.streamwireApp.recovery.some(r => r.action === 'ice_restart')",
        LONG,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(cut.elapsed())).await;
    let cut_for = cut.elapsed();
    let (a0, b0) = (frames(&mut ann).await, frames(&mut bob).await);
    sh("nft delete table inet cut");
    let back = Instant::now();
    // Media again both ways: 5 more frames each (a rebuilt connection counts from 0 again).
    let deadline = back + LONG;
    let mut start = [a0, b0];
    loop {
        let now = [frames(&mut ann).await, frames(&mut bob).await];
        for i in 0..2 {
            if now[i] < start[i] {
                start[i] = 0;
            }
        }
        if now[0] >= start[0] + 5 && now[1] >= start[1] + 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no media again {LONG:?} after the path returned: {now:?} from {start:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = back.elapsed();
    println!("path cut for {cut_for:?}: media again both ways {took:?} after it returned");
    assert!(took <= BACK_WITHIN, "media again only after {took:?}");

    // What the page was told.
    let events: Value = bob
        .wait_for(
            "bob's recovered event",
            "window.streamwireApp.recovery.some(r => r.action === 'recovered') && JSON.stringify(window.streamwireApp.recovery)",
            LONG,
        )
        .await;
    let events: Vec<Value> = serde_json::from_str(events.as_str().unwrap()).unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.first(), Some(&"ice_restart"), "{events:?}");
    assert_eq!(actions.last(), Some(&"recovered"), "{events:?}");
    assert!(
        !actions.contains(&"gave_up"),
        "recovery gave up: {events:?}"
    );
    // The chat told the user, both pages stay in the call with one tile each.
    let log = bob.eval("document.getElementById('log').textContent").await;
    assert!(
        log.as_str().unwrap().contains("Media with ann restored."),
        "{log}"
    );
    for b in [&mut ann, &mut bob] {
        assert_eq!(
            b.eval(
                "document.querySelectorAll('.tile[data-kind=camera]:not([data-peer=local])').length"
            )
            .await,
            json!(1)
        );
        b.assert_no_console_errors().await;
    }
}
