//! Resume after `since`: the socket subscribes live first (updates buffer in its channel), then
//! replays stored updates from the tenant API page by page, then drains the live buffer. One
//! [`Cursor`] sees every update on both paths and lets through only seqs above the last one
//! sent, so the overlap between replay and live is delivered exactly once and in order.

use async_trait::async_trait;
use chat3_sdk::client::{Client, Error as ClientError};
use chat3_sdk::{DialogId, Update, UpdatesPage, UserId};

/// Page size of replay requests.
pub const PAGE_LIMIT: u64 = 100;

/// Where stored updates come from (the tenant API; a fake in unit tests).
#[async_trait]
pub trait UpdateSource: Send + Sync + 'static {
    /// Stored updates of `user` after `since`, in seq order.
    async fn updates_after(
        &self,
        user: &UserId,
        since: u64,
        limit: u64,
    ) -> anyhow::Result<UpdatesPage>;

    /// Publishes that `user` started (or stopped) typing in `dialog`.
    async fn typing(
        &self,
        dialog: &DialogId,
        user: &UserId,
        is_typing: bool,
    ) -> Result<(), ClientError>;
}

#[async_trait]
impl UpdateSource for Client {
    async fn updates_after(
        &self,
        user: &UserId,
        since: u64,
        limit: u64,
    ) -> anyhow::Result<UpdatesPage> {
        match self.user_updates(user, since, limit).await {
            // An end user the tenant API does not know yet (signed up here, never added to a
            // dialog) has an empty feed.
            Err(ClientError::Api { status: 404, body }) if body.code == "user_not_found" => {
                Ok(UpdatesPage {
                    data: Vec::new(),
                    has_more: false,
                    resync_required: since > 0,
                    head_seq: 0,
                })
            }
            found => Ok(found?),
        }
    }

    async fn typing(
        &self,
        dialog: &DialogId,
        user: &UserId,
        is_typing: bool,
    ) -> Result<(), ClientError> {
        Client::typing(self, dialog, user, is_typing)
            .await
            .map(|_| ())
    }
}

/// The highest seq sent on one socket; decides what is new.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cursor {
    last: Option<u64>,
}

impl Cursor {
    /// A cursor that has already "sent" everything up to `since` (None: nothing yet).
    pub fn new(since: Option<u64>) -> Self {
        Self { last: since }
    }

    /// The last seq let through.
    pub fn last(&self) -> Option<u64> {
        self.last
    }

    /// True when an update with `seq` must be sent (and records it). Ephemeral updates (no
    /// seq) always pass; stored ones pass only above the last seq sent.
    pub fn admit(&mut self, seq: Option<u64>) -> bool {
        match (seq, self.last) {
            (None, _) => true,
            (Some(s), Some(last)) if s <= last => false,
            (Some(s), _) => {
                self.last = Some(s);
                true
            }
        }
    }

    /// Restarts after `seq` (after a resync the client reloads state up to the head).
    pub fn reset_to(&mut self, seq: u64) {
        self.last = Some(seq);
    }
}

/// One step of a replay.
#[derive(Debug)]
pub enum Step {
    /// The next stored updates, in seq order.
    Batch(Vec<Update>),
    /// `since` is older than retention (or newer than anything stored): the client must
    /// reload its state; the newest stored seq is given.
    Resync {
        /// Highest stored seq of the user.
        head_seq: u64,
    },
    /// Nothing more is stored.
    Done,
}

/// Pages through a user's stored updates after `since`.
pub struct Replay<'a> {
    source: &'a dyn UpdateSource,
    user: &'a UserId,
    since: u64,
    finished: bool,
}

impl<'a> Replay<'a> {
    /// A replay of `user`'s updates after `since`.
    pub fn new(source: &'a dyn UpdateSource, user: &'a UserId, since: u64) -> Self {
        Self {
            source,
            user,
            since,
            finished: false,
        }
    }

