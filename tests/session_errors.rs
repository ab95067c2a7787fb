//! Bad input to `Session::join` gets clear errors naming what is wrong, never a panic.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test session_errors'

mod common;

use streamwire::session::{Session, SessionConfig, SessionError, ice_url_for_webrtcbin};
use streamwire::signalling::client::ClientError;
use streamwire::signalling::protocol::{ErrorCode, Grant};
use streamwire::signalling::token::{Claims, mint};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_wrong_room_tokens_are_refused_with_their_code() {
    let server = common::start(common::config()).await;
    let forged = mint(
        b"another-secret-0123456789abcdef-0123456",
        &Claims::new(
            "r",
            "eve",
            "eve",
            std::time::Duration::from_secs(60),
            &Grant::ALL,
        ),
    )
    .unwrap();
    let err = Session::join(SessionConfig::loopback(&server.url, "r", &forged))
        .await
        .unwrap_err();
    match &err {
        SessionError::Signalling(ClientError::Refused { code, .. }) => {
            assert_eq!(*code, ErrorCode::TokenForged)
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("token_forged"), "{err}");

    let other_room = common::token("elsewhere", "bob", &Grant::ALL);
    let err = Session::join(SessionConfig::loopback(&server.url, "r", &other_room))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("token_wrong_room"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_are_named() {
    let token = common::token("r", "bob", &Grant::ALL);
    let err = Session::join(SessionConfig::loopback("http://127.0.0.1:1/", "r", &token))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("http://127.0.0.1:1/"), "{err}");

    let server = common::start(common::config()).await;
    let mut cfg = SessionConfig::loopback(&server.url, "r", &token);
    cfg.ice_servers = vec!["stun.example.org:3478".into()];
    let err = Session::join(cfg).await.unwrap_err();
    assert!(
        matches!(&err, SessionError::IceServer { url, .. } if url == "stun.example.org:3478"),
        "{err:?}"
    );
    assert!(err.to_string().contains("stun://"), "{err}");
}

#[test]
fn ice_server_urls_from_the_join_reply_are_converted_or_rejected() {
    assert_eq!(
        ice_url_for_webrtcbin("stun:127.0.0.1:3478", None, None).unwrap(),
        "stun://127.0.0.1:3478"
    );
    assert_eq!(
        ice_url_for_webrtcbin(
            "turns:127.0.0.1:5349?transport=tcp",
            Some("u@x"),
            Some("p:w")
        )
        .unwrap(),
        "turns://u%40x:p%3Aw@127.0.0.1:5349?transport=tcp"
    );
    let e = ice_url_for_webrtcbin("turn:127.0.0.1:3478", None, None).unwrap_err();
    assert!(e.to_string().contains("username"), "{e}");
    let e = ice_url_for_webrtcbin("http:127.0.0.1", None, None).unwrap_err();
    assert!(e.to_string().contains("`http`"), "{e}");
    let e = ice_url_for_webrtcbin("stun:", None, None).unwrap_err();
    assert!(e.to_string().contains("no host"), "{e}");
}
