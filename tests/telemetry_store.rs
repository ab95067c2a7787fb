//! The telemetry store on real SQLite files: migrations, retention, export, delete, IP
//! handling and bad input.

use std::collections::BTreeMap;
use std::time::Duration;

use rusqlite::Connection;
use streamwire::signalling::protocol::telemetry::{Batch, Feedback, FieldValue, Record, Source};
use streamwire::telemetry::Consent;
use streamwire::telemetry::store::{MIGRATIONS, Scope, Store, StoreError, Tags};

const DAY: i64 = 24 * 3600 * 1000;
const NOW: i64 = 1_800_000_000_000;

fn rec(ts_ms: i64, source: Source, track: &str, fields: &[(&str, FieldValue)]) -> Record {
    Record {
        ts_ms,
        source,
        track: track.into(),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn num(v: f64) -> FieldValue {
    FieldValue::Num(v)
}

fn tags<'a>(user: &'a str, room: &'a str, addr: &str) -> Tags<'a> {
    Tags {
        room,
        session: "sess-1",
        peer: "peer-1",
        user,
        name: user,
        addr: Some(addr.parse().unwrap()),
    }
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(
        &dir.path().join("telemetry.db"),
        Duration::from_secs(30 * 86400),
    )
    .unwrap()
}

/// Every (table, column, text value) in the database, from `sqlite_master`.
fn all_text(conn: &Connection) -> Vec<(String, String, String)> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() >= 4, "{tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let cols: Vec<String> = stmt.column_names().map(|c| c.to_string()).collect();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, c) in cols.iter().enumerate() {
                let v: rusqlite::types::Value = row.get(i).unwrap();
                let text = match v {
                    rusqlite::types::Value::Text(s) => s,
                    rusqlite::types::Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    rusqlite::types::Value::Real(f) => f.to_string(),
                    rusqlite::types::Value::Null => continue,
                };
                out.push((t.clone(), c.clone(), text));
            }
        }
    }
    out
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn migrations_apply_from_empty_and_reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.db");
    {
        let mut s = open(&dir);
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as u32);
        assert_eq!(s.journal_mode().unwrap(), "wal");
        let b = Batch {
            consent: Consent::Necessary,
            records: vec![rec(NOW, Source::Device, "", &[("cpu-usage", num(10.0))])],
        };
        s.ingest(&tags("alice", "r1", "10.1.2.3"), &b, NOW).unwrap();
    }
    let s = Store::open(&path, Duration::from_secs(86400)).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as u32);
    assert_eq!(count(s.connection(), "records"), 1);
    drop(s);

    // A database from a newer streamwire is refused with a clear error.
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let err = Store::open(&path, Duration::from_secs(86400)).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("telemetry.db"), "{err}");
}

#[test]
fn a_version_1_database_gains_display_names_and_keeps_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.db");
    // A database as schema version 1 left it, with one session and one record.
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(MIGRATIONS[0].1).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO sessions (room, session, peer, user_id, consent, first_ms, last_ms)
             VALUES ('r', 's0', 'old-peer', 'u0', 'necessary', ?1, ?1)",
            [NOW],
        )
        .unwrap();
        c.execute(
            "INSERT INTO records (session_id, ts_ms, source, field, num, expires_ms)
             VALUES (1, ?1, 'device', 'cpu-usage', 5.0, ?2)",
            [NOW, NOW + DAY],
        )
        .unwrap();
    }
    let mut s = Store::open(&path, Duration::from_secs(86400)).unwrap();
    assert_eq!(s.schema_version().unwrap(), 2);
    let b = Batch {
        consent: Consent::Necessary,
        records: vec![rec(NOW, Source::Device, "", &[("cpu-usage", num(10.0))])],
    };
    let t = Tags {
        room: "r",
        session: "s1",
        peer: "new-peer",
        user: "u1",
        name: "Camera 1",
        addr: None,
    };
    s.ingest(&t, &b, NOW).unwrap();
    let names: Vec<(String, String)> = s
        .room_series("r", 0)
        .unwrap()
        .into_iter()
        .map(|x| (x.peer, x.name))
        .collect();
    assert_eq!(
        names,
        [
            ("new-peer".to_owned(), "Camera 1".to_owned()),
            ("old-peer".to_owned(), String::new())
        ]
    );
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let err = Store::open(&path, Duration::from_secs(86400)).unwrap_err();
    assert!(err.to_string().contains("garbage.db"), "{err}");
}

