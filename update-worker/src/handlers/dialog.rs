//! Dialog events. `dialog.create` and `dialog.changed` go to every member with the member's
//! view; `dialog.read` goes to the reader only, with their new watermark and unread count;
//! `dialog.delete` goes to everyone who was a member (from the event: the dialog is gone).

use chat3_sdk::events::{DialogChanged, DialogDeleted, DialogRead};
use chat3_sdk::{EventEnvelope, EventType, Member, UserId};
use serde_json::{json, Map, Value};

use super::{poison, Recipients};
use crate::fanout::ProcessError;
use crate::state::member_view;
use chat3_core::docs::{DialogDoc, MemberDoc};

/// A handled dialog event.
#[derive(Debug, Clone)]
pub enum DialogEvent {
    /// `dialog.create`: recipients and views come from current state.
    Created,
    /// `dialog.changed`.
    Changed(DialogChanged),
    /// `dialog.delete`.
    Deleted(DialogDeleted),
    /// `dialog.read` by this user.
    Read(UserId),
}

impl DialogEvent {
    /// The dialog event `event` is, `None` when it is not one handled here.
    pub fn of(event: &EventEnvelope) -> Result<Option<Self>, ProcessError> {
        Ok(Some(match event.event_type {
            EventType::DialogCreate => DialogEvent::Created,
            EventType::DialogChanged => DialogEvent::Changed(event.payload().map_err(poison)?),
            EventType::DialogDelete => DialogEvent::Deleted(event.payload().map_err(poison)?),
            EventType::DialogRead => {
                DialogEvent::Read(event.payload::<DialogRead>().map_err(poison)?.user_id)
            }
            _ => return Ok(None),
        }))
    }

    /// Who receives an update.
    pub fn recipients(&self) -> Recipients {
        match self {
            DialogEvent::Read(reader) => Recipients::Only(reader.clone()),
            DialogEvent::Deleted(d) => {
                Recipients::Listed(d.members.iter().map(|m| m.user_id.clone()).collect())
            }
            DialogEvent::Created | DialogEvent::Changed(_) => Recipients::Members,
        }
    }

    /// The sections besides `dialog`: the member's own state, and what changed.
    pub fn sections(&self, data: &mut Map<String, Value>, dialog: &DialogDoc, member: &MemberDoc) {
        data.insert("member".into(), member_view(dialog, member));
        if let DialogEvent::Changed(c) = self {
            data.insert("changed".into(), json!(c.changed));
            data.insert("meta".into(), json!(c.meta));
        }
    }

    /// What a former member receives about the deletion (the dialog and their membership are
    /// gone from current state): their membership as it was and the data.
    pub fn departed(&self, user: &UserId) -> Option<(Member, Value)> {
        let DialogEvent::Deleted(d) = self else {
            return None;
        };
        let m = d.members.iter().find(|m| &m.user_id == user)?;
        let data = json!({
            "dialog": {
                "dialogId": d.dialog_id,
                "name": d.name,
                "deleted": true,
                "deletedAt": d.deleted_at,
            },
            "member": m,
        });
        Some((m.clone(), data))
    }
}
