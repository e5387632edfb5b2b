//! The `$disconnect` Lambda: forgets the connection and its subscriptions.
//!
//! Settings: `WSPUSH_TABLE`, `WSPUSH_PRESENCE_NAMESPACES` (with presence on, also
//! `WSPUSH_QUEUE_URL`: the leaves are enqueued there for the pusher).

use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use wspush_adapters::{DynamoDbStore, SqsPublisher, SystemClock, aws::load_sdk_config};
use wspush_handlers::{
    handle_disconnect,
    settings::{DisconnectSettings, FunctionSettings},
};
use wspush_ports::{ConnectionService, Presence};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let DisconnectSettings { table, presence } = DisconnectSettings::from_env()?;
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
    let service = ConnectionService::new(store, Arc::new(SystemClock)).with_presence(presence);
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, Error>(handle_disconnect(&event.payload, service).await)
        },
    ))
    .await
}
