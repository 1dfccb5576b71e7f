//! The audit writer: API-call records go through one task that appends them to the chain
//! in batches (group commit), so a busy portal writes one transaction for many calls.
//!
//! Callers that must know the record is stored (refused requests, mutating requests) await
//! [`AuditWriter::record`]; reads use [`AuditWriter::record_nowait`]. Readers of the audit log
//! call [`AuditWriter::flush`] first, so they see every call made before theirs.
//! Security-relevant changes do not go through here: the store writes their entries in the
//! same transaction as the change.

use palisade_store::{AuditEvent, DynStore};
use tokio::sync::{mpsc, oneshot};

enum Msg {
    Event(Box<AuditEvent>, Option<oneshot::Sender<bool>>),
    Flush(oneshot::Sender<()>),
}

/// Handle to the writer task.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

const BATCH: usize = 512;

impl AuditWriter {
    /// Starts the writer task; it ends when every handle is dropped and the queue is drained.
    pub fn spawn(store: DynStore) -> (AuditWriter, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Msg>(8192);
        let task = tokio::spawn(async move {
            let mut batch: Vec<AuditEvent> = Vec::with_capacity(BATCH);
            let mut waiters: Vec<oneshot::Sender<bool>> = Vec::new();
            let mut flushers: Vec<oneshot::Sender<()>> = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut next = Some(first);
                while let Some(msg) = next.take() {
                    match msg {
                        Msg::Event(e, w) => {
                            batch.push(*e);
                            waiters.extend(w);
                        }
                        Msg::Flush(f) => flushers.push(f),
                    }
                    if batch.len() < BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                let ok = match store.append_audit(std::mem::take(&mut batch)).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(error = %e, "audit log write failed");
                        false
                    }
                };
                for w in waiters.drain(..) {
                    let _ = w.send(ok);
                }
                for f in flushers.drain(..) {
                    let _ = f.send(());
                }
            }
        });
        (AuditWriter { tx }, task)
    }

    /// Records an event and waits until it is stored; false when it could not be.
    pub async fn record(&self, event: AuditEvent) -> bool {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(Msg::Event(Box::new(event), Some(tx)))
            .await
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Records an event without waiting.
    pub fn record_nowait(&self, event: AuditEvent) {
        if let Err(e) = self.tx.try_send(Msg::Event(Box::new(event), None)) {
            // The queue is full: hand it over without blocking the caller.
            let tx = self.tx.clone();
            let msg = match e {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m,
            };
            tokio::spawn(async move {
                let _ = tx.send(msg).await;
            });
        }
    }

    /// Waits until everything queued before this call is stored.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
