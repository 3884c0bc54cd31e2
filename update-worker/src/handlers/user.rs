//! User events. `user.add` and `user.changed` go to the user themself, as a `user` update
//! carrying the user as stored then; they concern no dialog. `user.remove` produces no stored
//! update: the user's feed is deleted with them (their dialogs' other members learn from the
//! `dialog.member.remove` of each dialog they were removed from).

use chat3_sdk::events::{UserAdded, UserChanged};
use chat3_sdk::{EventEnvelope, EventType, User, UserId, UserType};
use serde_json::{json, Value};

use super::{poison, Recipients};
use crate::fanout::ProcessError;

/// A handled user event.
#[derive(Debug, Clone)]
pub enum UserEvent {
    /// `user.add`.
    Added(User),
    /// `user.changed`, with what changed.
    Changed(User, Vec<String>),
}

impl UserEvent {
    /// The user event `event` is, `None` when it is not one handled here.
    pub fn of(event: &EventEnvelope) -> Result<Option<Self>, ProcessError> {
        Ok(Some(match event.event_type {
            EventType::UserAdd => {
                UserEvent::Added(event.payload::<UserAdded>().map_err(poison)?.user)
            }
            EventType::UserChanged => {
                let c = event.payload::<UserChanged>().map_err(poison)?;
                UserEvent::Changed(c.user, c.changed)
            }
            _ => return Ok(None),
        }))
    }

    fn user(&self) -> &User {
        match self {
            UserEvent::Added(u) | UserEvent::Changed(u, _) => u,
        }
    }

    /// Who receives an update: the user.
    pub fn recipients(&self) -> Recipients {
        Recipients::Only(self.user().user_id.clone())
    }

    /// The update of `user` (the user themself): who they are and the data.
    pub fn direct(&self, user: &UserId) -> Option<(UserId, UserType, Value)> {
        let u = self.user();
        if &u.user_id != user {
            return None;
        }
        let data = match self {
            UserEvent::Added(u) => json!({"user": u}),
            UserEvent::Changed(u, changed) => json!({"user": u, "changed": changed}),
        };
        Some((u.user_id.clone(), u.user_type.clone(), data))
    }
}
