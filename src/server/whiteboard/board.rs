//! One whiteboard in memory: the authoritative Yjs document, which Yjs client ids belong to
//! which user, and the checks an update must pass before it is applied.

use std::collections::HashMap;
use std::sync::Arc;

use gststreamwire::whiteboard::insert_page;

use super::guard;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// Owner of the server's own client id (initial page, imported documents, privacy deletions).
pub(super) const SERVER: &str = "";

/// Owner given to a deleted user's client ids: nobody can write as them again.
pub(super) const ERASED: &str = "\u{0}erased";

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Not a decodable Yjs update.
    Malformed(String),
    /// It writes as another user's client, or deletes what others made.
    Forbidden(String),
    /// It changes what another user made (found once applied, see `guard.rs`) and was undone:
    /// `update`, the update with its undoing, must be stored (with the client ids `claimed`,
    /// as for an accepted update) and sent to every member, the sender included.
    Reverted {
        /// Why, for the sender.
        why: String,
        /// The net change of the document (nothing visible).
        update: Vec<u8>,
        /// Client ids the update claimed for its sender.
        claimed: Vec<u64>,
    },
}

pub(super) struct Board {
    pub doc: Doc,
    owners: HashMap<u64, String>,
    /// Updates stored since the last compaction.
    pub since_compaction: usize,
    /// The full state ([`Board::state`]), encoded once per change of the document.
    cached: Option<Arc<[u8]>>,
}

impl Board {
    /// A new board: one empty page `p1`. Returns the board and its first state.
    pub fn create() -> (Board, Vec<u8>) {
        let doc = Doc::new();
        {
            let mut t = doc.transact_mut();
            insert_page(&mut t, "p1", 1.0, SERVER, None);
        }
        let state = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let mut owners = HashMap::new();
        owners.insert(doc.client_id().get(), SERVER.to_owned());
        (
            Board {
                doc,
                owners,
                since_compaction: 0,
                cached: None,
            },
            state,
        )
    }

    /// A stored board.
    pub fn restore(
        snapshot: Option<&[u8]>,
        updates: &[Vec<u8>],
        owners: Vec<(u64, String)>,
    ) -> Result<Board, String> {
        let doc = Doc::new();
        {
            let mut t = doc.transact_mut();
            for (i, u) in snapshot
                .into_iter()
                .chain(updates.iter().map(Vec::as_slice))
                .enumerate()
            {
                let u = Update::decode_v1(u).map_err(|e| format!("stored update {i}: {e}"))?;
                t.apply_update(u)
                    .map_err(|e| format!("stored update {i}: {e}"))?;
            }
        }
        let mut owners: HashMap<u64, String> = owners.into_iter().collect();
        owners.insert(doc.client_id().get(), SERVER.to_owned());
        Ok(Board {
            doc,
            owners,
            since_compaction: updates.len(),
            cached: None,
        })
    }

    /// The full state, compacted (deleted content garbage-collected): encoded on the first
    /// call after a change, then shared (every newcomer's sync answer, the compaction).
    pub fn state(&mut self) -> Arc<[u8]> {
        if let Some(s) = &self.cached {
            return s.clone();
        }
        let s: Arc<[u8]> = self
            .doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
            .into();
        self.cached = Some(s.clone());
        s
    }

    /// What a peer with state vector `sv` lacks.
    pub fn diff(&self, sv: &StateVector) -> Vec<u8> {
        self.doc.transact().encode_state_as_update_v1(sv)
    }

    /// The server's state vector.
    pub fn state_vector(&self) -> StateVector {
        self.doc.transact().state_vector()
    }

