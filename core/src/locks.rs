//! In-process queues per key: writes of one instance that would conflict on the same stored
//! document (reactions and receipts of one message) wait for each other here instead of
//! running together and losing to each other's write conflicts, which under a burst wastes
//! work quadratically. Writers in other instances still conflict and run again (the
//! transaction's retry), so this only spares work; correctness comes from the transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

/// Entries kept before dead ones are swept.
const SWEEP_AT: usize = 1024;

/// One async lock per key, created on first use and dropped when nobody holds or waits for it.
#[derive(Debug, Clone, Default)]
pub struct KeyLocks {
    inner: Arc<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>>,
}

impl KeyLocks {
    /// Waits for the lock of `key`; held until the guard is dropped.
    pub async fn lock(&self, key: String) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= SWEEP_AT {
                map.retain(|_, w| w.strong_count() > 0);
            }
            match map.get(&key).and_then(Weak::upgrade) {
                Some(l) => l,
                None => {
                    let l = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(key, Arc::downgrade(&l));
                    l
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_key_is_held_by_one_writer_at_a_time_and_keys_are_independent() {
        let locks = KeyLocks::default();
        let a = locks.lock("a".into()).await;
        let b = locks.lock("b".into()).await;
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.lock("a".into()).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a second writer of 'a' waits");
        drop(a);
        let again = tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await;
        assert!(matches!(again, Ok(Ok(_))), "it gets the lock once released");
        drop(b);
    }
}
