//! Rate limits of the login routes (governor, in memory per instance). A refused request
//! learns how long to wait (`Retry-After`).
//!
//! - `request-code`: per client IP (any phone), per phone *and* client IP, and per phone over
//!   all IPs (a higher cap that bounds what SMS to one number cost).
//! - `verify-code`: per client IP and per phone, on top of the 5 attempts a code survives
//!   (counted in the store, atomically, across instances).
//!
//! Why request-code is limited per phone and IP: someone who floods request-code for a number
//! that is not theirs spends their own phone+IP budget, not the budget of the number's owner on
//! their own network. And a refusal never touches the code already sent: the owner of the phone
//! received every code sent to it (the flooder's too) and can sign in with the newest one until
//! it expires.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use crate::phone::Phone;

/// Per-hour budgets of the login routes.
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    /// Codes per phone and client IP.
    pub codes_per_phone_ip: u32,
    /// Codes per phone over all IPs.
    pub codes_per_phone: u32,
    /// Codes per client IP over all phones.
    pub codes_per_ip: u32,
    /// Verification attempts per phone.
    pub verify_per_phone: u32,
    /// Verification attempts per client IP.
    pub verify_per_ip: u32,
}

/// The limiters of `request-code` and `verify-code`.
#[derive(Debug)]
pub struct CodeLimits {
    code_phone_ip: DefaultKeyedRateLimiter<(String, Option<IpAddr>)>,
    code_phone: DefaultKeyedRateLimiter<String>,
    code_ip: DefaultKeyedRateLimiter<IpAddr>,
    verify_phone: DefaultKeyedRateLimiter<String>,
    verify_ip: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn hourly<K: std::hash::Hash + Eq + Clone>(n: u32) -> DefaultKeyedRateLimiter<K> {
    RateLimiter::keyed(Quota::per_hour(
        NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN),
    ))
}

impl CodeLimits {
    /// Budgets per hour, each a burst refilling evenly over the hour.
    pub fn new(b: Budgets) -> Self {
        Self {
            code_phone_ip: hourly(b.codes_per_phone_ip),
            code_phone: hourly(b.codes_per_phone),
            code_ip: hourly(b.codes_per_ip),
            verify_phone: hourly(b.verify_per_phone),
            verify_ip: hourly(b.verify_per_ip),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one code request from the IP's, the phone+IP's and the phone's budgets, or says
    /// how long to wait.
    pub fn check_request(&self, ip: Option<IpAddr>, phone: &Phone) -> Result<(), ApiError> {
        if let Some(ip) = ip {
            self.code_ip.check_key(&ip).map_err(|n| self.refusal(n))?;
        }
        self.code_phone_ip
            .check_key(&(phone.to_string(), ip))
            .map_err(|n| self.refusal(n))?;
        self.code_phone
            .check_key(&phone.to_string())
            .map_err(|n| self.refusal(n))
    }

    /// Takes one verification attempt from the IP's and the phone's budgets.
    pub fn check_verify(&self, ip: Option<IpAddr>, phone: &Phone) -> Result<(), ApiError> {
        if let Some(ip) = ip {
            self.verify_ip.check_key(&ip).map_err(|n| self.refusal(n))?;
        }
        self.verify_phone
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
        self.code_phone_ip.retain_recent();
        self.code_phone.retain_recent();
        self.code_ip.retain_recent();
        self.verify_phone.retain_recent();
        self.verify_ip.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets() -> Budgets {
        Budgets {
            codes_per_phone_ip: 2,
            codes_per_phone: 3,
            codes_per_ip: 100,
            verify_per_phone: 3,
            verify_per_ip: 100,
        }
    }

    #[test]
    fn a_phone_over_its_budget_from_one_ip_must_wait_but_not_from_another() {
        let limits = CodeLimits::new(budgets());
        let phone: Phone = "+15550001111".parse().unwrap();
        let attacker = Some(IpAddr::from([10, 0, 0, 9]));
        assert!(limits.check_request(attacker, &phone).is_ok());
        assert!(limits.check_request(attacker, &phone).is_ok());
        match limits.check_request(attacker, &phone) {
            Err(ApiError::RateLimited { retry_after_secs }) => {
                assert!((1..=1800).contains(&retry_after_secs))
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // The owner, elsewhere, still gets a code; the phone-wide cap then stops everyone.
        let owner = Some(IpAddr::from([192, 168, 1, 2]));
        assert!(limits.check_request(owner, &phone).is_ok());
        assert!(limits.check_request(owner, &phone).is_err());
        let other: Phone = "+15550002222".parse().unwrap();
        assert!(limits.check_request(attacker, &other).is_ok());
    }

    #[test]
    fn an_ip_over_its_budget_is_refused_for_any_phone() {
        let limits = CodeLimits::new(Budgets {
            codes_per_ip: 1,
            ..budgets()
        });
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        assert!(limits
            .check_request(ip, &"+15550001111".parse().unwrap())
            .is_ok());
        assert!(limits
            .check_request(ip, &"+15550002222".parse().unwrap())
            .is_err());
    }

    #[test]
    fn verification_attempts_are_limited_per_phone_and_per_ip() {
        let limits = CodeLimits::new(budgets());
        let phone: Phone = "+15550003333".parse().unwrap();
        for i in 0..3u8 {
            let ip = Some(IpAddr::from([10, 0, 1, i]));
            assert!(limits.check_verify(ip, &phone).is_ok());
        }
        assert!(limits
            .check_verify(Some(IpAddr::from([10, 0, 1, 9])), &phone)
            .is_err());
        let limits = CodeLimits::new(Budgets {
            verify_per_ip: 1,
            ..budgets()
        });
        let ip = Some(IpAddr::from([10, 0, 2, 1]));
        assert!(limits.check_verify(ip, &phone).is_ok());
        assert!(limits
            .check_verify(ip, &"+15550004444".parse().unwrap())
            .is_err());
    }
}