    /// Check an update of `user` (`admin`: the presenter) and apply it. Returns the client ids
    /// the update claimed for `user` for the first time.
    pub fn apply(&mut self, data: &[u8], user: &str, admin: bool) -> Result<Vec<u64>, Refusal> {
        let update = Update::decode_v1(data).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let mut claimed = Vec::new();
        for client in update.insertions(false).client_ids().map(|c| c.get()) {
            match self.owners.get(&client) {
                None => claimed.push(client),
                Some(owner) if owner == user => {}
                Some(owner) => {
                    return Err(Refusal::Forbidden(format!(
                        "the update writes as Yjs client {client}, which belongs to {}",
                        who(owner)
                    )));
                }
            }
        }
        if !admin {
            let foreign: Vec<u64> = update
                .delete_set()
                .client_ids()
                .map(|c| c.get())
                .filter(|c| self.owners.get(c).is_some_and(|o| o != user))
                .collect();
            if !foreign.is_empty() {
                // A full sync step 2 repeats every deletion the sender knows of: only the ones
                // the server has not applied yet count.
                let known = self.doc.transact().snapshot().delete_set;
                let fresh = update.delete_set().diff(&known);
                if let Some(c) = fresh
                    .client_ids()
                    .map(|c| c.get())
                    .find(|c| self.owners.get(c).is_some_and(|o| o != user))
                {
                    return Err(Refusal::Forbidden(format!(
                        "changing or deleting what {} made (a page, a stroke, a shape) needs the \
                         `admin` grant (the presenter); members may erase and move only their own items",
                        who(self.owners.get(&c).map(String::as_str).unwrap_or(SERVER))
                    )));
                }
            }
        }
        // Accepted or undone, the document changes: the shared state is stale. Not for an
        // empty update (no blocks, no deletions), such as a newcomer's answer to the server's
        // step 1: it changes nothing, and the next newcomer gets the same encoded state.
        if !update.is_empty() {
            self.cached = None;
        }
        if admin {
            self.doc
                .transact_mut()
                .apply_update(update)
                .map_err(|e| Refusal::Malformed(e.to_string()))?;
        } else {
            let owners = &self.owners;
            let checked = guard::apply_checked(&self.doc, update, |c| {
                owners.get(&c).map_or(claimed.contains(&c), |o| o == user)
            })
            .map_err(Refusal::Malformed)?;
            if let guard::Checked::Reverted { client, update } = checked {
                for c in &claimed {
                    self.owners.insert(*c, user.to_owned());
                }
                let maker = self
                    .owners
                    .get(&client)
                    .map(String::as_str)
                    .unwrap_or(SERVER);
                return Err(Refusal::Reverted {
                    why: format!(
                        "the update changes an item or page that {} made (a move sets its `dx`, \
                         `dy`; drawing on adds to its points): changing what others made needs \
                         the `admin` grant (the presenter); members may change, erase and move \
                         only their own items. The change was undone for every member",
                        who(maker)
                    ),
                    update,
                    claimed,
                });
            }
        }
        for c in &claimed {
            self.owners.insert(*c, user.to_owned());
        }
        Ok(claimed)
    }

    /// Make `ids` no longer writable by anyone but the server (after a privacy deletion).
    pub fn erase_owner(&mut self, user: &str) {
        for o in self.owners.values_mut() {
            if o == user {
                *o = ERASED.to_owned();
            }
        }
    }

    /// Run a server-side change and return its update (empty changes give `None`).
    pub fn server_change(
        &mut self,
        change: impl FnOnce(&mut yrs::TransactionMut),
    ) -> Option<Vec<u8>> {
        let before = self.state_vector();
        self.cached = None;
        {
            let mut t = self.doc.transact_mut();
            change(&mut t);
        }
        let txn = self.doc.transact();
        let changed = txn.state_vector() != before;
        let update = txn.encode_state_as_update_v1(&before);
        // Deletions do not move the state vector; an update with only deletions still counts.
        let has_deletes = Update::decode_v1(&update).is_ok_and(|u| !u.delete_set().is_empty());
        (changed || has_deletes).then_some(update)
    }
}

fn who(owner: &str) -> String {
    match owner {
        SERVER => "the server".to_owned(),
        ERASED => "a deleted user".to_owned(),
        u => format!("user `{u}`"),
    }
}

/// Encode a state vector (for tests and the Rust client).
#[allow(dead_code)]
pub(super) fn encode_sv(sv: &StateVector) -> Vec<u8> {
    sv.encode_v1()
}

#[cfg(test)]
mod tests {
    use gststreamwire::whiteboard::{Item, insert_item};

    use super::*;

    /// `member`'s changes since `sv`, as it would send them.
    fn since(member: &Doc, sv: &StateVector) -> Vec<u8> {
        member.transact().encode_state_as_update_v1(sv)
    }

    #[test]
    fn an_empty_update_keeps_the_encoded_state_and_a_stroke_renews_it() {
        let (mut board, _) = Board::create();
        let first = board.state();
        let member = Doc::with_client_id(7);
        let empty = since(&member, &StateVector::default());
        assert!(Update::decode_v1(&empty).unwrap().is_empty());
        board.apply(&empty, "ann", false).unwrap();
        assert!(Arc::ptr_eq(&first, &board.state()), "encoded again");
        let sv = member.transact().state_vector();
        let pts = [[1.0, 2.0, 0.5], [3.0, 4.0, 0.5]];
        insert_item(
            &mut member.transact_mut(),
            &Item::pen("s", "p1", "ann", "#000000", 2.0, &pts),
        );
        board.apply(&since(&member, &sv), "ann", false).unwrap();
        let second = board.state();
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(second.len() > first.len());
    }
}
