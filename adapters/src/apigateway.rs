//! The API Gateway Management API transport (`@connections`), behind the gateway port.
//!
//! The SDK's own retries are off: the push service owns retries, with its backoff and time
//! budget. Explicit connect, attempt and operation timeouts make sure a post never hangs.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewaymanagement::primitives::{Blob, DateTime};
use bytes::Bytes;
use wspush_domain::{ConnectionId, Timestamp};
use wspush_ports::{ConnectionGateway, ConnectionInfo, GatewayError};

/// Where the `@connections` API is and how long a call may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiGatewayConfig {
    /// The management endpoint: `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`,
    /// or `https://{custom domain}/{base path}`.
    pub endpoint: String,
    /// Time allowed to open a TCP/TLS connection (default 2 s).
    pub connect_timeout: Duration,
    /// Time allowed for one call, from sending to the full answer (default 5 s).
    pub call_timeout: Duration,
}

impl ApiGatewayConfig {
    /// A configuration for `endpoint` with the default timeouts.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            connect_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`ConnectionGateway`] on API Gateway's Management API.
#[derive(Debug, Clone)]
pub struct ApiGatewayGateway {
    client: Client,
}

impl ApiGatewayGateway {
    /// A gateway on `config.endpoint`, with the region and credentials of `sdk`.
    pub fn new(sdk: &SdkConfig, config: &ApiGatewayConfig) -> Self {
        let client_config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(&config.endpoint)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .operation_attempt_timeout(config.call_timeout)
                    .operation_timeout(config.call_timeout)
                    .build(),
            )
            .build();
        Self {
            client: Client::from_conf(client_config),
        }
    }
}

#[async_trait]
impl ConnectionGateway for ApiGatewayGateway {
    async fn post(&self, connection: &ConnectionId, payload: Bytes) -> Result<(), GatewayError> {
        self.client
            .post_to_connection()
            .connection_id(connection.as_str())
            .data(Blob::new(payload.to_vec()))
            .send()
            .await
            .map_err(gateway_error)?;
        Ok(())
    }

    async fn delete(&self, connection: &ConnectionId) -> Result<(), GatewayError> {
        self.client
            .delete_connection()
            .connection_id(connection.as_str())
            .send()
            .await
            .map_err(gateway_error)?;
        Ok(())
    }

    async fn get(&self, connection: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        let output = self
            .client
            .get_connection()
            .connection_id(connection.as_str())
            .send()
            .await
            .map_err(gateway_error)?;
        let identity = output.identity();
        Ok(ConnectionInfo {
            connected_at: timestamp(output.connected_at()),
            last_active_at: timestamp(output.last_active_at()),
            source_ip: identity.and_then(|i| i.source_ip()).map(str::to_owned),
            user_agent: identity.and_then(|i| i.user_agent()).map(str::to_owned),
        })
    }
}

fn timestamp(time: Option<&DateTime>) -> Timestamp {
    time.and_then(|time| time.to_millis().ok())
        .and_then(|millis| u64::try_from(millis).ok())
        .map_or(Timestamp::EPOCH, Timestamp::from_unix_millis)
}

/// Maps an SDK error onto the port's closed set, by error code or, when the body carries
/// none, by HTTP status; the SDK error is kept as the cause.
fn gateway_error<E>(error: SdkError<E, HttpResponse>) -> GatewayError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    let code = error.code();
    let transport = matches!(
        error,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    );
    if code == Some("GoneException") || status == Some(410) {
        GatewayError::Gone
    } else if matches!(
        code,
        Some("LimitExceededException" | "ThrottlingException" | "TooManyRequestsException")
    ) || status == Some(429)
    {
        GatewayError::Throttled
    } else if code == Some("PayloadTooLargeException") || status == Some(413) {
        GatewayError::PayloadTooLarge
    } else if matches!(code, Some("ForbiddenException" | "AccessDeniedException"))
        || status == Some(403)
    {
        GatewayError::Forbidden(Box::new(error))
    } else if transport || status.is_some_and(|status| status >= 500) {
        GatewayError::Unavailable(Box::new(error))
    } else {
        GatewayError::Unknown(
            anyhow::Error::new(error).context("API Gateway Management API request failed"),
        )
    }
}
