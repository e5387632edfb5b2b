//! The `$connect` Lambda: identifies the user and records the connection.
//!
//! Settings: `WSPUSH_TABLE`; `WSPUSH_IDENTITY_KEY` (default `principalId`) for an authorizer,
//! or one of `WSPUSH_JWT_HS256_SECRET`, `WSPUSH_JWT_HS256_SECRET_ARN` (Secrets Manager or
//! SSM, read here at cold start), `WSPUSH_JWT_JWKS`, `WSPUSH_JWT_JWKS_URL` (read here at cold
//! start and again as the keys rotate), with `WSPUSH_JWT_ISSUER`, `WSPUSH_JWT_AUDIENCE`,
//! `WSPUSH_JWT_TOPICS_CLAIM` to verify tokens here.

use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use wspush_adapters::{AwsSecret, DynamoDbStore, HttpDocument, SystemClock, aws::load_sdk_config};
use wspush_handlers::{
    handle_connect,
    settings::{ConnectSettings, FunctionSettings, RemoteKeys},
};
use wspush_ports::{ConnectionService, RemoteDocument, RemoteError, RemoteProblem};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let ConnectSettings { table, identity } = ConnectSettings::from_env()?;
    let sdk = load_sdk_config().await;
    let identity = identity
        .resolve(|keys| match keys {
            RemoteKeys::JwksUrl { url, .. } => {
                Ok(Arc::new(HttpDocument::new(url)?) as Arc<dyn RemoteDocument>)
            }
            RemoteKeys::SecretArn(arn) => AwsSecret::from_arn(&sdk, arn)
                .map(|secret| Arc::new(secret) as Arc<dyn RemoteDocument>)
                .ok_or_else(|| {
                    RemoteError::new(
                        arn,
                        RemoteProblem::Unusable("not a Secrets Manager or SSM ARN"),
                    )
                }),
        })
        .await?;
    if let Some(verifier) = &identity.token {
        lambda_runtime::tracing::info!(?verifier, "tokens are required at $connect");
    } else if let Some(param) = &identity.insecure_query_param {
        lambda_runtime::tracing::warn!(
            param,
            "INSECURE: users may name themselves in the query string"
        );
    }
    let store = Arc::new(DynamoDbStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
    ));
    let service = ConnectionService::new(store, Arc::new(SystemClock));
    let (service, identity) = (&service, &identity);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, Error>(handle_connect(&event.payload, service, identity).await)
        },
    ))
    .await
}
