// SPDX-License-Identifier: MIT OR Apache-2.0
//! CVO end to end through two real `webrtcbin` peers in one pipeline, ICE restricted to
//! 127.0.0.1: the sender's `extmap-N` caps put `a=extmap:N urn:3gpp:video-orientation` in
//! the offer, the receiver's depayloader gets the extension from the negotiated caps
//! (`auto-header-extension`), and `sensorrotation mode=follow-meta` emits the tags.
//!
//! Run it in a loopback-only namespace:
//! `unshare -n sh -c 'ip link set lo up; cargo test -p gst-plugin-streamwire --test cvo_webrtc'`

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

fn init() {
    gst::init().unwrap();
    gststreamwire::plugin_register_static().unwrap();
}

fn loopback_only(webrtcbin: &gst::Element) {
    let agent = webrtcbin.property::<gst::glib::Object>("ice-agent");
    let ok = agent.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
    assert!(ok, "add-local-ip-address failed");
}

fn promise_reply(p: &gst::Promise) -> gst::Structure {
    assert_eq!(p.wait(), gst::PromiseResult::Replied);
    p.get_reply().expect("promise reply").to_owned()
}

#[test]
fn cvo_orientation_crosses_a_webrtcbin_session() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         sensorrotation name=rot mode=follow-app rotation=90 ! vp8enc deadline=1 \
         keyframe-max-dist=15 ! rtpvp8pay ! application/x-rtp,media=video,\
         encoding-name=VP8,payload=96,clock-rate=90000,\
         extmap-3=urn:3gpp:video-orientation ! webrtcbin name=send bundle-policy=max-bundle \
         webrtcbin name=recv bundle-policy=max-bundle",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let send = pipeline.by_name("send").unwrap();
    let recv = pipeline.by_name("recv").unwrap();
    loopback_only(&send);
    loopback_only(&recv);
    // The answerer accepts only the header extensions its codec preferences list, as a
    // browser answers only the extensions it implements.
    let recv_caps = gst::Caps::from_str(
        "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000,\
         extmap-3=urn:3gpp:video-orientation",
    )
    .unwrap();
    recv.emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>(
        "add-transceiver",
        &[
            &gst_webrtc::WebRTCRTPTransceiverDirection::Recvonly,
            &recv_caps,
        ],
    );

    // Trickle ICE both ways.
    for (from, to) in [(&send, &recv), (&recv, &send)] {
        let to = to.downgrade();
        from.connect("on-ice-candidate", false, move |args| {
            let mline = args[1].get::<u32>().unwrap();
            let cand = args[2].get::<String>().unwrap();
            if let Some(to) = to.upgrade() {
                to.emit_by_name::<()>("add-ice-candidate", &[&mline, &cand]);
            }
            None
        });
    }

    // Receiver: depayload, decode, turn the meta into tags, record them.
    let tags = Arc::new(Mutex::new(Vec::<String>::new()));
    let offer_sdp = Arc::new(Mutex::new(String::new()));
    let answer_sdp = Arc::new(Mutex::new(String::new()));
    {
        let pipeline = pipeline.downgrade();
        let tags = tags.clone();
        recv.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipeline.upgrade() else {
                return;
            };
            let bin = gst::parse::bin_from_description(
                "rtpvp8depay ! vp8dec ! sensorrotation mode=follow-meta ! fakesink name=sink \
                 sync=false",
                true,
            )
            .unwrap();
            let tags = tags.clone();
            bin.by_name("sink")
                .unwrap()
                .static_pad("sink")
                .unwrap()
                .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                    if let Some(gst::PadProbeData::Event(ev)) = &info.data
                        && let gst::EventView::Tag(t) = ev.view()
                        && let Some(v) = t.tag().get::<gst::tags::ImageOrientation>()
                    {
                        tags.lock().unwrap().push(v.get().to_owned());
                    }
                    gst::PadProbeReturn::Ok
                });
            pipeline.add(&bin).unwrap();
            bin.sync_state_with_parent().unwrap();
            pad.link(&bin.static_pad("sink").unwrap()).unwrap();
        });
    }

    // Offer/answer, all in process.
    {
        let recv = recv.clone();
        let offer_sdp = offer_sdp.clone();
        let answer_sdp = answer_sdp.clone();
        send.connect("on-negotiation-needed", false, move |args| {
            let send = args[0].get::<gst::Element>().unwrap();
            let recv = recv.clone();
            let offer_sdp = offer_sdp.clone();
            let answer_sdp = answer_sdp.clone();
            let send2 = send.clone();
            let promise = gst::Promise::with_change_func(move |reply| {
                let reply = reply.unwrap().unwrap();
                let offer = reply
                    .get::<gst_webrtc::WebRTCSessionDescription>("offer")
                    .unwrap();
                *offer_sdp.lock().unwrap() = offer.sdp().as_text().unwrap();
                send2.emit_by_name::<()>("set-local-description", &[&offer, &None::<gst::Promise>]);
                let p = gst::Promise::new();
                recv.emit_by_name::<()>("set-remote-description", &[&offer, &p]);
                promise_reply_or_empty(&p);
                let p = gst::Promise::new();
                recv.emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &p]);
                let answer = promise_reply(&p)
                    .get::<gst_webrtc::WebRTCSessionDescription>("answer")
                    .unwrap();
                *answer_sdp.lock().unwrap() = answer.sdp().as_text().unwrap();
                recv.emit_by_name::<()>("set-local-description", &[&answer, &None::<gst::Promise>]);
                send2.emit_by_name::<()>(
                    "set-remote-description",
                    &[&answer, &None::<gst::Promise>],
                );
            });
            send.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
            None
        });
    }

    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let rot = pipeline.by_name("rot").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut switched = false;
    loop {
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[gst::MessageType::Error],
        ) && let gst::MessageView::Error(e) = msg.view()
        {
            panic!("{}: {:?}", e.error(), e.debug());
        }
        let seen = tags.lock().unwrap().clone();
        if !switched && seen.first().map(String::as_str) == Some("rotate-90") {
            rot.set_property_from_str("rotation", "270");
            switched = true;
        }
        if seen.iter().any(|t| t == "rotate-270") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tags seen within 30 s: {seen:?}; offer:\n{}\nanswer:\n{}",
            offer_sdp.lock().unwrap(),
            answer_sdp.lock().unwrap()
        );
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let offer = offer_sdp.lock().unwrap().clone();
    assert!(
        offer.contains("a=extmap:3 urn:3gpp:video-orientation"),
        "offer lacks the CVO extmap:\n{offer}"
    );
    let answer = answer_sdp.lock().unwrap().clone();
    assert!(
        answer.contains("a=extmap:3 urn:3gpp:video-orientation"),
        "answer lacks the CVO extmap:\n{answer}"
    );
    let seen = tags.lock().unwrap().clone();
    assert_eq!(seen, ["rotate-90", "rotate-270"]);
}

fn promise_reply_or_empty(p: &gst::Promise) {
    assert_eq!(p.wait(), gst::PromiseResult::Replied);
}
