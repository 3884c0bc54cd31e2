//! Who is connected: per user, the open sockets (each a bounded channel plus a kick switch)
//! and whether the user's binding exists on the current broker link. Pure bookkeeping, no I/O,
//! so the dispatch rules are unit-tested here.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use chat3_sdk::{Update, UserId};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

/// Why the hub disconnected a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickReason {
    /// The socket's buffer was full: the client does not keep up.
    SlowConsumer,
    /// The broker link was lost; live updates may be missing, the client must resume.
    BrokerLost,
}

/// A one-shot switch the hub flips to make a socket close itself.
#[derive(Debug, Default)]
pub struct Kick {
    token: CancellationToken,
    reason: OnceLock<KickReason>,
}

impl Kick {
    /// Flips the switch (the first reason wins).
    pub fn kick(&self, reason: KickReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Cancelled once kicked.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Why, once kicked.
    pub fn reason(&self) -> Option<KickReason> {
        self.reason.get().copied()
    }
}

struct Conn {
    tx: mpsc::Sender<Arc<Update>>,
    kick: Arc<Kick>,
}

#[derive(Default)]
struct UserEntry {
    conns: HashMap<u64, Conn>,
    /// Generation of the broker link the user's binding was made on.
    bound: Option<u64>,
}

/// The socket table. Reads (dispatch) never wait on broker calls.
#[derive(Default)]
pub struct Registry {
    users: RwLock<HashMap<UserId, UserEntry>>,
}

impl Registry {
    /// Adds socket `id` of `user`; true when the user has no binding on link `generation` yet.
    pub fn add(
        &self,
        user: &UserId,
        id: u64,
        tx: mpsc::Sender<Arc<Update>>,
        kick: Arc<Kick>,
        generation: u64,
    ) -> bool {
        let Ok(mut users) = self.users.write() else {
            return true;
        };
        let entry = users.entry(user.clone()).or_default();
        entry.conns.insert(id, Conn { tx, kick });
        entry.bound != Some(generation)
    }

    /// Records that `user`'s binding now exists on link `generation`.
    pub fn mark_bound(&self, user: &UserId, generation: u64) {
        if let Ok(mut users) = self.users.write() {
            if let Some(e) = users.get_mut(user) {
                e.bound = Some(generation);
            }
        }
    }

    /// Removes socket `id`. When it was the user's last one, returns `Some(binding generation)`
    /// (`Some(None)`: last socket, never bound) so the caller can drop the binding.
    pub fn remove(&self, user: &UserId, id: u64) -> Option<Option<u64>> {
        let mut users = self.users.write().ok()?;
        let entry = users.get_mut(user)?;
        entry.conns.remove(&id);
        if entry.conns.is_empty() {
            users.remove(user).map(|e| e.bound)
        } else {
            None
        }
    }

    /// Hands `update` to every socket of its user without waiting; a full socket is kicked.
    /// Returns how many sockets took it.
    pub fn dispatch(&self, update: &Arc<Update>) -> usize {
        let Ok(users) = self.users.read() else {
            return 0;
        };
        let Some(entry) = users.get(&update.user_id) else {
            return 0;
        };
        let mut delivered = 0;
        for conn in entry.conns.values() {
            match conn.tx.try_send(update.clone()) {
                Ok(()) => delivered += 1,
                Err(TrySendError::Full(_)) => conn.kick.kick(KickReason::SlowConsumer),
                Err(TrySendError::Closed(_)) => {}
            }
        }
        delivered
    }

    /// Kicks every socket (the broker link is gone).
    pub fn kick_all(&self, reason: KickReason) {
        if let Ok(users) = self.users.read() {
            for conn in users.values().flat_map(|e| e.conns.values()) {
                conn.kick.kick(reason);
            }
        }
    }

    /// Connected users and sockets.
    pub fn counts(&self) -> (usize, usize) {
        self.users
            .read()
            .map(|u| (u.len(), u.values().map(|e| e.conns.len()).sum()))
            .unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat3_sdk::UpdateType;

    fn update(user: &str, seq: u64) -> Arc<Update> {
        Arc::new(Update {
            update_id: "upd".into(),
            tenant_id: "acme".parse().unwrap(),
            user_id: user.parse().unwrap(),
            user_type: Default::default(),
            seq: Some(seq),
            update_type: UpdateType::Message,
            event_type: chat3_sdk::EventType::MessageCreate,
            event_id: "evt".into(),
            dialog_id: None,
            created_at: 0,
            data: serde_json::Value::Null,
        })
    }

    #[test]
    fn a_user_is_bound_once_per_link_and_released_with_the_last_socket() {
        let reg = Registry::default();
        let ann: UserId = "usr_ann00000".parse().unwrap();
        let (tx, _rx) = mpsc::channel(4);
        assert!(reg.add(&ann, 1, tx.clone(), Arc::default(), 1));
        reg.mark_bound(&ann, 1);
        assert!(!reg.add(&ann, 2, tx.clone(), Arc::default(), 1));
        // After a reconnect (generation 2) the binding must be made again.
        assert!(reg.add(&ann, 3, tx, Arc::default(), 2));
        assert_eq!(reg.remove(&ann, 1), None);
        assert_eq!(reg.remove(&ann, 2), None);
        assert_eq!(reg.remove(&ann, 3), Some(Some(1)));
        assert_eq!(reg.counts(), (0, 0));
    }

    #[test]
    fn updates_reach_only_their_users_sockets_and_slow_sockets_are_kicked() {
        let reg = Registry::default();
        let ann: UserId = "usr_ann00000".parse().unwrap();
        let bob: UserId = "usr_bob00000".parse().unwrap();
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let (slow_tx, _slow_rx) = mpsc::channel(1);
        let (bob_tx, mut bob_rx) = mpsc::channel(8);
        let slow_kick = Arc::new(Kick::default());
        reg.add(&ann, 1, fast_tx, Arc::default(), 1);
        reg.add(&ann, 2, slow_tx, slow_kick.clone(), 1);
        reg.add(&bob, 3, bob_tx, Arc::default(), 1);

        assert_eq!(reg.dispatch(&update("usr_ann00000", 1)), 2);
        assert_eq!(reg.dispatch(&update("usr_ann00000", 2)), 1);
        assert_eq!(slow_kick.reason(), Some(KickReason::SlowConsumer));
        assert!(slow_kick.token().is_cancelled());
        assert_eq!(fast_rx.try_recv().unwrap().seq, Some(1));
        assert_eq!(fast_rx.try_recv().unwrap().seq, Some(2));
        assert!(bob_rx.try_recv().is_err());
    }
}
