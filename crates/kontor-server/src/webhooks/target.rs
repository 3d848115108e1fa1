//! Where events may be sent. A target is an `http` or `https` URL; unless the operator allows
//! it (`[webhooks] allow_private_targets`), not one on this machine or its private networks, so
//! that an account cannot make the server call what only the server can reach. Names are
//! checked when they are resolved, at each delivery (a name can point elsewhere later), and
//! redirects are not followed.

use crate::error::ApiError;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The operator's rules for sending events (`[webhooks]`).
#[derive(Debug, Clone)]
pub struct Policy {
    pub allow_private_targets: bool,
    /// The wait before the first retry; each next one waits twice as long (up to 6 hours).
    pub retry_base: Duration,
    /// How long a request may take (HubSpot: 5 seconds).
    pub timeout: Duration,
    /// How long a node's claim on events it is sending lasts: after a crash, they are sent
    /// again once it lapses.
    pub claim: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            retry_base: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            claim: Duration::from_secs(60),
        }
    }
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space, RFC 6598
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

impl Policy {
    /// Checks a target URL as given; returns it as it will be used (and signed).
    pub fn check_target(&self, raw: &str) -> Result<String, ApiError> {
        let bad =
            |why: &str| ApiError::validation(format!("the target URL {raw:?} {why}"), "targetUrl");
        let url = url::Url::parse(raw.trim()).map_err(|_| bad("is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must be an http or https URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not hold a user name or password"));
        }
        if url.fragment().is_some() {
            return Err(bad("must not have a fragment"));
        }
        match url.host() {
            None => return Err(bad("has no host")),
            Some(url::Host::Domain(d)) if !self.allow_private_targets => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if d == "localhost" || d.ends_with(".localhost") {
                    return Err(bad("is on this machine"));
                }
            }
            Some(url::Host::Ipv4(ip)) if !self.allow_private_targets && !is_public(ip.into()) => {
                return Err(bad("is not on the public internet"))
            }
            Some(url::Host::Ipv6(ip)) if !self.allow_private_targets && !is_public(ip.into()) => {
                return Err(bad("is not on the public internet"))
            }
            _ => {}
        }
        Ok(raw.trim().to_string())
    }
}

/// Resolves names for the sender, refusing private addresses unless they are allowed.
pub(super) struct Resolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !allow && addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(format!(
                    "{} resolves to an address that is not on the public internet",
                    name.as_str()
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn targets_are_checked() {
        let p = Policy::default();
        assert!(p.check_target("https://hooks.example.com/in?x=1").is_ok());
        for bad in [
            "ftp://example.com/",
            "http://localhost:8080/",
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://10.0.0.1/",
            "https://user:pw@example.com/",
            "not a url",
        ] {
            assert!(p.check_target(bad).is_err(), "{bad}");
        }
        let open = Policy {
            allow_private_targets: true,
            ..Policy::default()
        };
        assert!(open.check_target("http://127.0.0.1:9000/hook").is_ok());
    }
}
