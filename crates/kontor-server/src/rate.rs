//! API rate limits as HubSpot applies them to private apps: requests per ten seconds per token,
//! requests per day per account, and searches per second per token, each by the account's
//! tier. Every answer to a token's request carries the `X-HubSpot-RateLimit-*` headers; past a
//! limit the answer is 429 with HubSpot's body (`errorType` `RATE_LIMIT`, `policyName`) and
//! `Retry-After`, which the official clients' retry settings act on.
//!
//! The counts live in memory on each node, in fixed windows (HubSpot's ten-second window
//! rolls): with several nodes behind a load balancer each counts what it serves. Written here
//! rather than taken from a rate-limiting crate for the same reason as `throttle.rs`: a map
//! and a clock, and the headers HubSpot's clients read come from the counts themselves.

use axum::http::{HeaderMap, HeaderValue};
use kontor_domain::Tier;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window of the per-token limit.
pub const INTERVAL: Duration = Duration::from_secs(10);
const DAY_MS: i64 = 24 * 3600 * 1000;
/// Beyond this many tokens or accounts in memory, counts whose windows are over are dropped.
const MAX_KEYS: usize = 100_000;

/// One tier's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    /// Requests per token per ten seconds.
    pub per_ten_seconds: u32,
    /// Requests per account per day (UTC).
    pub per_day: u32,
    /// Searches per token per second.
    pub searches_per_second: u32,
}

/// Each tier's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    pub starter: TierLimits,
    pub professional: TierLimits,
    pub enterprise: TierLimits,
}

impl Default for ApiLimits {
    /// HubSpot's published limits for private apps: 100 a ten seconds and 250,000 a day on
    /// Starter, 190 and 625,000 on Professional, 190 and 1,000,000 on Enterprise; five
    /// searches a second.
    fn default() -> Self {
        Self {
            starter: TierLimits {
                per_ten_seconds: 100,
                per_day: 250_000,
                searches_per_second: 5,
            },
            professional: TierLimits {
                per_ten_seconds: 190,
                per_day: 625_000,
                searches_per_second: 5,
            },
            enterprise: TierLimits {
                per_ten_seconds: 190,
                per_day: 1_000_000,
                searches_per_second: 5,
            },
        }
    }
}

impl ApiLimits {
    pub fn of(&self, tier: Tier) -> TierLimits {
        match tier {
            Tier::Starter => self.starter,
            Tier::Professional => self.professional,
            Tier::Enterprise => self.enterprise,
        }
    }
}

/// Which limit a refused request met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    TenSecondly,
    Daily,
    Secondly,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::TenSecondly => "TEN_SECONDLY_ROLLING",
            Policy::Daily => "DAILY",
            Policy::Secondly => "SECONDLY",
        }
    }
    /// HubSpot's message, on which the Node client's retry decorator keys.
    pub fn message(self) -> &'static str {
        match self {
            Policy::TenSecondly => "You have reached your ten_secondly_rolling limit.",
            Policy::Daily => "You have reached your daily limit.",
            Policy::Secondly => "You have reached your secondly limit.",
        }
    }
}

/// What a request's answer tells of the limits: the `X-HubSpot-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub limits: TierLimits,
    pub remaining: u32,
    pub daily_remaining: u32,
}

impl Standing {
    pub fn write(&self, h: &mut HeaderMap) {
        let per_second = (self.limits.per_ten_seconds / 10).max(1);
        let remaining_second = self.remaining.min(per_second);
        for (name, value) in [
            ("x-hubspot-ratelimit-daily", self.limits.per_day),
            ("x-hubspot-ratelimit-daily-remaining", self.daily_remaining),
            (
                "x-hubspot-ratelimit-interval-milliseconds",
                INTERVAL.as_millis() as u32,
            ),
            ("x-hubspot-ratelimit-max", self.limits.per_ten_seconds),
            ("x-hubspot-ratelimit-remaining", self.remaining),
            ("x-hubspot-ratelimit-secondly", per_second),
            ("x-hubspot-ratelimit-secondly-remaining", remaining_second),
        ] {
            h.insert(name, HeaderValue::from(value));
        }
    }
}

