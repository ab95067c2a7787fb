//! Property tests of the protocol decoder (`decode_client`): it never panics, and every
//! `missing_field` / `invalid_field` error names the offending place by its dotted path
//! (`docs/protocol.md`, "Errors"), which exists in the frame (a bad value) or whose parent
//! exists without it (a missing member).

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use streamwire::signalling::protocol::{ErrorCode, decode_client};

/// One valid frame of every client type.
fn corpus() -> Vec<Value> {
    vec![
        json!({"type":"join","v":1,"room":"r","token":"t","metadata":{"a":[1,2]}}),
        json!({"type":"resume","v":1,"resume_token":"x","last_n":3}),
        json!({"type":"ack","n":4}),
        json!({"type":"offer","to":"p","sdp":"v=0","seq":2}),
        json!({"type":"answer","to":"p","sdp":"v=0"}),
        json!({"type":"ice","to":"p","candidate":"candidate:1","sdp_mline_index":0,"sdp_mid":"0","seq":5}),
        json!({"type":"message","seq":1,"to":"p","payload":{"text":"hi"}}),
        json!({"type":"message","seq":1,"payload":{"binary":"AAEC/w=="}}),
        json!({"type":"publish","track":{"id":"cam","kind":"video","label":"Camera"},"seq":3}),
        json!({"type":"unpublish","track_id":"cam"}),
        json!({"type":"set_metadata","metadata":{"x":1}}),
        json!({"type":"kick","peer_id":"p","ban_ms":1000}),
        json!({"type":"leave"}),
        json!({"type":"ping"}),
        json!({"type":"telemetry","batch":{"consent":"full","records":[
            {"ts_ms":1,"source":"device","fields":{"cpu_percent":3.5}},
            {"ts_ms":2,"source":"peer","track":"cam","fields":{"rtt_ms":12,"codec":"vp8"}}
        ]}}),
        json!({"type":"feedback","rating":4,"comment":"ok"}),
        json!({"type":"privacy_export","user":"u"}),
        json!({"type":"privacy_delete","user":"u"}),
    ]
}

/// `a.b[3].c` as steps.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key.to_owned()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').expect("unclosed [ in a path");
            out.push(Step::Index(r[..end].parse().expect("index in a path")));
            rest = &r[end + 1..];
        }
    }
    out
}

fn resolve<'a>(v: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.as_object()?.get(k),
        Step::Index(i) => v.as_array()?.get(*i),
    })
}

/// Every place in `v`: the steps to each member and element.
fn places(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                at.push(Step::Key(k.clone()));
                out.push(at.clone());
                places(x, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(Step::Index(i));
                out.push(at.clone());
                places(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn resolve_mut<'a>(v: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    steps.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.as_object_mut()?.get_mut(k),
        Step::Index(i) => v.as_array_mut()?.get_mut(*i),
    })
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        (-1.0e6f64..1.0e6).prop_map(|f| json!(f)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(u64::MAX)),
        "[a-z_]{0,6}".prop_map(Value::String),
        Just(json!("video")),
        Just(json!("full")),
        Just(json!("!!not base64")),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Edit {
    /// Replace the value at place `i` (modulo the number of places).
    Replace(usize, Value),
    /// Remove the member or element at place `i`.
    Remove(usize),
    /// Add a member to the object at place `i` (or the root).
    Add(usize, String, Value),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any_json()).prop_map(|(i, v)| Edit::Replace(i, v)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), "[a-z_]{1,8}", any_json()).prop_map(|(i, k, v)| Edit::Add(i, k, v)),
    ]
}

fn apply(frame: &mut Value, e: &Edit) {
    let mut all = Vec::new();
    places(frame, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return;
    }
    match e {
        Edit::Replace(i, v) => {
            if let Some(x) = resolve_mut(frame, &all[i % all.len()]) {
                *x = v.clone();
            }
        }
        Edit::Remove(i) => {
            let place = &all[i % all.len()];
            let (last, parent) = place.split_last().expect("non-empty place");
            match (resolve_mut(frame, parent), last) {
                (Some(Value::Object(m)), Step::Key(k)) => {
                    m.remove(k);
                }
                (Some(Value::Array(a)), Step::Index(i)) => {
                    a.remove(*i);
                }
                _ => {}
            }
        }
        Edit::Add(i, k, v) => {
            let place = &all[i % all.len()];
            let target = match resolve_mut(frame, place) {
                Some(Value::Object(_)) => resolve_mut(frame, place),
                _ => Some(&mut *frame),
            };
            if let Some(Value::Object(m)) = target {
                m.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The decoder's answer to `text` is well-formed; a located error points into `frame`.
fn check(text: &str, frame: Option<&Value>) -> Result<(), TestCaseError> {
    let Err(e) = decode_client(text) else {
        return Ok(());
    };
    prop_assert!(!e.message.is_empty(), "an error without a message: {e:?}");
    match e.code {
        ErrorCode::MissingField | ErrorCode::InvalidField => {
            let field = e.field.as_deref();
            prop_assert!(
                field.is_some_and(|f| !f.is_empty()),
                "{:?} without a field for {text}",
                e.code
            );
            let (Some(field), Some(frame)) = (field, frame) else {
                return Ok(());
            };
            let steps = parse_path(field);
            if e.code == ErrorCode::InvalidField {
                prop_assert!(
                    resolve(frame, &steps).is_some(),
                    "invalid_field `{field}` is not a place of {text}"
                );
            } else {
                let (leaf, parent) = steps.split_last().expect("non-empty path");
                let parent = resolve(frame, parent);
                prop_assert!(
                    parent.is_some(),
                    "missing_field `{field}`: its parent is not a place of {text}"
                );
                if let (Some(Value::Object(m)), Step::Key(k)) = (parent, leaf) {
                    prop_assert!(
                        !m.contains_key(k),
                        "missing_field `{field}` is present in {text}"
                    );
                }
            }
        }
        ErrorCode::BadJson
        | ErrorCode::UnknownType
        | ErrorCode::UnsupportedVersion
        | ErrorCode::NotImplemented => {}
        other => prop_assert!(false, "decoder answered {other:?} for {text}"),
    }
    Ok(())
}

#[test]
fn the_corpus_is_valid() {
    for f in corpus() {
        let text = f.to_string();
        assert!(
            decode_client(&text).is_ok(),
            "{text}: {:?}",
            decode_client(&text)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any text at all: an answer, never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text, None)?;
    }

    /// Any JSON value as a frame.
    #[test]
    fn arbitrary_json_is_answered(v in any_json()) {
        check(&v.to_string(), Some(&v))?;
    }

    /// Valid frames with up to three edits: a located error names a real place.
    #[test]
    fn edited_frames_name_the_place(which in any::<usize>(), edits in prop::collection::vec(edit(), 1..4)) {
        let all = corpus();
        let mut frame = all[which % all.len()].clone();
        for e in &edits {
            apply(&mut frame, e);
        }
        check(&frame.to_string(), Some(&frame))?;
    }

    /// Truncated and byte-flipped frames (text that is often not JSON at all).
    #[test]
    fn damaged_text_never_panics(which in any::<usize>(), cut in any::<usize>(), flip in any::<(usize, u8)>()) {
        let all = corpus();
        let text = all[which % all.len()].to_string();
        let mut bytes = text.into_bytes();
        let cut = cut % (bytes.len() + 1);
        bytes.truncate(cut.max(1));
        let i = flip.0 % bytes.len();
        bytes[i] = flip.1;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        check(&text, None)?;
    }
}
