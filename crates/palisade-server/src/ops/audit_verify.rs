//! `palisade audit verify`: walks the whole chain and reports the first break.

use crate::error::ApiError;
use crate::portal::Portal;
use palisade_core::audit_chain::{ChainBreak, Verifier};

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry is intact.
    Intact {
        /// Entries checked.
        entries: i64,
    },
    /// The chain breaks.
    Broken(ChainBreak),
}

/// Verifies the audit chain.
pub async fn verify(portal: &Portal) -> Result<Verdict, ApiError> {
    let key = portal.keys.chain_key();
    let mut verifier = Verifier::new(&key);
    let (head_seq, head_hash) = portal.store.audit_head().await?;
    // Entries appended while we walk (a running portal) lie beyond the head read above.
    let mut after = 0;
    'pages: loop {
        let page = portal.store.scan_audit(after, 2000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            if entry.seq > head_seq {
                break 'pages;
            }
            if let Err(b) = verifier.feed(&entry.chained(), &entry.prev_hash, &entry.hash) {
                return Ok(Verdict::Broken(b));
            }
        }
    }
    match verifier.finish(head_seq, &head_hash) {
        Ok(entries) => Ok(Verdict::Intact { entries }),
        Err(b) => Ok(Verdict::Broken(b)),
    }
}
