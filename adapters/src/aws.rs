//! What every AWS adapter shares: one HTTPS client and the SDK configuration.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider, SharedHttpClient};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

/// The HTTP client of every SDK client: hyper 1 with rustls on the `ring` provider. Built
/// explicitly because the SDK crates' default features would compile a second TLS stack.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK configuration from the environment (region, credentials, and per-service
/// endpoints such as `AWS_ENDPOINT_URL_DYNAMODB`), with [`http_client`]. Load it once, at
/// cold start.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}

/// An SDK configuration with fixed credentials and region and no environment lookups: for
/// local components (DynamoDB Local, the local gateway, moto) that check signatures'
/// shape but not their keys.
pub fn local_sdk_config(region: &str, access_key: &str, secret_key: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "wspush-local",
        )))
        .http_client(http_client())
        .build()
}

/// What a failed SDK call shows of its answer: the HTTP status, when an answer came, and
/// whether the call failed in transit (a timeout, a broken connection, an unreadable
/// answer). Every adapter maps its SDK errors from these and the error code.
pub(crate) fn failed_answer<E>(error: &SdkError<E, HttpResponse>) -> (Option<u16>, bool) {
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    let in_transit = matches!(
        error,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    );
    (status, in_transit)
}
