//! Dialog events. `dialog.create`, `dialog.changed` and `dialog.member.add` go to every member
//! (the added ones included) with the member's view; `dialog.read` goes to the reader only, with
//! their new watermark and unread count; `dialog.member.remove` goes to the remaining members
//! and, once, to the removed user (from the event: their membership is gone); `dialog.delete`
//! goes to everyone who was a member (from the event: the dialog is gone).

use chat3_sdk::events::{DialogChanged, DialogDeleted, DialogRead, MemberRemoved, MembersAdded};
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
    /// `dialog.member.add`.
    MembersAdded(Vec<Member>),
    /// `dialog.member.remove`.
    MemberRemoved(MemberRemoved),
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
            EventType::DialogMemberAdd => {
                DialogEvent::MembersAdded(event.payload::<MembersAdded>().map_err(poison)?.members)
            }
            EventType::DialogMemberRemove => {
                DialogEvent::MemberRemoved(event.payload().map_err(poison)?)
            }
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
            DialogEvent::MemberRemoved(r) => Recipients::MembersAnd(r.member.user_id.clone()),
            DialogEvent::Deleted(d) => {
                Recipients::Listed(d.members.iter().map(|m| m.user_id.clone()).collect())
            }
            DialogEvent::Created | DialogEvent::Changed(_) | DialogEvent::MembersAdded(_) => {
                Recipients::Members
            }
        }
    }

    /// The sections besides `dialog`: the member's own state, and what the event changed.
    pub fn sections(&self, data: &mut Map<String, Value>, dialog: &DialogDoc, member: &MemberDoc) {
        data.insert("member".into(), member_view(dialog, member));
        match self {
            DialogEvent::MembersAdded(added) => {
                data.insert("members".into(), json!(added));
            }
            DialogEvent::Changed(c) => {
                data.insert("changed".into(), json!(c.changed));
                data.insert("meta".into(), json!(c.meta));
            }
            DialogEvent::MemberRemoved(r) => {
                data.insert("removedMember".into(), json!(r.member));
            }
            DialogEvent::Created | DialogEvent::Deleted(_) | DialogEvent::Read(_) => {}
        }
    }

    /// What `user` receives when current state no longer has their membership (or the dialog):
    /// the removed user's one update about their removal, and each former member's update about
    /// the deletion. `None`: they receive nothing (they left before the event was fanned out).
    pub fn departed(&self, event: &EventEnvelope, user: &UserId) -> Option<(Member, Value)> {
        match self {
            DialogEvent::MemberRemoved(r) if &r.member.user_id == user => {
                let data = json!({
                    "dialog": {
                        "dialogId": event.dialog_id,
                        "name": r.name,
                        "lastSeq": r.last_seq,
                        "unreadCount": 0,
                        "lastReadSeq": r.member.last_read_seq,
                        "removed": true,
                    },
                    "member": r.member,
                    "removedMember": r.member,
                });
                Some((r.member.clone(), data))
            }
            DialogEvent::Deleted(d) => {
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
            _ => None,
        }
    }
}