#[test]
fn retention_purge_leaves_exactly_the_rows_within_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let b = Batch {
        consent: Consent::Full,
        records: vec![
            // necessary field (30 days): old one expires, new one stays
            rec(
                NOW - 31 * DAY,
                Source::Device,
                "",
                &[("cpu-usage", num(1.0))],
            ),
            rec(
                NOW - 29 * DAY,
                Source::Device,
                "",
                &[("cpu-usage", num(2.0))],
            ),
            // optional field (7 days per the registry)
            rec(
                NOW - 8 * DAY,
                Source::Device,
                "",
                &[("process-memory", num(3.0))],
            ),
            rec(
                NOW - 6 * DAY,
                Source::Device,
                "",
                &[("process-memory", num(4.0))],
            ),
            rec(NOW - DAY, Source::Peer, "video0", &[("rtt", num(5.0))]),
        ],
    };
    s.ingest(&tags("alice", "r1", "10.1.2.3"), &b, NOW).unwrap();
    // A session whose data is all old disappears entirely.
    let old = Batch {
        consent: Consent::Necessary,
        records: vec![rec(
            NOW - 40 * DAY,
            Source::Device,
            "",
            &[("cpu-usage", num(9.0))],
        )],
    };
    s.ingest(&tags("bob", "r-old", "10.9.9.9"), &old, NOW - 40 * DAY)
        .unwrap();
    s.add_feedback(
        &tags("bob", "r-old", "10.9.9.9"),
        &Feedback {
            rating: 2,
            comment: Some("choppy".into()),
        },
        NOW - 40 * DAY,
    )
    .unwrap();
    s.add_feedback(
        &tags("alice", "r1", "10.1.2.3"),
        &Feedback {
            rating: 5,
            comment: None,
        },
        NOW - DAY,
    )
    .unwrap();

    let removed = s.purge(NOW).unwrap();
    assert_eq!(
        (removed.records, removed.feedback, removed.sessions),
        (3, 1, 1)
    );
    let conn = s.connection();
    let mut left: Vec<(String, f64)> = conn
        .prepare("SELECT field, num FROM records")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    left.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert_eq!(
        left,
        vec![
            ("cpu-usage".to_owned(), 2.0),
            ("process-memory".to_owned(), 4.0),
            ("rtt".to_owned(), 5.0)
        ]
    );
    assert_eq!(count(conn, "feedback"), 1);
    assert_eq!(count(conn, "sessions"), 1);
    let audit = s.audit().unwrap();
    assert_eq!(
        audit.last().map(|a| (a.action.as_str(), a.rows)),
        Some(("purge", 5))
    );

    // A shorter configured retention wins over the registry's 30 days.
    drop(s);
    let mut short =
        Store::open(&dir.path().join("telemetry.db"), Duration::from_secs(86400)).unwrap();
    let removed = short.purge(NOW).unwrap();
    assert_eq!(removed.records, 2); // cpu-usage at -29 d and process-memory at -6 d
    assert_eq!(count(short.connection(), "records"), 1);
}

