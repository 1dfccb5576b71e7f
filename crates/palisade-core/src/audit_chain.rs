//! The hash chain that makes the audit log tamper-evident.
//!
//! Each entry stores `prev_hash` (the hash of the entry before it) and
//! `hash = HMAC-SHA256(chain_key, prev_hash ‖ canonical(entry))`, where `canonical` encodes
//! every stored field with a length prefix, so no two different entries encode alike. The key
//! is derived from the portal's master key: someone who can write to the database but does
//! not hold the master key cannot forge a consistent chain after editing a row.
//!
//! [`Verifier`] walks the entries in sequence order and reports the first one where the chain
//! breaks: a changed row (its hash no longer matches), a removed row (a gap in the sequence,
//! or a `prev_hash` that does not match the entry before), or removed rows at the end (the
//! chain head, kept separately, is ahead of the last entry).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `prev_hash` of the first entry.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// The fields of an audit entry that the chain covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainedFields<'a> {
    /// Position in the log, from 1, without gaps.
    pub seq: i64,
    /// When, in epoch milliseconds.
    pub happened_on_ms: i64,
    /// Acting user name (or `unknown`, or `System:...`).
    pub username: &'a str,
    /// Acting user id, when known.
    pub user_id: Option<i64>,
    /// Token used, when any.
    pub token_id: Option<i64>,
    /// Source IP.
    pub ip: &'a str,
    /// User agent.
    pub user_agent: &'a str,
    /// HTTP method, or empty for non-HTTP events.
    pub method: &'a str,
    /// Request path, or empty.
    pub path: &'a str,
    /// HTTP status, when the entry records a request.
    pub status: Option<i64>,
    /// Machine-readable action, e.g. `api.call`, `user.create`, `token.denied`.
    pub action: &'a str,
    /// Human-readable description.
    pub description: &'a str,
}

fn put_bytes(mac: &mut Hmac<Sha256>, tag: u8, bytes: &[u8]) {
    mac.update(&[tag]);
    mac.update(&(bytes.len() as u64).to_le_bytes());
    mac.update(bytes);
}

fn put_opt(mac: &mut Hmac<Sha256>, tag: u8, v: Option<i64>) {
    match v {
        Some(n) => put_bytes(mac, tag, &n.to_le_bytes()),
        None => put_bytes(mac, tag | 0x80, &[]),
    }
}

/// Computes an entry's hash from the previous hash.
pub fn entry_hash(chain_key: &[u8], prev: &[u8; 32], e: &ChainedFields<'_>) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(chain_key)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    put_bytes(&mut mac, 0, prev);
    put_bytes(&mut mac, 1, &e.seq.to_le_bytes());
    put_bytes(&mut mac, 2, &e.happened_on_ms.to_le_bytes());
    put_bytes(&mut mac, 3, e.username.as_bytes());
    put_opt(&mut mac, 4, e.user_id);
    put_opt(&mut mac, 5, e.token_id);
    put_bytes(&mut mac, 6, e.ip.as_bytes());
    put_bytes(&mut mac, 7, e.user_agent.as_bytes());
    put_bytes(&mut mac, 8, e.method.as_bytes());
    put_bytes(&mut mac, 9, e.path.as_bytes());
    put_opt(&mut mac, 10, e.status);
    put_bytes(&mut mac, 11, e.action.as_bytes());
    put_bytes(&mut mac, 12, e.description.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The entry's content does not match its hash: it was edited.
    #[error("entry {seq} was modified (its hash does not match its content)")]
    Modified {
        /// The entry.
        seq: i64,
    },
    /// Entries before this one are missing.
    #[error("entries before {seq} are missing (expected {expected} next)")]
    Gap {
        /// The first entry after the gap.
        seq: i64,
        /// The sequence number that should have come.
        expected: i64,
    },
    /// The entry does not link to the one before it.
    #[error("entry {seq} does not link to the entry before it")]
    Unlinked {
        /// The entry.
        seq: i64,
    },
    /// The last entries were removed.
    #[error(
        "the log ends at entry {last} but its head says {head}: trailing entries were removed"
    )]
    Truncated {
        /// Last entry present.
        last: i64,
        /// Entry count recorded by the head.
        head: i64,
    },
    /// A stored hash is not 32 bytes of hex.
    #[error("entry {seq} has a malformed hash")]
    Malformed {
        /// The entry.
        seq: i64,
    },
}

impl ChainBreak {
    /// The sequence number to report as the first broken entry.
    pub fn seq(&self) -> i64 {
        match self {
            ChainBreak::Modified { seq }
            | ChainBreak::Gap { seq, .. }
            | ChainBreak::Unlinked { seq }
            | ChainBreak::Malformed { seq } => *seq,
            ChainBreak::Truncated { last, .. } => last.saturating_add(1),
        }
    }
}

