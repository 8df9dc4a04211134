//! A deduplicating work queue with the semantics of client-go's: a key added many times is
//! processed once; a key is never processed by two workers at once (re-adds while processing
//! are deferred until `done`); failures are retried with per-key exponential backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Ctx, Key, Reconciled};

#[derive(Default)]
struct Inner {
    queue: VecDeque<Key>,
    dirty: HashSet<Key>,
    processing: HashSet<Key>,
    failures: HashMap<Key, u32>,
}

/// The queue.
#[derive(Default)]
pub(crate) struct WorkQueue {
    inner: Mutex<Inner>,
    notify: Notify,
}

impl WorkQueue {
    /// Adds a key (no-op if already queued).
    pub fn add(&self, key: Key) {
        let mut q = self.inner.lock();
        if !q.dirty.insert(key.clone()) {
            return;
        }
        if !q.processing.contains(&key) {
            q.queue.push_back(key);
            drop(q);
            self.notify.notify_one();
        }
    }

    fn try_get(&self) -> Option<Key> {
        let mut q = self.inner.lock();
        let key = q.queue.pop_front()?;
        q.dirty.remove(&key);
        q.processing.insert(key.clone());
        Some(key)
    }

    /// Waits for a key.
    pub async fn get(&self) -> Key {
        loop {
            let notified = self.notify.notified();
            if let Some(k) = self.try_get() {
                return k;
            }
            notified.await;
        }
    }

    /// Marks a key processed; re-queues it if it was added meanwhile.
    pub fn done(&self, key: &Key) {
        let mut q = self.inner.lock();
        q.processing.remove(key);
        if q.dirty.contains(key) {
            q.queue.push_back(key.clone());
            drop(q);
            self.notify.notify_one();
        }
    }

    /// Records a failure and returns the backoff before retrying.
    pub fn failed(&self, key: &Key) -> Duration {
        let mut q = self.inner.lock();
        let n = q.failures.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        let ms = 5u64.saturating_mul(1u64 << (*n).min(12)).min(10_000);
        Duration::from_millis(ms)
    }

    /// Clears the failure count of a key.
    pub fn forget(&self, key: &Key) {
        self.inner.lock().failures.remove(key);
    }

    /// Number of keys waiting.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().queue.len()
    }
}

/// Spawns `n` workers draining the queue selected by `sel` with `reconcile`.
pub(crate) fn spawn_workers<F, Fut>(
    ctx: Arc<Ctx>,
    sel: fn(&Ctx) -> &WorkQueue,
    n: usize,
    shutdown: CancellationToken,
    reconcile: F,
) -> Vec<JoinHandle<()>>
where
    F: Fn(Arc<Ctx>, Key) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Reconciled> + Send + 'static,
{
    (0..n)
        .map(|_| {
            let ctx = ctx.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let key = tokio::select! {
                        k = sel(&ctx).get() => k,
                        _ = shutdown.cancelled() => return,
                    };
                    let res = tokio::select! {
                        r = reconcile(ctx.clone(), key.clone()) => r,
                        _ = shutdown.cancelled() => return,
                    };
                    let q = sel(&ctx);
                    let retry = match res {
                        Ok(after) => {
                            q.forget(&key);
                            after
                        }
                        Err(e) => {
                            tracing::debug!(key = ?key, error = %e, "reconcile failed");
                            Some(q.failed(&key))
                        }
                    };
                    q.done(&key);
                    if let Some(d) = retry {
                        let ctx = ctx.clone();
                        let key = key.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(d).await;
                            sel(&ctx).add(key);
                        });
                    }
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        ("ns".to_string(), s.to_string())
    }

    #[tokio::test]
    async fn dedups_and_defers_while_processing() {
        let q = WorkQueue::default();
        q.add(k("a"));
        q.add(k("a"));
        q.add(k("b"));
        assert_eq!(q.len(), 2);
        let a = q.get().await;
        assert_eq!(a, k("a"));
        // Re-added while processing: not handed out until done.
        q.add(k("a"));
        assert_eq!(q.get().await, k("b"));
        assert_eq!(q.len(), 0);
        q.done(&a);
        assert_eq!(q.get().await, k("a"));
        assert!(q.failed(&a) < q.failed(&a));
        q.forget(&a);
        assert_eq!(q.failed(&a), Duration::from_millis(10));
    }
}