/// A refusal: the limit met, how long until it admits again, and the standing to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub policy: Policy,
    pub retry_after: Duration,
    pub standing: Standing,
}

#[derive(Debug, Default)]
struct Counts {
    /// Per token: the ten-second window's start and count, the second's start and searches.
    tokens: HashMap<(i64, i64), (Instant, u32, Instant, u32)>,
    /// Per account: the UTC day and its count.
    accounts: HashMap<i64, (i64, u32)>,
}

pub struct ApiLimiter {
    /// `None`: no limits (the operator turned them off).
    limits: Option<ApiLimits>,
    counts: Mutex<Counts>,
}

impl ApiLimiter {
    pub fn new(limits: Option<ApiLimits>) -> Self {
        Self {
            limits,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// Counts one request of `token` of `account` (a search when `search`), as of `now` and
    /// `now_ms` (the wall clock, for the day). `Ok(None)` when there are no limits.
    pub fn admit(
        &self,
        account: i64,
        tier: Tier,
        token: i64,
        search: bool,
        now: Instant,
        now_ms: i64,
    ) -> Result<Option<Standing>, Refusal> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let day = now_ms.div_euclid(DAY_MS);
        let Some(limits) = self.limits.map(|l| l.of(tier)) else {
            // No limits; the day's requests are still counted, for the usage API.
            let a = c.accounts.entry(account).or_insert((day, 0));
            *a = (day, if a.0 == day { a.1.saturating_add(1) } else { 1 });
            return Ok(None);
        };
        if c.tokens.len() >= MAX_KEYS && !c.tokens.contains_key(&(account, token)) {
            c.tokens
                .retain(|_, (start, ..)| now.duration_since(*start) < INTERVAL);
            if c.tokens.len() >= MAX_KEYS {
                c.tokens.clear();
            }
        }
        if c.accounts.len() >= MAX_KEYS && !c.accounts.contains_key(&account) {
            c.accounts.retain(|_, (d, _)| *d == day);
            if c.accounts.len() >= MAX_KEYS {
                c.accounts.clear();
            }
        }
        let t = c.tokens.entry((account, token)).or_insert((now, 0, now, 0));
        if now.duration_since(t.0) >= INTERVAL {
            (t.0, t.1) = (now, 0);
        }
        if now.duration_since(t.2) >= Duration::from_secs(1) {
            (t.2, t.3) = (now, 0);
        }
        let interval_left = INTERVAL.saturating_sub(now.duration_since(t.0));
        let second_left = Duration::from_secs(1).saturating_sub(now.duration_since(t.2));
        let token_state = *t;
        let a = c.accounts.entry(account).or_insert((day, 0));
        if a.0 != day {
            *a = (day, 0);
        }
        let standing = |used: u32, used_today: u32| Standing {
            limits,
            remaining: limits.per_ten_seconds.saturating_sub(used),
            daily_remaining: limits.per_day.saturating_sub(used_today),
        };
        let refuse = |policy, wait, used, used_today| Refusal {
            policy,
            retry_after: wait,
            standing: standing(used, used_today),
        };
        if a.1 >= limits.per_day {
            let wait_ms = ((day + 1) * DAY_MS - now_ms).max(1000) as u64;
            return Err(refuse(
                Policy::Daily,
                Duration::from_millis(wait_ms),
                token_state.1,
                a.1,
            ));
        }
        if token_state.1 >= limits.per_ten_seconds {
            return Err(refuse(
                Policy::TenSecondly,
                interval_left,
                token_state.1,
                a.1,
            ));
        }
        if search && token_state.3 >= limits.searches_per_second {
            return Err(refuse(Policy::Secondly, second_left, token_state.1, a.1));
        }
        a.1 += 1;
        let used_today = a.1;
        let t = c.tokens.get_mut(&(account, token)).expect("inserted above");
        t.1 += 1;
        if search {
            t.3 += 1;
        }
        Ok(Some(standing(t.1, used_today)))
    }

    /// `account`'s requests so far on the UTC day of `now_ms` (on this node), and its daily
    /// limit (`None` without limits).
    pub fn daily_usage(&self, account: i64, tier: Tier, now_ms: i64) -> (u32, Option<u32>) {
        let day = now_ms.div_euclid(DAY_MS);
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let used = c
            .accounts
            .get(&account)
            .filter(|(d, _)| *d == day)
            .map_or(0, |(_, n)| *n);
        (used, self.limits.map(|l| l.of(tier).per_day))
    }
}

/// The start of the UTC day after the one of `now_ms`, when the daily counts start again.
pub fn next_day_ms(now_ms: i64) -> i64 {
    (now_ms.div_euclid(DAY_MS) + 1) * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ApiLimits {
        let t = TierLimits {
            per_ten_seconds: 3,
            per_day: 5,
            searches_per_second: 1,
        };
        ApiLimits {
            starter: t,
            professional: t,
            enterprise: t,
        }
    }

    #[test]
    fn each_limit_admits_its_count_and_refuses_the_next() {
        let l = ApiLimiter::new(Some(small()));
        let (t0, day) = (Instant::now(), 10 * DAY_MS);
        let admit = |token, search, at: Duration, ms: i64| {
            l.admit(1, Tier::Starter, token, search, t0 + at, day + ms)
        };
        let s = admit(7, false, Duration::ZERO, 0).unwrap().unwrap();
        assert_eq!((s.remaining, s.daily_remaining), (2, 4));
        assert!(admit(7, true, Duration::ZERO, 0).is_ok());
        // A second search in the same second.
        let r = admit(7, true, Duration::from_millis(100), 100).unwrap_err();
        assert_eq!(r.policy, Policy::Secondly);
        assert!(r.retry_after <= Duration::from_millis(900));
        assert!(admit(7, false, Duration::from_millis(200), 200).is_ok());
        let r = admit(7, false, Duration::from_millis(300), 300).unwrap_err();
        assert_eq!((r.policy, r.standing.remaining), (Policy::TenSecondly, 0));
        assert_eq!(r.retry_after, Duration::from_millis(9700));
        // Another token of the account has its own ten seconds, but the day is shared.
        assert!(admit(8, false, Duration::from_millis(300), 300).is_ok());
        assert!(admit(8, false, Duration::from_millis(400), 400).is_ok());
        let r = admit(8, false, Duration::from_millis(500), 500).unwrap_err();
        assert_eq!(r.policy, Policy::Daily);
        assert_eq!(r.standing.daily_remaining, 0);
        // The next window admits again; the next day does too.
        assert_eq!(
            admit(7, false, Duration::from_secs(10), 10_000)
                .unwrap_err()
                .policy,
            Policy::Daily
        );
        assert!(admit(7, false, Duration::from_secs(11), DAY_MS).is_ok());
    }

    #[test]
    fn without_limits_every_request_is_admitted_and_no_headers_are_sent() {
        let l = ApiLimiter::new(None);
        for _ in 0..1000 {
            let r = l.admit(1, Tier::Starter, 1, true, Instant::now(), 0);
            assert_eq!(r, Ok(None));
        }
        assert_eq!(l.daily_usage(1, Tier::Starter, 0), (1000, None));
        assert_eq!(l.daily_usage(1, Tier::Starter, DAY_MS), (0, None));
    }

    #[test]
    fn the_headers_are_the_seven_hubspot_sends() {
        let mut h = HeaderMap::new();
        Standing {
            limits: ApiLimits::default().enterprise,
            remaining: 150,
            daily_remaining: 999_000,
        }
        .write(&mut h);
        assert_eq!(h.len(), 7);
        assert_eq!(h["x-hubspot-ratelimit-max"], "190");
        assert_eq!(h["x-hubspot-ratelimit-interval-milliseconds"], "10000");
        assert_eq!(h["x-hubspot-ratelimit-secondly"], "19");
        assert_eq!(h["x-hubspot-ratelimit-secondly-remaining"], "19");
        assert_eq!(h["x-hubspot-ratelimit-daily-remaining"], "999000");
    }
}
