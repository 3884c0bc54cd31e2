//! Rate limits on code requests, per phone and per client IP (governor, in memory per
//! instance). A refused request learns how long to wait (`Retry-After`).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use crate::phone::Phone;

/// The limiters of `request-code`.
#[derive(Debug)]
pub struct CodeLimits {
    phone: DefaultKeyedRateLimiter<String>,
    ip: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl CodeLimits {
    /// `per_phone` and `per_ip` codes per hour, as bursts refilling evenly over the hour.
    pub fn new(per_phone: u32, per_ip: u32) -> Self {
        let quota = |n: u32| Quota::per_hour(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            phone: RateLimiter::keyed(quota(per_phone)),
            ip: RateLimiter::keyed(quota(per_ip)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from the IP's and the phone's budgets, or says how long to wait.
    pub fn check(&self, ip: Option<IpAddr>, phone: &Phone) -> Result<(), ApiError> {
        if let Some(ip) = ip {
            self.ip.check_key(&ip).map_err(|n| self.refusal(n))?;
        }
        self.phone
            .check_key(&phone.to_string())
            .map_err(|n| self.refusal(n))
    }

    fn refusal(&self, not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> ApiError {
        let wait = not_until.wait_time_from(self.clock.now());
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::RateLimited {
            retry_after_secs: secs.max(1),
        }
    }

    /// Forgets keys whose budget is full again (called periodically to bound memory).
    pub fn prune(&self) {
        self.phone.retain_recent();
        self.ip.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_over_its_budget_must_wait() {
        let limits = CodeLimits::new(2, 100);
        let phone: Phone = "+15550001111".parse().unwrap();
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        assert!(limits.check(ip, &phone).is_ok());
        assert!(limits.check(ip, &phone).is_ok());
        match limits.check(ip, &phone) {
            Err(ApiError::RateLimited { retry_after_secs }) => {
                assert!((1..=1800).contains(&retry_after_secs))
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let other: Phone = "+15550002222".parse().unwrap();
        assert!(limits.check(ip, &other).is_ok());
    }

    #[test]
    fn an_ip_over_its_budget_is_refused_for_any_phone() {
        let limits = CodeLimits::new(100, 1);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        assert!(limits.check(ip, &"+15550001111".parse().unwrap()).is_ok());
        assert!(limits.check(ip, &"+15550002222".parse().unwrap()).is_err());
    }
}
