//! The connection gateway port: the transport that reaches a WebSocket connection
//! (API Gateway's `@connections` API in production, the local gateway on a laptop).

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use wspush_domain::{ConnectionId, Timestamp};

use crate::Cause;

/// Why the gateway could not act on a connection. A closed set: adapters map every answer of
/// their transport onto one of these.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The connection no longer exists (API Gateway answers 410 Gone). Prune it.
    #[error("the connection is gone")]
    Gone,
    /// The gateway is throttling us, or the client's buffer is full (429). Retry later.
    #[error("the gateway is throttling requests")]
    Throttled,
    /// The payload is over the gateway's message limit (413). Never retry.
    #[error("the payload is too large for the gateway")]
    PayloadTooLarge,
    /// The caller may not manage this API's connections (403): the wrong endpoint or missing
    /// IAM permission. A configuration error; never retry.
    #[error(
        "the gateway refused access; check the endpoint and the execute-api:ManageConnections permission"
    )]
    Forbidden(#[source] Cause),
    /// A 5xx answer, a timeout or a broken connection to the gateway. Retry later.
    #[error("the gateway is unavailable")]
    Unavailable(#[source] Cause),
    /// Anything else.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

impl GatewayError {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, GatewayError::Throttled | GatewayError::Unavailable(_))
    }
}

/// What the gateway knows of a connection (API Gateway's `GetConnection`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionInfo {
    /// When the connection was opened.
    pub connected_at: Timestamp,
    /// When the client last sent a message.
    pub last_active_at: Timestamp,
    /// The client's IP address, if known.
    pub source_ip: Option<String>,
    /// The client's `User-Agent`, if known.
    pub user_agent: Option<String>,
}

/// Sends to, inspects and closes WebSocket connections.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ConnectionGateway: Send + Sync {
    /// Sends `payload` to the connection as one text message.
    ///
    /// MUST return [`GatewayError::Gone`] when the connection does not exist (410, by error
    /// code or by HTTP status), [`GatewayError::Throttled`] on 429,
    /// [`GatewayError::PayloadTooLarge`] on 413, [`GatewayError::Forbidden`] on 403 and
    /// [`GatewayError::Unavailable`] on 5xx, timeouts and I/O errors. MUST NOT retry by
    /// itself: the push service owns retries.
    async fn post(&self, connection: &ConnectionId, payload: Bytes) -> Result<(), GatewayError>;

    /// Closes the connection. MUST return [`GatewayError::Gone`] when it does not exist.
    async fn delete(&self, connection: &ConnectionId) -> Result<(), GatewayError>;

    /// Describes the connection. MUST return [`GatewayError::Gone`] when it does not exist.
    async fn get(&self, connection: &ConnectionId) -> Result<ConnectionInfo, GatewayError>;
}
