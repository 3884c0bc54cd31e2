//! Identifier newtypes. Each parses once at the edge (`FromStr` / serde) so code that holds a
//! `TenantId` or a `DialogId` never checks it again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// Which identifier was being parsed (`tenantId`, `userId`, ...).
    pub kind: &'static str,
    /// What is wrong with it, for humans.
    pub reason: &'static str,
}

fn is_slug_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> Result<(), &'static str> = $check;
                check(s).map_err(|reason| IdError { kind: $kind, reason })?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn check_slug(s: &str, max: usize, length_rule: &'static str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > max {
        return Err(length_rule);
    }
    if !s.chars().all(is_slug_char) {
        return Err("may contain only a-z, 0-9, '_' and '-'");
    }
    Ok(())
}

fn check_prefixed(s: &str, prefix: &str) -> Result<(), &'static str> {
    check_prefixed_len(
        s,
        prefix,
        20,
        "must be the prefix followed by 20 characters a-z0-9",
    )
}

fn check_prefixed_len(
    s: &str,
    prefix: &str,
    len: usize,
    rule: &'static str,
) -> Result<(), &'static str> {
    match s.strip_prefix(prefix) {
        Some(rest)
            if rest.len() == len
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) =>
        {
            Ok(())
        }
        _ => Err(rule),
    }
}

id_type!(
    /// A tenant: `^[a-z0-9_-]{1,64}$` (no dots, because it goes into routing keys).
    TenantId,
    "tenantId",
    |s| check_slug(s, MAX_TENANT_ID_BYTES, "must be 1-64 characters")
);

/// Longest user id in characters when it is all ASCII.
pub const MAX_USER_ID_CHARS: usize = 100;
/// Longest user id in characters when any of them is not ASCII (4 bytes at most each).
pub const MAX_USER_ID_CHARS_UNICODE: usize = 32;
/// Longest user id in UTF-8 bytes (the two character bounds keep it within this). Routing keys
/// are AMQP short strings (at most 255 bytes) and the longest one we build,
/// `update.{tenant}.{userType}.{user}.{updateType}`, has 114 bytes besides the user id, so 128
/// bytes always fit.
pub const MAX_USER_ID_BYTES: usize = 128;
/// Longest tenant id (bytes; tenant ids are ASCII).
pub const MAX_TENANT_ID_BYTES: usize = 64;
/// Longest user type (bytes; user types are ASCII).
pub const MAX_USER_TYPE_BYTES: usize = 32;

/// Characters a user id may not contain: routing-key and path separators, whitespace, control
/// characters and the byte-order mark.
pub fn is_forbidden_in_user_id(c: char) -> bool {
    matches!(c, '.' | '*' | '#' | '/' | '\u{feff}') || c.is_whitespace() || c.is_control()
}

id_type!(
    /// An end user of a tenant: 1-100 ASCII characters, or 1-32 characters when any of them is
    /// not ASCII (so at most 128 bytes, and every routing key fits); none of `.`, `*`, `#`, `/`,
    /// whitespace, control characters or U+FEFF (it goes into routing keys and URL paths).
    UserId,
    "userId",
    |s| {
        let n = s.chars().count();
        if n == 0 || n > MAX_USER_ID_CHARS {
            return Err("must be 1-100 characters");
        }
        if !s.is_ascii() && n > MAX_USER_ID_CHARS_UNICODE {
            return Err("must be at most 32 characters when any is not ASCII (at most 128 bytes)");
        }
        if s.chars().any(is_forbidden_in_user_id) {
            return Err("must not contain '.', '*', '#', '/', whitespace or control characters");
        }
        Ok(())
    }
);

id_type!(
    /// The kind of a user (`user`, `bot`, ...): `^[a-z0-9_-]{1,32}$`. Part of update routing keys.
    UserType,
    "userType",
    |s| check_slug(s, MAX_USER_TYPE_BYTES, "must be 1-32 characters")
);

