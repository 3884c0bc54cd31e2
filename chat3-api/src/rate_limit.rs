//! The per-key rate limit (token buckets), and the state of the current request's bucket for
//! the `X-RateLimit-*` headers.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;

type KeyedLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Per-key token buckets.
pub struct Limiter {
    limiter: KeyedLimiter,
    burst: u32,
}

/// Rate-limit state of the current request, turned into `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy)]
pub struct RateInfo {
    /// Burst size.
    pub limit: u32,
    /// Requests left in the burst.
    pub remaining: u32,
}

impl Limiter {
    /// `per_second` sustained, `burst` at once, per key.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let ps = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let b = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(ps).allow_burst(b))
                .with_middleware::<StateInformationMiddleware>(),
            burst: b.get(),
        }
    }

    /// Takes one request of `key` from its bucket, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<RateInfo, ApiError> {
        match self.limiter.check_key(&key.to_owned()) {
            Ok(snapshot) => Ok(RateInfo {
                limit: self.burst,
                remaining: snapshot.remaining_burst_capacity(),
            }),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::RateLimited {
                    retry_after: wait.as_secs().max(1),
                    limit: self.burst,
                })
            }
        }
    }
}