/// Walks entries in sequence order.
#[derive(Debug)]
pub struct Verifier<'k> {
    key: &'k [u8],
    prev: [u8; 32],
    next_seq: i64,
}

impl<'k> Verifier<'k> {
    /// Starts at the first entry.
    pub fn new(chain_key: &'k [u8]) -> Self {
        Verifier {
            key: chain_key,
            prev: GENESIS,
            next_seq: 1,
        }
    }

    /// Feeds the next entry with its stored hashes (hex).
    pub fn feed(
        &mut self,
        fields: &ChainedFields<'_>,
        stored_prev_hex: &str,
        stored_hash_hex: &str,
    ) -> Result<(), ChainBreak> {
        let seq = fields.seq;
        if seq != self.next_seq {
            return Err(ChainBreak::Gap {
                seq,
                expected: self.next_seq,
            });
        }
        let mut stored_prev = [0u8; 32];
        let mut stored_hash = [0u8; 32];
        if hex::decode_to_slice(stored_prev_hex, &mut stored_prev).is_err()
            || hex::decode_to_slice(stored_hash_hex, &mut stored_hash).is_err()
        {
            return Err(ChainBreak::Malformed { seq });
        }
        if stored_prev != self.prev {
            return Err(ChainBreak::Unlinked { seq });
        }
        let computed = entry_hash(self.key, &self.prev, fields);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &computed[..],
            &stored_hash[..],
        )) {
            return Err(ChainBreak::Modified { seq });
        }
        self.prev = computed;
        self.next_seq = seq.saturating_add(1);
        Ok(())
    }

    /// Checks the end of the log against the head (entry count and last hash).
    pub fn finish(&self, head_seq: i64, head_hash_hex: &str) -> Result<i64, ChainBreak> {
        let last = self.next_seq - 1;
        if head_seq != last {
            return Err(ChainBreak::Truncated {
                last,
                head: head_seq,
            });
        }
        if last > 0 && head_hash_hex != hex::encode(self.prev) {
            return Err(ChainBreak::Unlinked { seq: last });
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(key: &[u8], n: i64) -> Vec<(String, String, String)> {
        let mut prev = GENESIS;
        let mut out = vec![];
        for seq in 1..=n {
            let desc = format!("event {seq}");
            let f = ChainedFields {
                seq,
                description: &desc,
                action: "x",
                ..Default::default()
            };
            let h = entry_hash(key, &prev, &f);
            out.push((desc, hex::encode(prev), hex::encode(h)));
            prev = h;
        }
        out
    }

    fn verify(
        key: &[u8],
        rows: &[(i64, String, String, String)],
        head: i64,
    ) -> Result<i64, ChainBreak> {
        let mut v = Verifier::new(key);
        let mut head_hash = String::new();
        for (seq, desc, prev, hash) in rows {
            let f = ChainedFields {
                seq: *seq,
                description: desc,
                action: "x",
                ..Default::default()
            };
            v.feed(&f, prev, hash)?;
            head_hash = hash.clone();
        }
        v.finish(head, &head_hash)
    }

    fn rows(key: &[u8], n: i64) -> Vec<(i64, String, String, String)> {
        chain(key, n)
            .into_iter()
            .enumerate()
            .map(|(i, (d, p, h))| (i as i64 + 1, d, p, h))
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(b"k", &rows(b"k", 5), 5), Ok(5));
        assert_eq!(verify(b"k", &[], 0), Ok(0));
    }

    #[test]
    fn edit_delete_truncate_and_wrong_key_are_found() {
        let mut r = rows(b"k", 5);
        r[2].1 = "edited".into();
        assert_eq!(verify(b"k", &r, 5), Err(ChainBreak::Modified { seq: 3 }));

        let mut r = rows(b"k", 5);
        r.remove(1);
        assert_eq!(
            verify(b"k", &r, 5),
            Err(ChainBreak::Gap {
                seq: 3,
                expected: 2
            })
        );

        let mut r = rows(b"k", 5);
        r.truncate(3);
        let e = verify(b"k", &r, 5).unwrap_err();
        assert_eq!(e, ChainBreak::Truncated { last: 3, head: 5 });
        assert_eq!(e.seq(), 4);

        assert_eq!(
            verify(b"other", &rows(b"k", 2), 2),
            Err(ChainBreak::Modified { seq: 1 })
        );
    }

    #[test]
    fn renumbering_after_delete_is_found() {
        // Delete entry 2 and renumber the rest: the link from 3 (now 2) to 1 breaks.
        let mut r = rows(b"k", 4);
        r.remove(1);
        for (i, row) in r.iter_mut().enumerate() {
            row.0 = i as i64 + 1;
        }
        assert_eq!(verify(b"k", &r, 3), Err(ChainBreak::Unlinked { seq: 2 }));
    }
}
