//! Bad input gets a clear error naming what is wrong, never a panic.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test webrtc_errors'

use streamwire::webrtc::WebrtcError;
use streamwire::webrtc::peer::{CongestionConfig, Peer, PeerConfig, Role, SignalIn};
use streamwire::webrtc::publisher::{Publisher, PublisherConfig};

fn pipeline() -> gst::Pipeline {
    streamwire::gst_init::init().unwrap();
    gst::Pipeline::new()
}

fn err_text(e: WebrtcError) -> String {
    e.to_string()
}

#[test]
fn bad_peer_configuration_is_rejected_with_the_field_named() {
    let p = pipeline();
    let mut cfg = PeerConfig::loopback(Role::Offerer);
    cfg.stun_server = Some("stun.example.org:3478".into());
    let e = err_text(Peer::new(&p, "x", cfg).unwrap_err());
    assert!(e.contains("stun_server") && e.contains("stun://"), "{e}");

    let mut cfg = PeerConfig::loopback(Role::Offerer);
    cfg.turn_servers = vec!["http://u:p@host:3478".into()];
    let e = err_text(Peer::new(&p, "x", cfg).unwrap_err());
    assert!(e.contains("turn_servers"), "{e}");

    let mut cfg = PeerConfig::loopback(Role::Offerer);
    cfg.local_addresses = vec!["localhost".into()];
    let e = err_text(Peer::new(&p, "x", cfg).unwrap_err());
    assert!(
        e.contains("local_addresses") && e.contains("localhost"),
        "{e}"
    );

    let mut cfg = PeerConfig::loopback(Role::Offerer);
    cfg.congestion = Some(CongestionConfig {
        min_kbps: 500,
        start_kbps: 100,
        max_kbps: 1000,
    });
    let e = err_text(Peer::new(&p, "x", cfg).unwrap_err());
    assert!(e.contains("congestion"), "{e}");
}

#[test]
fn bad_publisher_configuration_is_rejected() {
    let p = pipeline();
    let e = err_text(
        Publisher::new(
            &p,
            PublisherConfig {
                width: 0,
                ..PublisherConfig::default()
            },
        )
        .unwrap_err(),
    );
    assert!(e.contains("width"), "{e}");
    let e = err_text(
        Publisher::new(
            &p,
            PublisherConfig {
                floor_kbps: 3000,
                ceiling_kbps: 1000,
                ..PublisherConfig::default()
            },
        )
        .unwrap_err(),
    );
    assert!(e.contains("floor"), "{e}");
    // WebRTC carries VP8 and H.264: another codec is refused, naming it, not sent as VP8.
    for codec in [
        streamwire::encoder::Codec::Vp9,
        streamwire::encoder::Codec::Av1,
    ] {
        let e = Publisher::new(
            &p,
            PublisherConfig {
                codec,
                ..PublisherConfig::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                streamwire::webrtc::WebrtcError::Config { field: "codec", .. }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&format!("`{codec}`")), "{e}");
    }
}

#[test]
fn signalling_messages_that_do_not_fit_are_rejected() {
    let p = pipeline();
    let (offerer, _io) = Peer::new(&p, "bob", PeerConfig::loopback(Role::Offerer)).unwrap();
    let (answerer, _io2) = Peer::new(&p, "ann", PeerConfig::loopback(Role::Answerer)).unwrap();

    // Glare is impossible: an offerer refuses offers, an answerer refuses answers.
    let e = err_text(
        offerer
            .apply(SignalIn::Offer {
                sdp: "v=0\r\n".into(),
            })
            .unwrap_err(),
    );
    assert!(e.contains("offer") && e.contains("bob"), "{e}");
    let e = err_text(
        answerer
            .apply(SignalIn::Answer { sdp: "v=0".into() })
            .unwrap_err(),
    );
    assert!(e.contains("answer"), "{e}");
    // An answer before any offer was sent.
    let e = err_text(
        offerer
            .apply(SignalIn::Answer { sdp: "v=0".into() })
            .unwrap_err(),
    );
    assert!(e.contains("no offer"), "{e}");

    // Unparseable or empty SDP names the field.
    let e = err_text(
        answerer
            .apply(SignalIn::Offer {
                sdp: "this is not sdp".into(),
            })
            .unwrap_err(),
    );
    assert!(e.contains("sdp"), "{e}");
    let e = err_text(
        answerer
            .apply(SignalIn::Offer {
                sdp: "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n".into(),
            })
            .unwrap_err(),
    );
    assert!(e.contains("m= line"), "{e}");

    // A candidate that is not one.
    let e = err_text(
        answerer
            .apply(SignalIn::Ice {
                mline: 0,
                candidate: "hello".into(),
            })
            .unwrap_err(),
    );
    assert!(e.contains("candidate"), "{e}");
    // The end-of-candidates marker is accepted.
    answerer
        .apply(SignalIn::Ice {
            mline: 0,
            candidate: String::new(),
        })
        .unwrap();
}

#[test]
fn signalling_messages_serialise_as_tagged_json() {
    let msg = SignalIn::Ice {
        mline: 1,
        candidate: "candidate:1 1 UDP 1 127.0.0.1 5000 typ host".into(),
    };
    let json = serde_json::to_string(&msg).unwrap();
    assert!(json.contains("\"type\":\"ice\""), "{json}");
    let back: SignalIn = serde_json::from_str(&json).unwrap();
    assert_eq!(back, msg);
    let bad = serde_json::from_str::<SignalIn>(r#"{"type":"offer"}"#).unwrap_err();
    assert!(bad.to_string().contains("sdp"), "{bad}");
}
