//! Per-user sequenced updates: storage and reads (owned by the update worker work).
