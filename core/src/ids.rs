//! Generation of time-sortable identifiers: 9 base-36 characters of milliseconds since the epoch
//! followed by 11 random base-36 characters, so ids created later sort later and indexes on them
//! stay local.

use std::time::{SystemTime, UNIX_EPOCH};

use chat3_sdk::{DialogId, MessageId};
use rand::Rng;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// 20 characters: 9 of time, 11 random.
fn sortable20() -> String {
    let mut out = vec![b'0'; 20];
    let mut t = now_ms().max(0) as u64;
    for i in (0..9).rev() {
        out[i] = ALPHABET[(t % 36) as usize];
        t /= 36;
    }
    let mut rng = rand::rng();
    for slot in out.iter_mut().skip(9) {
        *slot = ALPHABET[rng.random_range(0..36)];
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `n` random characters `[a-z0-9]`.
pub fn random_base36(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..36)] as char)
        .collect()
}

/// A new dialog id.
pub fn dialog_id() -> DialogId {
    DialogId::try_from(format!("dlg_{}", sortable20())).unwrap_or_else(|_| unreachable!())
}

/// A new message id.
pub fn message_id() -> MessageId {
    MessageId::try_from(format!("msg_{}", sortable20())).unwrap_or_else(|_| unreachable!())
}

/// A new event id (`evt_` + 20).
pub fn event_id() -> String {
    format!("evt_{}", sortable20())
}

/// A new update id (`upd_` + 20).
pub fn update_id() -> String {
    format!("upd_{}", sortable20())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_sort_by_time() {
        let a = dialog_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = dialog_id();
        assert!(a.as_str() < b.as_str());
        assert_eq!(message_id().as_str().len(), 24);
    }
}
