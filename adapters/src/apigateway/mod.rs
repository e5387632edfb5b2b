//! The API Gateway Management API transport (`@connections`), behind the gateway port.
//!
//! Two implementations of one contract, chosen by [`Transport`]:
//!
//! - [`Transport::Lean`] ([`lean`]): hyper 1 with one HTTP/1.1 keep-alive pool (rustls on the
//!   ring provider), each request signed with `aws-sigv4` from credentials cached and
//!   refreshed before they expire. A post costs a signature and an HTTP exchange, nothing
//!   else: the fan-out's hot path.
//! - [`Transport::Sdk`] ([`sdk`]): `aws-sdk-apigatewaymanagement`, with the SDK's own retries
//!   off.
//!
//! Both map every answer onto the port's closed set the same way ([`classify`]: 410 by error
//! code or bare status, 429, 413, 403, 5xx, timeouts) and never retry by themselves: the push
//! service owns retries, with its backoff and time budget. Explicit connect and call
//! timeouts make sure a post never hangs.

mod credentials;
pub mod lean;
pub mod sdk;

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use bytes::Bytes;
use wspush_domain::ConnectionId;
pub use wspush_domain::endpoint::{Transport, UnknownTransport};
use wspush_domain::limits::DEFAULT_MAX_IN_FLIGHT;
use wspush_ports::{ConnectionGateway, ConnectionInfo, GatewayError};

pub use lean::LeanGateway;
pub use sdk::SdkGateway;

/// Where the `@connections` API is, how it is reached and how long a call may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiGatewayConfig {
    /// The management endpoint: `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`,
    /// or `https://{custom domain}/{base path}`.
    pub endpoint: String,
    /// Time allowed to open a TCP connection (default 2 s).
    pub connect_timeout: Duration,
    /// Time allowed for one call, from sending to the full answer (default 5 s).
    pub call_timeout: Duration,
    /// The implementation (default [`Transport::Lean`]).
    pub transport: Transport,
    /// Idle keep-alive connections the lean transport keeps for reuse: the push's posts in
    /// flight (`WSPUSH_MAX_IN_FLIGHT`, default 256), so a fan-out reuses every connection it
    /// opened.
    pub pool_size: usize,
}

impl ApiGatewayConfig {
    /// A configuration for `endpoint` with the default transport and timeouts.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            connect_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_secs(5),
            transport: Transport::default(),
            pool_size: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// The same configuration on `transport`.
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }
}

/// Why a transport could not be set up: found at start-up, not at the first post.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The endpoint is not an `http://` or `https://` URL with a host.
    #[error("the management endpoint {endpoint:?} is not an http(s) URL with a host: {reason}")]
    Endpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The SDK configuration has no region to sign for.
    #[error("no AWS region to sign @connections requests for (set AWS_REGION)")]
    NoRegion,
    /// The SDK configuration has no credentials provider.
    #[error("no AWS credentials provider to sign @connections requests with")]
    NoCredentials,
    /// No root certificates to check the endpoint's TLS certificate with.
    #[error("no root certificates to check HTTPS with")]
    NoRootCertificates(#[source] std::io::Error),
}

/// A [`ConnectionGateway`] on API Gateway's Management API, on the configured [`Transport`].
#[derive(Debug, Clone)]
pub enum ApiGatewayGateway {
    /// The lean transport.
    Lean(LeanGateway),
    /// The SDK transport.
    Sdk(SdkGateway),
}

impl ApiGatewayGateway {
    /// A gateway on `config.endpoint`, with the region and credentials of `sdk`.
    pub fn new(sdk: &SdkConfig, config: &ApiGatewayConfig) -> Result<Self, SetupError> {
        Ok(match config.transport {
            Transport::Lean => ApiGatewayGateway::Lean(LeanGateway::new(sdk, config)?),
            Transport::Sdk => ApiGatewayGateway::Sdk(SdkGateway::new(sdk, config)),
        })
    }

