//! The content check of a member's update: which of the board's shared types it changes, and
//! whether another user made them.
//!
//! yrs does not show an update's blocks before they are applied (nor look items up by id), so
//! the check applies the update in a transaction of its own (origin [`ORIGIN`]) while deep
//! observers on the roots `items` and `pages` collect every type the update changes directly:
//! setting a key of an item's map (a move's `dx`, `dy`), adding points to a stroke's `pts`,
//! removing a key. A type is identified by the id of the item that made it, whose Yjs client
//! id tells its owner. When the owner is another user, an `UndoManager` scoped to those roots
//! and tracking only that transaction undoes it: the document then holds the update and its
//! undoing, which every member must receive (the sender has the update applied, the others
//! need the sender's clocks to apply its later updates).
//!
//! Cost per update: two observers and an undo manager registered and dropped, and one state
//! vector; no copy of the document. The undo manager keeps what the update deletes from being
//! garbage-collected (so that it could be restored); it is collected right after.

use std::collections::HashSet;
use std::sync::Arc;

use gststreamwire::whiteboard::model::{ITEMS, PAGES};
use parking_lot::Mutex;
use yrs::sync::awareness::AwarenessUpdate;
use yrs::types::Events;
use yrs::undo::{Options, UndoManager};
use yrs::{BranchID, DeepObservable, Doc, Origin, Out, ReadTxn, Transact, TransactionMut, Update};

/// Origin of the transaction that applies a checked update (and key of its observers).
const ORIGIN: &str = "streamwire-guard";

/// The outcome of [`apply_checked`].
#[derive(Debug)]
pub(super) enum Checked {
    /// Applied; it changes only types of the sender (or none).
    Applied,
    /// It changed a type made by Yjs client `client` (not the sender's) and was undone. `update`
    /// is the update and its undoing together (the document's change since before the apply):
    /// it must be stored and sent to every member, the sender included.
    Reverted {
        /// The client that made the changed type.
        client: u64,
        /// The net change of the document.
        update: Vec<u8>,
    },
}

/// Apply `update` to `doc`; when it changes a type under `items` or `pages` whose maker's
/// client id `is_own` refuses, undo it. `Err` is yrs's failure to apply it.
pub(super) fn apply_checked(
    doc: &Doc,
    update: Update,
    is_own: impl Fn(u64) -> bool,
) -> Result<Checked, String> {
    let items = doc.get_or_insert_map(ITEMS);
    let pages = doc.get_or_insert_map(PAGES);
    let changed: Arc<Mutex<Vec<yrs::ID>>> = Arc::default();
    for root in [&items, &pages] {
        let sink = changed.clone();
        root.observe_deep(ORIGIN, move |_: &TransactionMut, events: &Events| {
            let mut sink = sink.lock();
            sink.extend(events.iter().filter_map(|e| match branch_id(&e.target()) {
                Some(BranchID::Nested(id)) => Some(id),
                _ => None,
            }));
        });
    }
    let mut undo = UndoManager::<()>::with_options(Options {
        capture_timeout_millis: 0,
        tracked_origins: HashSet::from([Origin::from(ORIGIN)]),
        ..Options::default()
    });
    undo.expand_scope(doc, &items);
    undo.expand_scope(doc, &pages);
    let deleted = update.delete_set().clone();
    let inserted = update.insertions(false);
    let before = doc.transact().state_vector();
    let applied = doc
        .transact_mut_with(ORIGIN)
        .apply_update(update)
        .map_err(|e| e.to_string());
    for root in [&items, &pages] {
        root.unobserve_deep(ORIGIN);
    }
    let foreign = applied.as_ref().ok().and_then(|_| {
        changed
            .lock()
            .iter()
            .map(|id| id.client.get())
            .find(|c| !is_own(*c))
    });
    match foreign {
        None => {
            undo.clear_all();
            drop(undo);
            collect(doc, &deleted);
            applied.map(|()| Checked::Applied)
        }
        Some(client) => {
            undo.undo_blocking();
            undo.clear_all();
            drop(undo);
            collect(doc, &deleted.merge(&inserted));
            Ok(Checked::Reverted {
                client,
                update: doc.transact().encode_state_as_update_v1(&before),
            })
        }
    }
}

/// Withdraw the presenter claims of a member without `admin`: every awareness state in
/// `update` with a `presenter` field other than `false` gets `presenter: false` (the web panel
/// follows a state whose `presenter` is truthy). Returns how many states were changed.
pub(super) fn drop_presenter_claims(update: &mut AwarenessUpdate) -> usize {
    let mut changed = 0;
    for entry in update.clients.values_mut() {
        let Ok(serde_json::Value::Object(mut state)) = serde_json::from_str(&entry.json) else {
            continue;
        };
        if state
            .get("presenter")
            .is_some_and(|p| *p != serde_json::Value::Bool(false))
        {
            state.insert("presenter".into(), serde_json::Value::Bool(false));
            entry.json = serde_json::Value::Object(state).to_string().into();
            changed += 1;
        }
    }
    changed
}

