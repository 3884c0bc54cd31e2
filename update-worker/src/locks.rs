//! In-process serialization of fan-outs that share recipients. Correctness never depends on it
//! (the unique indexes do), but without it concurrent deliveries in one worker that touch the same
//! users (every message of a busy group) would collide on every seq and retry in lock-step.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use chat3_sdk::{TenantId, UserId};
use tokio::sync::{Mutex, MutexGuard};

/// A fixed set of locks users hash onto; bounded memory whatever the number of users.
#[derive(Debug)]
pub struct UserLocks {
    stripes: Vec<Mutex<()>>,
}

/// Held while a fan-out writes; dropping it releases every stripe.
#[derive(Debug)]
pub struct Held<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl Default for UserLocks {
    fn default() -> Self {
        Self::new(256)
    }
}

impl UserLocks {
    /// `stripes` locks (at least one).
    pub fn new(stripes: usize) -> Self {
        Self {
            stripes: (0..stripes.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Locks the stripes of `users`, always in ascending order so two callers cannot deadlock.
    pub async fn lock(&self, tenant: &TenantId, users: &[UserId]) -> Held<'_> {
        let mut idx: Vec<usize> = users.iter().map(|u| self.stripe(tenant, u)).collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards = Vec::with_capacity(idx.len());
        for i in idx {
            guards.push(self.stripes[i].lock().await);
        }
        Held { _guards: guards }
    }

    fn stripe(&self, tenant: &TenantId, user: &UserId) -> usize {
        let mut h = DefaultHasher::new();
        tenant.hash(&mut h);
        user.hash(&mut h);
        (h.finish() % self.stripes.len() as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_user_set_waits_while_an_overlapping_set_is_held() {
        let locks = UserLocks::new(1024);
        let t: TenantId = "acme".parse().unwrap_or_else(|_| unreachable!());
        let ab: Vec<UserId> = ["a", "b"].iter().filter_map(|u| u.parse().ok()).collect();
        let held = locks.lock(&t, &ab).await;
        let b = &ab[1..];
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), locks.lock(&t, b))
                .await
                .is_err()
        );
        drop(held);
        let _again = locks.lock(&t, b).await;
    }
}