    /// The next page, a resync notice, or `Done`.
    pub async fn next(&mut self) -> anyhow::Result<Step> {
        if self.finished {
            return Ok(Step::Done);
        }
        let page = self
            .source
            .updates_after(self.user, self.since, PAGE_LIMIT)
            .await?;
        // A `since` above the head means the client's state is not ours (e.g. a reset store).
        if page.resync_required || page.head_seq < self.since {
            self.finished = true;
            return Ok(Step::Resync {
                head_seq: page.head_seq,
            });
        }
        match page.data.iter().filter_map(|u| u.seq).max() {
            Some(top) if top > self.since => self.since = top,
            // No progress: stop rather than ask for the same page forever.
            _ => self.finished = true,
        }
        if !page.has_more {
            self.finished = true;
        }
        if page.data.is_empty() {
            return Ok(Step::Done);
        }
        Ok(Step::Batch(page.data))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use chat3_sdk::UpdateType;

    fn upd(seq: u64) -> Update {
        Update {
            update_id: format!("upd_{seq}"),
            tenant_id: "acme".parse().unwrap(),
            user_id: "usr_abcd1234".parse().unwrap(),
            user_type: Default::default(),
            seq: Some(seq),
            update_type: UpdateType::Message,
            event_type: chat3_sdk::EventType::MessageCreate,
            event_id: format!("evt_{seq}"),
            dialog_id: None,
            created_at: 0,
            data: serde_json::Value::Null,
        }
    }

    /// Serves seqs 1..=head in pages; records the `since` of each call.
    struct Stored {
        head: u64,
        retained_from: u64,
        calls: Mutex<Vec<u64>>,
    }

    #[async_trait]
    impl UpdateSource for Stored {
        async fn updates_after(
            &self,
            _user: &UserId,
            since: u64,
            limit: u64,
        ) -> anyhow::Result<UpdatesPage> {
            self.calls.lock().unwrap().push(since);
            if since + 1 < self.retained_from {
                return Ok(UpdatesPage {
                    data: vec![],
                    has_more: false,
                    resync_required: true,
                    head_seq: self.head,
                });
            }
            let data: Vec<Update> = (since + 1..=self.head)
                .take(limit as usize)
                .map(upd)
                .collect();
            let last = data.last().and_then(|u| u.seq).unwrap_or(since);
            Ok(UpdatesPage {
                data,
                has_more: last < self.head,
                resync_required: false,
                head_seq: self.head,
            })
        }

        async fn typing(
            &self,
            _dialog: &chat3_sdk::DialogId,
            _user: &UserId,
            _is_typing: bool,
        ) -> Result<(), chat3_sdk::client::Error> {
            Ok(())
        }
    }

    fn user() -> UserId {
        "usr_abcd1234".parse().unwrap()
    }

    /// Runs the socket's resume algorithm on plain data: replay, then the live buffer.
    async fn resume(source: &Stored, since: u64, live: &[u64]) -> (Vec<u64>, bool) {
        let user = user();
        let mut cursor = Cursor::new(Some(since));
        let mut sent = vec![];
        let mut resync = false;
        let mut replay = Replay::new(source, &user, since);
        loop {
            match replay.next().await.unwrap() {
                Step::Batch(batch) => sent.extend(
                    batch
                        .iter()
                        .filter_map(|u| u.seq)
                        .filter(|s| cursor.admit(Some(*s))),
                ),
                Step::Resync { head_seq } => {
                    resync = true;
                    cursor.reset_to(head_seq);
                }
                Step::Done => break,
            }
        }
        sent.extend(live.iter().copied().filter(|s| cursor.admit(Some(*s))));
        (sent, resync)
    }

    #[tokio::test]
    async fn replay_pages_until_done_then_live_overlap_is_sent_once() {
        let source = Stored {
            head: 250,
            retained_from: 1,
            calls: Mutex::new(vec![]),
        };
        // Live updates that arrived while replaying overlap the stored ones.
        let (sent, resync) = resume(&source, 10, &[249, 250, 251, 252]).await;
        assert!(!resync);
        assert_eq!(sent, (11..=252).collect::<Vec<_>>());
        assert_eq!(*source.calls.lock().unwrap(), vec![10, 110, 210]);
    }

    #[tokio::test]
    async fn since_older_than_retention_asks_for_resync_and_skips_to_head() {
        let source = Stored {
            head: 40,
            retained_from: 20,
            calls: Mutex::new(vec![]),
        };
        let (sent, resync) = resume(&source, 5, &[39, 40, 41]).await;
        assert!(resync);
        assert_eq!(sent, vec![41]);
    }

    #[tokio::test]
    async fn since_above_the_stored_head_asks_for_resync_and_restarts_at_head() {
        let source = Stored {
            head: 4,
            retained_from: 1,
            calls: Mutex::new(vec![]),
        };
        let (sent, resync) = resume(&source, 9, &[5, 6]).await;
        assert!(resync);
        assert_eq!(sent, vec![5, 6]);
    }

    #[test]
    fn ephemeral_updates_always_pass_and_stale_seqs_do_not() {
        let mut c = Cursor::new(None);
        assert!(c.admit(Some(3)));
        assert!(c.admit(None));
        assert!(!c.admit(Some(3)));
        assert!(!c.admit(Some(2)));
        assert!(c.admit(Some(4)));
        assert_eq!(c.last(), Some(4));
    }
}