id_type!(
    /// A dialog: `dlg_` + 20 time-sortable characters `[a-z0-9]`.
    DialogId,
    "dialogId",
    |s| check_prefixed(s, "dlg_")
);

id_type!(
    /// A message: `msg_` + 20 time-sortable characters `[a-z0-9]`.
    MessageId,
    "messageId",
    |s| check_prefixed(s, "msg_")
);

id_type!(
    /// An API key's id (not its secret): `key_` + 12 characters `[a-z0-9]`.
    KeyId,
    "keyId",
    |s| check_prefixed_len(s, "key_", 12, "must be 'key_' followed by 12 characters a-z0-9")
);

impl Default for UserType {
    fn default() -> Self {
        Self("user".to_owned())
    }
}

/// The scopes an API key may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read anything of the tenant.
    Read,
    /// Create and change dialogs, messages, members, read state.
    Write,
    /// Delete.
    Delete,
}

impl Scope {
    /// Every scope, the default for a new key.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Delete];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Delete => "delete",
        }
    }
}

impl FromStr for Scope {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "delete" => Ok(Scope::Delete),
            _ => Err(IdError {
                kind: "scope",
                reason: "must be one of read, write, delete",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_reject_dots_and_uppercase() {
        assert!("tnt_acme-1".parse::<TenantId>().is_ok());
        assert!("tnt.acme".parse::<TenantId>().is_err());
        assert!("Acme".parse::<TenantId>().is_err());
        assert!("".parse::<TenantId>().is_err());
        assert!("a".repeat(65).parse::<TenantId>().is_err());
    }

    #[test]
    fn user_ids_reject_routing_key_characters() {
        assert!("alice@example-com+1".parse::<UserId>().is_ok());
        for bad in [
            "a.b",
            "a*b",
            "a#b",
            "a/b",
            "a b",
            "",
            "a\0b",
            "a\u{7}b",
            "a\u{85}b",
            "a\u{a0}b",
            "a\u{3000}b",
            "a\u{feff}b",
        ] {
            assert!(bad.parse::<UserId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn user_ids_are_bounded_by_characters_and_by_bytes() {
        assert!("a".repeat(100).parse::<UserId>().is_ok());
        assert!("a".repeat(101).parse::<UserId>().is_err());
        // 32 four-byte characters = 128 bytes: the largest that fits.
        let most = "\u{1F600}".repeat(32);
        assert!(most.parse::<UserId>().is_ok());
        assert!(most.len() <= MAX_USER_ID_BYTES);
        assert!(format!("{most}a").parse::<UserId>().is_err());
        // 100 emoji (400 bytes) and 40 Cyrillic letters are refused; 100 ASCII are not.
        assert!("\u{1F600}".repeat(100).parse::<UserId>().is_err());
        assert!("\u{0436}".repeat(40).parse::<UserId>().is_err());
        assert!("\u{0436}".repeat(32).parse::<UserId>().is_ok());
        assert!(
            MAX_TENANT_ID_BYTES
                + MAX_USER_TYPE_BYTES
                + MAX_USER_ID_BYTES
                + "update....presence".len()
                <= 255
        );
    }

    #[test]
    fn dialog_and_message_ids_need_prefix_and_twenty_chars() {
        assert!("dlg_0123456789abcdefghij".parse::<DialogId>().is_ok());
        assert!("dlg_0123456789abcdefghi".parse::<DialogId>().is_err());
        assert!("msg_0123456789abcdefghij".parse::<DialogId>().is_err());
        assert!("msg_0123456789abcdefghij".parse::<MessageId>().is_ok());
    }

    #[test]
    fn ids_deserialize_through_validation() {
        let ok: Result<TenantId, _> = serde_json::from_str("\"acme\"");
        assert!(ok.is_ok());
        let bad: Result<TenantId, _> = serde_json::from_str("\"a.b\"");
        assert!(bad.is_err());
    }
}
