//! Property tests of the preset parser (`Preset::from_str`): it never panics, and every error
//! is located in the file (a line and column inside the text) and names the key it is about.

use proptest::prelude::*;
use streamwire::preset::{BUNDLED, ErrorKind, Origin, Preset, PresetError};

/// Beside the bundled presets, so their relative paths (replay traces) resolve.
const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/p.toml");

/// The key an error kind is about (`None` for a TOML syntax error, located by line only).
fn key_of(k: &ErrorKind) -> Option<&str> {
    match k {
        ErrorKind::Syntax { .. } => None,
        ErrorKind::UnknownKey { key, .. }
        | ErrorKind::WrongType { key, .. }
        | ErrorKind::UnknownCodec { key, .. }
        | ErrorKind::InvalidValue { key, .. }
        | ErrorKind::ImpossibleCaps { key, .. }
        | ErrorKind::Missing { key } => Some(key),
    }
}

fn check(text: &str) -> Result<(), TestCaseError> {
    let e = match Preset::from_str(text, PATH, &[]) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let PresetError::Invalid { origin, kind } = &e else {
        return Err(TestCaseError::fail(format!(
            "an error without a place: {e} for\n{text}"
        )));
    };
    let Origin::File {
        path, line, column, ..
    } = origin
    else {
        // A value given by an override or a default is located there; none here.
        return Err(TestCaseError::fail(format!("not located in the file: {e}")));
    };
    prop_assert_eq!(path.as_str(), PATH);
    let lines: Vec<&str> = text.split('\n').collect();
    prop_assert!(
        *line >= 1 && *line <= lines.len(),
        "line {} outside the text ({} lines): {}",
        line,
        lines.len(),
        e
    );
    let width = lines[*line - 1].trim_end_matches('\r').chars().count();
    prop_assert!(
        *column >= 1 && *column <= width + 1,
        "column {} outside line {} ({} chars): {}",
        column,
        line,
        width,
        e
    );
    if let Some(key) = key_of(kind) {
        prop_assert!(!key.is_empty(), "an error naming no key: {}", e);
    }
    prop_assert!(e.snippet().is_some(), "no snippet: {}", e);
    Ok(())
}

/// Values that are wrong in interesting ways for many keys.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999".to_owned()),
        Just("1.5".to_owned()),
        Just("true".to_owned()),
        Just("\"\"".to_owned()),
        Just("\"vp9\"".to_owned()),
        Just("\"h265\"".to_owned()),
        Just("\"test\"".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("\"file:\"".to_owned()),
        "\"[a-z:/._-]{0,12}\"",
        "-?[0-9]{1,6}",
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    /// Replace the value of the `i`-th `key = value` line.
    Value(usize, String),
    /// Delete line `i`.
    Delete(usize),
    /// Duplicate line `i`.
    Duplicate(usize),
    /// Insert raw text at byte `i` (snapped to a character boundary).
    Insert(usize, String),
    /// Rename the key of the `i`-th assignment.
    Rename(usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), value()).prop_map(|(i, v)| Edit::Value(i, v)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Duplicate),
        (any::<usize>(), "[\\[\\]=\"a-z0-9 \\n.#\u{e9}]{1,6}")
            .prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<usize>(), "[a-z_]{1,8}").prop_map(|(i, k)| Edit::Rename(i, k)),
    ]
}

fn apply(text: &str, e: &Edit) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let assignments: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains(" = ") && !lines[i].trim_start().starts_with('#'))
        .collect();
    match e {
        Edit::Value(i, v) if !assignments.is_empty() => {
            let l = assignments[i % assignments.len()];
            let key = lines[l].split(" = ").next().unwrap_or("").to_owned();
            lines[l] = format!("{key} = {v}");
        }
        Edit::Rename(i, k) if !assignments.is_empty() => {
            let l = assignments[i % assignments.len()];
            let rest = lines[l]
                .split_once(" = ")
                .map(|x| x.1)
                .unwrap_or("")
                .to_owned();
            lines[l] = format!("{k} = {rest}");
        }
        Edit::Delete(i) => {
            let i = i % lines.len();
            lines.remove(i);
        }
        Edit::Duplicate(i) => {
            let i = i % lines.len();
            let l = lines[i].clone();
            lines.insert(i, l);
        }
        Edit::Insert(i, s) => {
            let mut t = lines.join("\n");
            let mut at = i % (t.len() + 1);
            while !t.is_char_boundary(at) {
                at -= 1;
            }
            t.insert_str(at, s);
            return t;
        }
        _ => {}
    }
    lines.join("\n")
}

#[test]
fn bundled_presets_parse() {
    for (name, text) in BUNDLED {
        if let Err(e) = Preset::from_str(text, PATH, &[]) {
            panic!("bundled preset {name}: {e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    /// Arbitrary text: an answer, never a panic.
    #[test]
    fn arbitrary_text_is_answered(text in any::<String>()) {
        check(&text)?;
    }

    /// Bundled presets with up to four edits: every error is located and names its key.
    #[test]
    fn edited_presets_are_located(which in any::<usize>(), edits in prop::collection::vec(edit(), 1..5)) {
        let (_, text) = BUNDLED[which % BUNDLED.len()];
        let mut t = text.to_owned();
        for e in &edits {
            t = apply(&t, e);
        }
        check(&t)?;
    }
}
