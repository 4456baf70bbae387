//! The archive's running totals (conversations, messages, attachments, deleted
//! remotely), kept in the `totals` tree by every write in the same transaction, so
//! `convos status` reads one key instead of walking 100,000 index entries (a walk
//! that also pulled about 20 MB of pages into the daemon's cache for good).
//!
//! Archives written before the tree existed have no key: the first reader counts once
//! (under the write-order lock, so no write slips between the count and the key) and
//! stores it; writes before that leave the key absent.

use super::Counts;
use sled::transaction::{TransactionalTree, UnabortableTransactionError};
use std::cell::Cell;

/// The one key of the `totals` tree.
pub(super) const KEY: &[u8] = b"all";

/// How one transaction changes the totals (each conversation written adds its part).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Delta {
    conversations: i64,
    messages: i64,
    attachments: i64,
    deleted_remotely: i64,
}

impl Delta {
    /// The change from a conversation's previous state (`None` when new) to its new one,
    /// each given as (visible messages, deleted remotely).
    pub(super) fn conversation(old: Option<(u32, bool)>, new: (u32, bool)) -> Self {
        let (old_messages, old_deleted) = old.unwrap_or((0, false));
        Self {
            conversations: i64::from(old.is_none()),
            messages: i64::from(new.0) - i64::from(old_messages),
            attachments: 0,
            deleted_remotely: i64::from(new.1) - i64::from(old_deleted),
        }
    }

    /// `n` attachments more.
    pub(super) fn attachments(n: i64) -> Self {
        Self {
            attachments: n,
            ..Self::default()
        }
    }

    /// Adds this delta to the one held in `cell`.
    pub(super) fn add_to(self, cell: &Cell<Delta>) {
        let d = cell.get();
        cell.set(Delta {
            conversations: d.conversations + self.conversations,
            messages: d.messages + self.messages,
            attachments: d.attachments + self.attachments,
            deleted_remotely: d.deleted_remotely + self.deleted_remotely,
        });
    }
}

/// Applies `delta` to the stored totals inside a transaction; nothing when the archive
/// has not counted them yet (or the value is unreadable: then the key goes, and the
/// next reader counts again).
pub(super) fn tx_apply(
    totals: &TransactionalTree,
    delta: Delta,
) -> Result<(), UnabortableTransactionError> {
    if delta == Delta::default() {
        return Ok(());
    }
    let Some(v) = totals.get(KEY)? else {
        return Ok(());
    };
    match decode(&v) {
        Some(c) => {
            totals.insert(KEY, &encode(&apply(c, delta))[..])?;
        }
        None => {
            totals.remove(KEY)?;
        }
    }
    Ok(())
}

fn apply(c: Counts, d: Delta) -> Counts {
    let add = |v: u64, d: i64| v.saturating_add_signed(d);
    Counts {
        conversations: add(c.conversations, d.conversations),
        messages: add(c.messages, d.messages),
        attachments: add(c.attachments, d.attachments),
        deleted_remotely: add(c.deleted_remotely, d.deleted_remotely),
    }
}

/// The stored form: four u64 BE.
pub(super) fn encode(c: &Counts) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (slot, v) in out.chunks_exact_mut(8).zip([
        c.conversations,
        c.messages,
        c.attachments,
        c.deleted_remotely,
    ]) {
        slot.copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// Reads an [`encode`]d value; `None` when it is not one.
pub(super) fn decode(v: &[u8]) -> Option<Counts> {
    let b: &[u8; 32] = v.try_into().ok()?;
    let n = |i: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[i * 8..i * 8 + 8]);
        u64::from_be_bytes(x)
    };
    Some(Counts {
        conversations: n(0),
        messages: n(1),
        attachments: n(2),
        deleted_remotely: n(3),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_rejects_other_lengths() {
        let c = Counts {
            conversations: 100_000,
            messages: 1 << 40,
            attachments: 3,
            deleted_remotely: 7,
        };
        assert_eq!(decode(&encode(&c)), Some(c));
        assert_eq!(decode(b"short"), None);
    }

    #[test]
    fn deltas_add_up() {
        let cell = Cell::new(Delta::default());
        Delta::conversation(None, (4, false)).add_to(&cell);
        Delta::conversation(Some((4, false)), (6, true)).add_to(&cell);
        Delta::attachments(1).add_to(&cell);
        let c = apply(
            Counts {
                conversations: 1,
                messages: 2,
                ..Counts::default()
            },
            cell.get(),
        );
        assert_eq!(
            (
                c.conversations,
                c.messages,
                c.attachments,
                c.deleted_remotely
            ),
            (2, 8, 1, 1)
        );
    }
}
