//! Per-client limits on sign-in: how many sign-in requests one client address may send per
//! minute, whatever the addresses and passwords it tries.
//!
//! The count lives in memory on each node: it stops one client from trying many accounts
//! (which the per-address lock cannot see) and from filling the database with failures. It
//! is written here rather than taken from a rate-limiting crate because it is one map and a
//! clock, and the crates that offer it bring several dependencies for features we do not use.

use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Beyond this many client addresses in memory, counts whose window is over are dropped
/// (and, if every one is live, all are: a flood of addresses resets the map, it does not
/// grow it).
const MAX_CLIENTS: usize = 100_000;

/// Who may sign in how often, and which proxies' `X-Forwarded-For` to believe.
pub struct ClientLimiter {
    per_minute: u32,
    trusted_proxies: Vec<IpAddr>,
    counts: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl ClientLimiter {
    pub fn new(per_minute: u32, trusted_proxies: Vec<IpAddr>) -> Self {
        Self {
            per_minute,
            trusted_proxies,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `client`; `Err(wait)` when it is over its limit.
    pub fn admit(&self, client: IpAddr) -> Result<(), Duration> {
        let key = bucket(client);
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= MAX_CLIENTS && !counts.contains_key(&key) {
            counts.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if counts.len() >= MAX_CLIENTS {
                counts.clear();
            }
        }
        let entry = counts.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            return Err(WINDOW.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the nearest
    /// address in `X-Forwarded-For` that is not one of ours.
    fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|ip| !self.trusted_proxies.contains(ip))
            .unwrap_or(peer)
    }
}

/// The address a request comes from (see `ClientLimiter::client_of`); `None` when the
/// server was not started with connection info (a router driven in process).
pub struct Client(pub Option<IpAddr>);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Client(peer.map(|p| {
            state.sign_in_limiter.client_of(p, &parts.headers)
        })))
    }
}

/// IPv6 clients are counted per /64, the block one subscriber usually holds.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_client_and_window() {
        let l = ClientLimiter::new(3, vec![]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.admit(a).is_ok());
        }
        let wait = l.admit(a).unwrap_err();
        assert!(wait <= WINDOW && wait > Duration::from_secs(50));
        assert!(l.admit(b).is_ok(), "another client has its own count");
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let l = ClientLimiter::new(1, vec![]);
        assert!(l.admit("2001:db8::1".parse().unwrap()).is_ok());
        assert!(l.admit("2001:db8::2".parse().unwrap()).is_err());
        assert!(l.admit("2001:db8:0:1::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let l = ClientLimiter::new(1, vec![proxy]);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        assert_eq!(
            l.client_of(proxy, &h),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "192.0.2.50".parse().unwrap();
        assert_eq!(
            l.client_of(stranger, &h),
            stranger,
            "a stranger's header is ignored"
        );
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.1".parse().unwrap());
        assert_eq!(
            l.client_of(proxy, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }
}
