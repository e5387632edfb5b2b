//! The SDK transport: `aws-sdk-apigatewaymanagement`'s client, with the SDK's own retries
//! off and explicit connect, attempt and operation timeouts.

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

use super::{ApiGatewayConfig, classify};

/// A [`ConnectionGateway`] on API Gateway's Management API, through the AWS SDK.
#[derive(Debug, Clone)]
pub struct SdkGateway {
    client: Client,
}

impl SdkGateway {
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
impl ConnectionGateway for SdkGateway {
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

/// Maps an SDK error onto the port's closed set ([`classify`]), keeping it as the cause.
fn gateway_error<E>(error: SdkError<E, HttpResponse>) -> GatewayError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (status, failed_in_transit) = crate::aws::failed_answer(&error);
    let verdict = classify(error.code(), status, failed_in_transit);
    super::gateway_error(verdict, error)
}
