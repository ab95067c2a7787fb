//! `streamwire privacy ...` and `streamwire report` on a real SQLite file.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use streamwire::signalling::protocol::telemetry::{Batch, FieldValue, Record, Source};
use streamwire::telemetry::Consent;
use streamwire::telemetry::store::{Store, Tags, now_ms};

fn streamwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamwire"))
}

fn seed(db: &std::path::Path) {
    let mut s = Store::open(db, Duration::from_secs(30 * 86400)).unwrap();
    let now = now_ms();
    for user in ["carol", "dave"] {
        let records = (0..60)
            .map(|i| Record {
                ts_ms: now - 60_000 + i * 1000,
                source: Source::Peer,
                track: "video0".into(),
                fields: BTreeMap::from([
                    ("rtt".to_owned(), FieldValue::Num(30.0 + i as f64)),
                    (
                        "packet-loss".to_owned(),
                        FieldValue::Num(if i == 30 { 9.0 } else { 0.5 }),
                    ),
                ]),
            })
            .collect();
        let peer = format!("peer-{user}");
        let t = Tags {
            room: "cli-room",
            session: "s1",
            peer: &peer,
            user,
            name: user,
            addr: Some("127.0.0.1".parse().unwrap()),
        };
        s.ingest(
            &t,
            &Batch {
                consent: Consent::Necessary,
                records,
            },
            now,
        )
        .unwrap();
    }
}

#[test]
fn privacy_export_delete_and_report_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    seed(&db);

    let out = dir.path().join("carol.json");
    let st = streamwire()
        .args(["privacy", "export", "--user", "carol", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(export["user"], "carol");
    assert_eq!(
        export["sessions"][0]["records"].as_array().unwrap().len(),
        120
    );
    assert!(!export.to_string().contains("dave"));

    let report = dir.path().join("report.html");
    let st = streamwire()
        .args(["report", "--room", "cli-room", "--since", "1h", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&report)
        .status()
        .unwrap();
    assert!(st.success());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<figure data-metric=\"Round-trip time\"><svg"));
    assert!(html.contains("<figure data-metric=\"Packet loss\"><svg"));
    assert_eq!(
        html.matches("data-kind=\"loss\"").count(),
        2,
        "one per peer"
    );

    let o = streamwire()
        .args(["privacy", "delete", "--user", "carol", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(o.status.success());
    let removed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(removed["records"], 120);
    assert_eq!(removed["sessions"], 1);
    let o = streamwire()
        .args(["privacy", "export", "--user", "carol", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let again: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(again["sessions"].as_array().unwrap().len(), 0);

    // On-demand purge with a retention shorter than the data's age removes the rest.
    let o = streamwire()
        .args(["privacy", "purge", "--retention", "1s", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(o.status.success());
    let purged: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(purged["records"], 120);
}

#[test]
fn cli_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let o = streamwire()
        .args(["privacy", "delete", "--user", "x", "--db"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("missing.db") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!missing.exists(), "a typo must not create a database");

    let o = streamwire()
        .args(["privacy", "purge", "--retention", "forever"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid retention `forever`"));

    let db = dir.path().join("t.db");
    seed(&db);
    let o = streamwire()
        .args(["report", "--room", "empty-room", "--out"])
        .arg(dir.path().join("r.html"))
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no telemetry for room \"empty-room\""));
}
