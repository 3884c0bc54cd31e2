//! In-process serialization by key over a fixed set of locks (bounded memory whatever the
//! number of keys). Correctness never depends on it: unique indexes and transactions do. It
//! keeps concurrent work on the same keys in one process from colliding in the store and
//! retrying in lock-step: sends into one busy dialog (each would conflict on the dialog's
//! `lastSeq`), fan-outs that share recipients (each would collide on their seqs).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use tokio::sync::{Mutex, MutexGuard};

/// A fixed set of locks keys hash onto.
#[derive(Debug)]
pub struct Stripes {
    stripes: Vec<Mutex<()>>,
}

/// Held while the work runs; dropping it releases every stripe.
#[derive(Debug)]
pub struct Held<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl Default for Stripes {
    fn default() -> Self {
        Self::new(256)
    }
}

impl Stripes {
    /// `stripes` locks (at least one).
    pub fn new(stripes: usize) -> Self {
        Self {
            stripes: (0..stripes.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Locks the stripes of `keys`, always in ascending order so two callers cannot deadlock.
    pub async fn lock<K: Hash>(&self, keys: impl IntoIterator<Item = K>) -> Held<'_> {
        let mut idx: Vec<usize> = keys.into_iter().map(|k| self.stripe(&k)).collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards = Vec::with_capacity(idx.len());
        for i in idx {
            guards.push(self.stripes[i].lock().await);
        }
        Held { _guards: guards }
    }

    fn stripe<K: Hash>(&self, key: &K) -> usize {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() % self.stripes.len() as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_set_waits_while_an_overlapping_set_is_held() {
        let locks = Stripes::new(1024);
        let held = locks.lock([("acme", "a"), ("acme", "b")]).await;
        assert!(tokio::time::timeout(
            std::time::Duration::from_millis(20),
            locks.lock([("acme", "b")])
        )
        .await
        .is_err());
        drop(held);
        let _again = locks.lock([("acme", "b")]).await;
    }
}