    /// Which implementation this is.
    pub fn transport(&self) -> Transport {
        match self {
            ApiGatewayGateway::Lean(_) => Transport::Lean,
            ApiGatewayGateway::Sdk(_) => Transport::Sdk,
        }
    }
}

#[async_trait]
impl ConnectionGateway for ApiGatewayGateway {
    async fn post(&self, connection: &ConnectionId, payload: Bytes) -> Result<(), GatewayError> {
        match self {
            ApiGatewayGateway::Lean(lean) => lean.post(connection, payload).await,
            ApiGatewayGateway::Sdk(sdk) => sdk.post(connection, payload).await,
        }
    }

    async fn delete(&self, connection: &ConnectionId) -> Result<(), GatewayError> {
        match self {
            ApiGatewayGateway::Lean(lean) => lean.delete(connection).await,
            ApiGatewayGateway::Sdk(sdk) => sdk.delete(connection).await,
        }
    }

    async fn get(&self, connection: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        match self {
            ApiGatewayGateway::Lean(lean) => lean.get(connection).await,
            ApiGatewayGateway::Sdk(sdk) => sdk.get(connection).await,
        }
    }
}

/// What an answer means, before the cause is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Gone,
    Throttled,
    PayloadTooLarge,
    Forbidden,
    Unavailable,
    Unknown,
}

/// The one mapping of both transports: by error code or, when the answer carries none, by
/// HTTP status; `failed_in_transit` is a timeout or a broken connection (no answer at all).
fn classify(code: Option<&str>, status: Option<u16>, failed_in_transit: bool) -> Verdict {
    if code == Some("GoneException") || status == Some(410) {
        Verdict::Gone
    } else if matches!(
        code,
        Some("LimitExceededException" | "ThrottlingException" | "TooManyRequestsException")
    ) || status == Some(429)
    {
        Verdict::Throttled
    } else if code == Some("PayloadTooLargeException") || status == Some(413) {
        Verdict::PayloadTooLarge
    } else if matches!(code, Some("ForbiddenException" | "AccessDeniedException"))
        || status == Some(403)
    {
        Verdict::Forbidden
    } else if failed_in_transit || status.is_some_and(|status| status >= 500) {
        Verdict::Unavailable
    } else {
        Verdict::Unknown
    }
}

/// The port's error for `verdict`, keeping `cause`.
fn gateway_error<E>(verdict: Verdict, cause: E) -> GatewayError
where
    E: std::error::Error + Send + Sync + 'static,
{
    match verdict {
        Verdict::Gone => GatewayError::Gone,
        Verdict::Throttled => GatewayError::Throttled,
        Verdict::PayloadTooLarge => GatewayError::PayloadTooLarge,
        Verdict::Forbidden => GatewayError::Forbidden(Box::new(cause)),
        Verdict::Unavailable => GatewayError::Unavailable(Box::new(cause)),
        Verdict::Unknown => GatewayError::Unknown(
            anyhow::Error::new(cause).context("API Gateway Management API request failed"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_decides_before_the_status() {
        assert_eq!(
            classify(Some("GoneException"), Some(400), false),
            Verdict::Gone
        );
        assert_eq!(
            classify(Some("LimitExceededException"), Some(400), false),
            Verdict::Throttled
        );
        assert_eq!(
            classify(Some("ForbiddenException"), Some(400), false),
            Verdict::Forbidden
        );
    }

    #[test]
    fn a_bare_status_decides_when_there_is_no_code() {
        assert_eq!(classify(None, Some(410), false), Verdict::Gone);
        assert_eq!(classify(None, Some(429), false), Verdict::Throttled);
        assert_eq!(classify(None, Some(413), false), Verdict::PayloadTooLarge);
        assert_eq!(classify(None, Some(403), false), Verdict::Forbidden);
        assert_eq!(classify(None, Some(502), false), Verdict::Unavailable);
        assert_eq!(classify(None, Some(418), false), Verdict::Unknown);
        assert_eq!(classify(None, None, true), Verdict::Unavailable);
    }
}