fn two_users(s: &mut Store) {
    for (user, room, addr, cpu) in [
        ("alice", "room-alice", "198.51.100.23", 11.0),
        ("bob", "room-bob", "192.0.2.77", 22.0),
    ] {
        let b = Batch {
            consent: Consent::Full,
            records: vec![
                rec(
                    NOW - 1000,
                    Source::Device,
                    "",
                    &[
                        ("cpu-usage", num(cpu)),
                        ("os-name", FieldValue::Text(format!("os-of-{user}"))),
                        ("process-memory", num(1234.0)),
                    ],
                ),
                rec(NOW, Source::Peer, "video0", &[("rtt", num(cpu))]),
            ],
        };
        let session = format!("session-{user}");
        let peer = format!("peer-{user}");
        let name = format!("name-of-{user}");
        let t = Tags {
            room,
            session: &session,
            peer: &peer,
            user,
            name: &name,
            addr: Some(addr.parse().unwrap()),
        };
        assert_eq!(s.ingest(&t, &b, NOW).unwrap().stored, 4);
        s.add_feedback(
            &t,
            &Feedback {
                rating: 4,
                comment: Some(format!("comment-from-{user}")),
            },
            NOW,
        )
        .unwrap();
    }
}

#[test]
fn export_returns_everything_about_the_user_and_nothing_about_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    two_users(&mut s);
    let e = s.export_user("alice", Scope::Everywhere).unwrap();
    assert_eq!(e["user"], "alice");
    let sessions = e["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    let sess = &sessions[0];
    assert_eq!(sess["room"], "room-alice");
    assert_eq!(sess["session"], "session-alice");
    assert_eq!(sess["peer"], "peer-alice");
    assert_eq!(sess["name"], "name-of-alice");
    assert_eq!(sess["net_prefix"], "198.51.100.0/24");
    assert_eq!(sess["consent"], "full");
    let records = sess["records"].as_array().unwrap();
    assert_eq!(records.len(), 4);
    let fields: Vec<&str> = records
        .iter()
        .map(|r| r["field"].as_str().unwrap())
        .collect();
    for f in ["cpu-usage", "os-name", "process-memory", "rtt"] {
        assert!(fields.contains(&f), "{fields:?}");
    }
    assert!(records.iter().any(|r| r["value"] == "os-of-alice"));
    assert_eq!(sess["feedback"][0]["comment"], "comment-from-alice");
    assert_eq!(sess["feedback"][0]["rating"], 4);
    let text = e.to_string();
    for other in ["bob", "192.0.2", "22.0", ":22"] {
        assert!(
            !text.contains(other),
            "export of alice mentions {other}: {text}"
        );
    }
    // Export of an unknown user is empty, not an error.
    let none = s.export_user("nobody", Scope::Everywhere).unwrap();
    assert_eq!(none["sessions"].as_array().unwrap().len(), 0);
}