/// Garbage-collect what of `ids` is deleted (the undo manager kept it while it lived).
fn collect(doc: &Doc, ids: &yrs::IdSet) {
    if !ids.is_empty() {
        doc.transact_mut().gc(Some(ids));
    }
}

/// The id of a shared type (`None` for values that are not one).
fn branch_id(out: &Out) -> Option<BranchID> {
    use yrs::branch::Branch;
    let branch: &Branch = match out {
        Out::YMap(t) => t.as_ref(),
        Out::YArray(t) => t.as_ref(),
        Out::YText(t) => t.as_ref(),
        Out::YXmlElement(t) => t.as_ref(),
        Out::YXmlFragment(t) => t.as_ref(),
        Out::YXmlText(t) => t.as_ref(),
        _ => return None,
    };
    Some(branch.id())
}

#[cfg(test)]
mod tests {
    use gststreamwire::whiteboard::{Item, insert_item, items, remove_items};
    use yrs::updates::decoder::Decode;
    use yrs::{Map, StateVector, WriteTxn};

    use super::*;

    const ANN: u64 = 1;
    const BOB: u64 = 2;

    fn stroke(id: &str, points: usize) -> Item {
        let pts: Vec<[f32; 3]> = (0..points).map(|i| [i as f32, 1.0, 0.5]).collect();
        Item::pen(id, "p1", "", "#000000", 2.0, &pts)
    }

    /// What `from` has that `to` lacks.
    fn diff(from: &Doc, to: &Doc) -> Update {
        let sv = to.transact().state_vector();
        Update::decode_v1(&from.transact().encode_state_as_update_v1(&sv)).unwrap()
    }

    fn size(doc: &Doc) -> usize {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
            .len()
    }

    /// The server with ann's stroke `a1` and bob's `b1` (of `points` points), and both members.
    fn board(points: usize) -> (Doc, Doc, Doc) {
        let (server, ann, bob) = (
            Doc::new(),
            Doc::with_client_id(ANN),
            Doc::with_client_id(BOB),
        );
        insert_item(&mut ann.transact_mut(), &stroke("a1", 4));
        let u = diff(&ann, &server);
        assert!(matches!(
            apply_checked(&server, u, |c| c == ANN),
            Ok(Checked::Applied)
        ));
        let u = diff(&server, &bob);
        bob.transact_mut().apply_update(u).unwrap();
        insert_item(&mut bob.transact_mut(), &stroke("b1", points));
        let u = diff(&bob, &server);
        assert!(matches!(
            apply_checked(&server, u, |c| c == BOB),
            Ok(Checked::Applied)
        ));
        let u = diff(&server, &ann);
        ann.transact_mut().apply_update(u).unwrap();
        (server, ann, bob)
    }

    #[test]
    fn an_accepted_erase_is_garbage_collected_as_without_the_check() {
        let (server, _, bob) = board(2000);
        let plain = Doc::new();
        let u = diff(&server, &plain);
        plain.transact_mut().apply_update(u).unwrap();
        remove_items(&mut bob.transact_mut(), &["b1".to_owned()]);
        let u = diff(&bob, &server);
        assert!(!u.delete_set().is_empty());
        assert!(matches!(
            apply_checked(&server, u, |c| c == BOB),
            Ok(Checked::Applied)
        ));
        // The reference: the same erase applied without the check.
        let u = diff(&bob, &plain);
        plain.transact_mut().apply_update(u).unwrap();
        assert_eq!(items(&server.transact(), None).len(), 1);
        assert_eq!(
            size(&server),
            size(&plain),
            "the erased points are collected"
        );
        assert!(size(&server) < 2000, "{} bytes", size(&server));
    }

    #[test]
    fn a_change_inside_anothers_item_is_undone_with_the_rest_of_its_update() {
        let (server, ann, bob) = board(3);
        let before = items(&server.transact(), None);
        {
            // One transaction: bob erases his stroke and adds `dx` to ann's.
            let mut t = bob.transact_mut();
            remove_items(&mut t, &["b1".to_owned()]);
            let root = t.get_or_insert_map(ITEMS);
            let Some(Out::YMap(a1)) = root.get(&t, "a1") else {
                panic!("no a1")
            };
            a1.insert(&mut t, "dx", 50.0);
        }
        let u = diff(&bob, &server);
        let Ok(Checked::Reverted { client, update }) = apply_checked(&server, u, |c| c == BOB)
        else {
            panic!("not reverted");
        };
        assert_eq!(client, ANN);
        let mut after = items(&server.transact(), None);
        after.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(after, before, "as before: a1 unmoved, b1 back");
        // The net update brings bob and ann to the server's document.
        for m in [&bob, &ann] {
            m.transact_mut()
                .apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
            let mut got = items(&m.transact(), None);
            got.sort_by(|a, b| a.id.cmp(&b.id));
            assert_eq!(got, before);
            assert_eq!(
                m.transact().state_vector(),
                server.transact().state_vector()
            );
        }
    }
}
