//! The `subscribe` / `unsubscribe` routes' Lambda.
//!
//! Settings: `WSPUSH_TABLE`, `WSPUSH_ALLOWED_NAMESPACES`,
//! `WSPUSH_MAX_SUBSCRIPTIONS_PER_CONNECTION`, `WSPUSH_MAX_TOPICS_PER_MESSAGE`,
//! `WSPUSH_HISTORY_NAMESPACES`, `WSPUSH_HISTORY_TTL_SECONDS`, `WSPUSH_HISTORY_SIZE` (with
//! history on, also `WSPUSH_MANAGEMENT_ENDPOINT` and `WSPUSH_TRANSPORT`: a subscribe `since` a position is posted
//! what it missed), `WSPUSH_PRESENCE_NAMESPACES` (with presence on, also `WSPUSH_QUEUE_URL`:
//! joins and leaves are enqueued there for the pusher).

use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use wspush_adapters::{
    ApiGatewayConfig, ApiGatewayGateway, DynamoDbStore, SqsPublisher, SystemClock,
    aws::load_sdk_config,
};
use wspush_handlers::{
    handle_route,
    settings::{FunctionSettings, SubscribeSettings},
};
use wspush_ports::{Presence, SubscriptionService};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let SubscribeSettings {
        table,
        policy,
        history,
        presence,
    } = SubscribeSettings::from_env()?;
    let sdk = load_sdk_config().await;
    let store = Arc::new(DynamoDbStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
    ));
    let presence = presence.and_then(|(policy, queue)| {
        Presence::new(
            policy,
            store.clone(),
            Arc::new(SqsPublisher::new(&sdk, queue)),
        )
    });
    let mut service = SubscriptionService::new(Arc::clone(&store), Arc::new(SystemClock), policy)
        .with_presence(presence);
    if let Some((history, management_api)) = history {
        let management_api =
            ApiGatewayConfig::new(management_api.endpoint).with_transport(management_api.transport);
        let gateway = ApiGatewayGateway::new(&sdk, &management_api)?;
        service = service.with_resume(store, Arc::new(gateway), history);
    }
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, Error>(handle_route(&event.payload, service).await)
        },
    ))
    .await
}