#[test]
fn after_delete_nothing_about_the_user_remains_in_any_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    two_users(&mut s);
    let removed = s.delete_user("alice", Scope::Everywhere, NOW).unwrap();
    assert_eq!(
        (removed.records, removed.feedback, removed.sessions),
        (4, 1, 1)
    );
    let conn = s.connection();
    let texts = all_text(conn);
    for (t, c, v) in &texts {
        for needle in [
            "alice",
            "room-alice",
            "session-alice",
            "peer-alice",
            "name-of-alice",
            "198.51.100",
            "os-of-alice",
            "comment-from-alice",
        ] {
            assert!(!v.contains(needle), "{t}.{c} still holds {needle:?}: {v}");
        }
    }
    // Bob's data is untouched.
    assert!(texts.iter().any(|(_, _, v)| v == "bob"));
    assert_eq!(count(conn, "records"), 4);
    // Only a non-identifying audit entry remains: action, time, row count.
    let audit = s.audit().unwrap();
    let last = audit.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.rows, last.ts_ms),
        ("delete-user", 6, NOW)
    );
    let cols: Vec<String> = conn
        .prepare("SELECT * FROM audit")
        .unwrap()
        .column_names()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(cols, ["id", "ts_ms", "action", "rows"]);
    // And the export after delete is empty.
    assert_eq!(
        s.export_user("alice", Scope::Everywhere).unwrap()["sessions"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn raw_ip_addresses_never_reach_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let addrs = [
        "203.0.113.77",
        "2001:db8:aa:bb:cc:dd:ee:ff",
        "::ffff:198.51.100.9",
    ];
    for (i, a) in addrs.iter().enumerate() {
        let b = Batch {
            consent: Consent::Full,
            // A producer that smuggles an address in is filtered too.
            records: vec![rec(
                NOW,
                Source::Device,
                "",
                &[
                    ("cpu-usage", num(1.0)),
                    ("ip-address", FieldValue::Text((*a).into())),
                ],
            )],
        };
        let peer = format!("p{i}");
        let t = Tags {
            room: "r",
            session: "s",
            peer: &peer,
            user: "u",
            name: "u",
            addr: Some(a.parse().unwrap()),
        };
        let sum = s.ingest(&t, &b, NOW).unwrap();
        assert_eq!((sum.stored, sum.dropped), (1, 1));
    }
    let texts = all_text(s.connection());
    for (t, c, v) in &texts {
        for raw in ["203.0.113.77", "2001:db8:aa:bb", "198.51.100.9", ":ee:ff"] {
            assert!(!v.contains(raw), "{t}.{c} holds raw address {raw}: {v}");
        }
    }
    let prefixes: Vec<&str> = texts
        .iter()
        .filter(|(t, c, _)| t == "sessions" && c == "net_prefix")
        .map(|(_, _, v)| v.as_str())
        .collect();
    assert_eq!(
        prefixes,
        ["203.0.113.0/24", "2001:db8:aa::/48", "198.51.100.0/24"]
    );
}

#[test]
fn bad_input_is_a_clear_error_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let t = tags("alice", "r", "10.0.0.1");
    let none = Batch {
        consent: Consent::None,
        records: vec![rec(NOW, Source::Device, "", &[("cpu-usage", num(1.0))])],
    };
    let e = s.ingest(&t, &none, NOW).unwrap_err();
    assert!(e.to_string().contains("batch.consent"), "{e}");
    let bad_ts = Batch {
        consent: Consent::Necessary,
        records: vec![
            rec(NOW, Source::Device, "", &[("cpu-usage", num(1.0))]),
            rec(0, Source::Device, "", &[("cpu-usage", num(1.0))]),
        ],
    };
    let e = s.ingest(&t, &bad_ts, NOW).unwrap_err();
    assert!(e.to_string().contains("batch.records[1].ts_ms"), "{e}");
    let e = s
        .add_feedback(
            &t,
            &Feedback {
                rating: 6,
                comment: None,
            },
            NOW,
        )
        .unwrap_err();
    assert!(e.to_string().contains("feedback.rating"), "{e}");
    let e = s
        .add_feedback(
            &t,
            &Feedback {
                rating: 3,
                comment: Some("x".repeat(5000)),
            },
            NOW,
        )
        .unwrap_err();
    assert!(e.to_string().contains("feedback.comment"), "{e}");
    // Optional fields in a batch that claims only necessary consent are dropped.
    let claims_necessary = Batch {
        consent: Consent::Necessary,
        records: vec![rec(
            NOW,
            Source::Device,
            "",
            &[("process-memory", num(1.0)), ("nack-count", num(2.0))],
        )],
    };
    let sum = s.ingest(&t, &claims_necessary, NOW).unwrap();
    assert_eq!((sum.stored, sum.dropped), (0, 2));
    for table in ["records", "feedback"] {
        assert_eq!(count(s.connection(), table), 0, "{table}");
    }
    // Malformed JSON from the wire names the problem.
    let e = serde_json::from_str::<Batch>(r#"{"consent":"maybe","records":[]}"#).unwrap_err();
    assert!(e.to_string().contains("maybe"), "{e}");
}

#[test]
fn concurrent_first_opens_apply_migrations_once() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("race-{round}.db"));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path, Duration::from_secs(86400)).map(|s| s.schema_version())
                })
            })
            .collect();
        for h in handles {
            let v = h.join().unwrap().unwrap().unwrap();
            assert_eq!(v, MIGRATIONS.len() as u32);
        }
    }
}
