//! Who may talk to the local gateway: programs, and pages of the gateway itself, but not
//! other sites open in the developer's browser.
//!
//! A page on another site can send a browser's `POST` with `Content-Type: text/plain` and no
//! preflight, open WebSockets to any address, and, by DNS rebinding (its own name resolving
//! to 127.0.0.1), read the answers of `GET` routes. So every request is checked:
//!
//! - **`Host`** must name the gateway as a program or a browser reaching it directly would:
//!   an IP address or `localhost`, with the gateway's port (or a host allowed with
//!   `--allowed-hosts`). A rebinding page's requests carry its own name and are refused.
//! - **`Origin`**, which browsers send on cross-origin requests and on every WebSocket
//!   handshake, must be the gateway's own: `http://` with the request's own `Host`, or with a
//!   loopback address or `localhost` (or an allowed host) and the gateway's port; or one
//!   allowed with `--allowed-origins`. A page served from another address, even an IP
//!   address with the same port, is another site. A request without one, as programs send,
//!   is fine.
//! - **`POST /notifications`** must be `application/json`, which a page cannot send to
//!   another origin without a preflight that the gateway never grants.
//!
//! The refusals are 403 (415 for the content type), with a JSON body naming the header;
//! `routes` puts the check before every route.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, Method, header};

/// The hosts and origins the gateway answers.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    port: u16,
    /// `--allowed-hosts`, lower case: names (with or without a port) besides IP addresses
    /// and `localhost`.
    hosts: Vec<String>,
    /// `--allowed-origins`, lower case, without a trailing `/`.
    origins: Vec<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// `Host` names something other than the gateway.
    #[error(
        "Host {0:?} is not this gateway's address (an IP address or localhost with its port); start it with --allowed-hosts to allow another name"
    )]
    Host(String),
    /// `Origin` is another site.
    #[error(
        "Origin {0:?} is not this gateway's own; start it with --allowed-origins to allow a page from there"
    )]
    Origin(String),
    /// A `POST /notifications` that is not JSON.
    #[error("POST /notifications needs Content-Type: application/json, got {0:?}")]
    ContentType(String),
}

impl Guard {
    /// The guard of a gateway listening on `address`, allowing besides its own address the
    /// `hosts` and `origins` given.
    pub(crate) fn new(address: SocketAddr, hosts: &[String], origins: &[String]) -> Self {
        Self {
            port: address.port(),
            hosts: hosts.iter().map(|host| host.to_ascii_lowercase()).collect(),
            origins: origins
                .iter()
                .map(|origin| origin.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a request with these headers, to `method path`, may go on.
    pub(crate) fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        let host = headers
            .get(header::HOST)
            .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned());
        if let Some(host) = &host
            && !self.is_own_host(host)
        {
            return Err(Refusal::Host(host.clone()));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            if !self.is_own_origin(&origin, host.as_deref()) {
                return Err(Refusal::Origin(origin.into_owned()));
            }
        }
        if method == Method::POST && path == "/notifications" {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .unwrap_or_default();
            if !is_json(&content_type) {
                return Err(Refusal::ContentType(content_type));
            }
        }
        Ok(())
    }

    /// `host[:port]` names this gateway.
    fn is_own_host(&self, authority: &str) -> bool {
        let authority = authority.trim().to_ascii_lowercase();
        if self.hosts.contains(&authority) {
            return true;
        }
        let (host, port) = split_authority(&authority);
        // No port is HTTP's default.
        if port.unwrap_or(80) != self.port {
            return false;
        }
        host == "localhost"
            || host.parse::<IpAddr>().is_ok()
            || self.hosts.iter().any(|allowed| allowed == host)
    }

    /// `origin` is a page of this gateway (served to the request's own `host`, or from a
    /// loopback address, `localhost` or an allowed host with the gateway's port), or allowed.
    fn is_own_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        let Some(authority) = origin.strip_prefix("http://") else {
            return false;
        };
        if host.is_some_and(|host| host.trim().eq_ignore_ascii_case(authority)) {
            return true;
        }
        if self.hosts.iter().any(|allowed| allowed == authority) {
            return true;
        }
        let (name, port) = split_authority(authority);
        port.unwrap_or(80) == self.port
            && (name == "localhost"
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
                || self.hosts.iter().any(|allowed| allowed == name))
    }
}

/// `host` and its port (`None` when absent or not a number); an IPv6 literal loses its
/// brackets.
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => (authority, None),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    (host, port.and_then(|port| port.parse().ok()))
}

/// `application/json`, with parameters or not, in any case.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::new(
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            &["dev.example.test".to_owned()],
            &["http://localhost:3000/".to_owned()],
        )
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), value.parse().expect("header value"));
        }
        map
    }

    fn get(pairs: &[(header::HeaderName, &str)]) -> Result<(), Refusal> {
        guard().check(&Method::GET, "/", &headers(pairs))
    }

    #[test]
    fn the_gateways_own_hosts_and_origins_pass_and_programs_need_neither() {
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "LOCALHOST:8080",
        ] {
            assert_eq!(get(&[(header::HOST, host)]), Ok(()), "{host}");
            let origin = format!("http://{host}");
            assert_eq!(
                get(&[(header::HOST, "127.0.0.1:8080"), (header::ORIGIN, &origin)]),
                Ok(()),
                "{origin}"
            );
        }
        assert_eq!(get(&[]), Ok(()));
    }

    #[test]
    fn another_host_or_port_is_refused_unless_allowed() {
        for host in [
            "evil.example:8080",
            "127.0.0.1:9090",
            "localhost",
            "127.0.0.1.evil.example:8080",
        ] {
            assert_eq!(
                get(&[(header::HOST, host)]),
                Err(Refusal::Host(host.to_owned())),
                "{host}"
            );
        }
        assert_eq!(get(&[(header::HOST, "dev.example.test:8080")]), Ok(()));
        assert_eq!(get(&[(header::HOST, "dev.example.test")]), Ok(()));
    }

    #[test]
    fn another_origin_is_refused_unless_allowed() {
        for origin in [
            "https://evil.example",
            "http://evil.example:8080",
            "null",
            "https://127.0.0.1:8080",
            "http://127.0.0.1:9090",
            // Another machine's page on the same port is another site.
            "http://203.0.113.5:8080",
            "http://192.168.1.20:8080",
        ] {
            assert_eq!(
                get(&[(header::ORIGIN, origin)]),
                Err(Refusal::Origin(origin.to_owned())),
                "{origin}"
            );
        }
        assert_eq!(get(&[(header::ORIGIN, "http://localhost:3000")]), Ok(()));
        // A gateway reached at a LAN address serves its own page there.
        assert_eq!(
            get(&[
                (header::HOST, "192.168.1.20:8080"),
                (header::ORIGIN, "http://192.168.1.20:8080")
            ]),
            Ok(())
        );
    }

    #[test]
    fn a_notification_must_be_json() {
        let post = |content_type: Option<&str>| {
            let pairs: Vec<_> = content_type
                .map(|value| (header::CONTENT_TYPE, value))
                .into_iter()
                .collect();
            guard().check(&Method::POST, "/notifications", &headers(&pairs))
        };
        assert_eq!(post(Some("application/json")), Ok(()));
        assert_eq!(post(Some("Application/JSON; charset=utf-8")), Ok(()));
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonp",
        ] {
            assert_eq!(
                post(Some(content_type)),
                Err(Refusal::ContentType(content_type.to_owned()))
            );
        }
        assert_eq!(post(None), Err(Refusal::ContentType(String::new())));
    }
}
