//! Where a webhook may be sent. A target on a loopback, private, link-local
//! or otherwise non-public address is refused unless
//! `webhooks.allow_private_targets` is set, at registration and again at
//! every delivery (through the client's resolver), so a name that later
//! resolves inward (DNS rebinding) is refused too.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::{Error, Result};

/// How long registration waits for DNS.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks a URL as a webhook target: absolute http(s), with a host, no
/// credentials, and (unless `allow_private`) only public addresses.
pub async fn check(url: &str, allow_private: bool) -> Result<reqwest::Url> {
    let invalid = |message: &str| Error::invalid("url", message);
    // A URL parser drops tabs and newlines silently; a single-line field refuses them.
    if url.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|_| invalid("must be an absolute http:// or https:// URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("must be an http:// or https:// URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("must not carry a user name or password"));
    }
    if url.len() > 2000 {
        return Err(invalid("must be at most 2000 characters"));
    }
    let Some(host) = parsed.host_str() else {
        return Err(invalid("must name a host"));
    };
    if allow_private {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        // Bounded: a resolver that does not answer must not hold the request.
        Err(_) => tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| invalid("names a host that did not resolve in time"))?
            .map_err(|_| invalid("names a host that does not resolve"))?
            .map(|a| a.ip())
            .collect(),
    };
    if let Some(inward) = addresses.iter().find(|ip| !is_public(ip)) {
        return Err(invalid(&format!(
            "points at {inward}, a private or loopback address; set \
             webhooks.allow_private_targets to allow it"
        )));
    }
    Ok(parsed)
}

/// True for addresses on the public internet: not loopback, private,
/// link-local, shared (CGNAT), unspecified, multicast, broadcast or reserved.
pub fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(&v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local, deprecated
                || *v6 == Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0)
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)) // documentation
        }
    }
}

fn is_public_v4(v4: &Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

/// The delivery client: no redirects (a 3xx is an answer, and a failed
/// attempt), a timeout per attempt, and a resolver that refuses non-public
/// addresses unless they are allowed.
pub fn client(allow_private: bool, timeout: Duration) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        // Straight to the target: through a proxy (HTTP_PROXY in the
        // environment), the resolver below would never see where it goes.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("Ladder-Webhooks/", env!("CARGO_PKG_VERSION")))
        // As many idle connections as sends in flight, so a busy endpoint reuses them.
        .pool_max_idle_per_host(32);
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    Ok(builder
        .build()
        .map_err(|e| anyhow::anyhow!("webhook client: {e}"))?)
}

/// Resolves with the system resolver and keeps only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(&a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether a literal IP in `url` may be sent to (the resolver never sees one).
pub fn literal_allowed(url: &reqwest::Url, allow_private: bool) -> bool {
    if allow_private {
        return true;
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_public(&IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_public(&IpAddr::V6(ip)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inward_addresses_are_not_public() {
        for inward in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(!is_public(&inward.parse().unwrap()), "{inward}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(&public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn loopback_targets_need_the_setting() {
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/hook",
            "http://localhost:9/",
        ] {
            assert!(check(url, false).await.is_err(), "{url}");
            assert!(check(url, true).await.is_ok(), "{url}");
        }
        for bad in [
            "ftp://example.com/",
            "not a url",
            "http://user:pw@example.com/",
        ] {
            assert!(check(bad, true).await.is_err(), "{bad}");
        }
    }
}
