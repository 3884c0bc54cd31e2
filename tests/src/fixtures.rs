//! Small builders for request bodies used across the end-to-end tests.

use chat3_sdk::{CreateDialog, CreateMessage, MemberInput, UserId};

/// A user id from a literal (panics on an invalid one: test input).
pub fn user(s: &str) -> UserId {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// A dialog with these members (type `user`), no name or meta.
pub fn dialog_of(users: &[&str]) -> CreateDialog {
    CreateDialog {
        members: users
            .iter()
            .map(|u| MemberInput {
                user_id: user(u),
                user_type: Default::default(),
            })
            .collect(),
        name: None,
        meta: None,
        created_by: None,
    }
}

/// A plain text message from `sender`.
pub fn text(sender: &str, content: &str) -> CreateMessage {
    CreateMessage {
        sender_id: user(sender),
        content: content.to_owned(),
        message_type: None,
        meta: None,
        quoted_message_id: None,
        client_message_id: None,
    }
}
