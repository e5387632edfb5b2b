//! The pusher Lambda: notification requests from SQS, SNS or a direct invoke.
//!
//! Settings: `WSPUSH_TABLE`, `WSPUSH_MANAGEMENT_ENDPOINT` (or `WSPUSH_WEBSOCKET_URL`),
//! `WSPUSH_TRANSPORT` (`lean` or `sdk`), `WSPUSH_MAX_IN_FLIGHT`, `WSPUSH_PAGE_SIZE`, `WSPUSH_BROADCAST_SEGMENTS`,
//! `WSPUSH_MAX_POSTS_PER_SECOND` (default 8,000; `off` for none), `WSPUSH_METRICS_NAMESPACE`
//! (one CloudWatch EMF line per push; `off` for none), `WSPUSH_QUEUE_URL` (the notification
//! queue, where continuations go; unset for none), `WSPUSH_MAX_GENERATIONS`,
//! `WSPUSH_DEADLINE_MARGIN_MS`, `WSPUSH_SCATTER_ABOVE`, `WSPUSH_SCATTER_SEGMENTS`,
//! `WSPUSH_IDEMPOTENCY_TTL_SECONDS`, `WSPUSH_EMPTY_LISTS_MEAN_EVERYONE`,
//! `WSPUSH_HISTORY_NAMESPACES`, `WSPUSH_HISTORY_TTL_SECONDS`, `WSPUSH_HISTORY_SIZE`,
//! `WSPUSH_PRESENCE_NAMESPACES` (the leaves of pruned connections go to the queue; see
//! `wspush_handlers::settings`).

use std::sync::Arc;
use std::time::SystemTime;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use wspush_adapters::{
    ApiGatewayConfig, ApiGatewayGateway, DynamoDbStore, EmfMetrics, SqsPublisher, SystemClock,
    aws::load_sdk_config,
};
use wspush_handlers::{
    handle_invocation,
    settings::{FunctionSettings, PusherSettings},
};
use wspush_ports::{Presence, PushService};

// One thread: the pusher waits on the network, and a Lambda below 1,769 MB has at most one
// vCPU. The benchmark (BENCHMARKS.md) measured a current-thread runtime at about a third less
// CPU per delivered message than a multi-thread one, which hands every post to another thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = PusherSettings::from_env()?;
    let sdk = load_sdk_config().await;
    let store = Arc::new(DynamoDbStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        settings.table,
    ));
    let mut management_api = ApiGatewayConfig::new(settings.management_api.endpoint)
        .with_transport(settings.management_api.transport);
    // One pooled keep-alive connection per post in flight.
    management_api.pool_size = settings.push.max_in_flight;
    let gateway = Arc::new(ApiGatewayGateway::new(&sdk, &management_api)?);
    let mut service = PushService::new(
        Arc::clone(&store),
        gateway,
        Arc::new(SystemClock),
        settings.push,
    )?
    .with_empty_lists_meaning_everyone(settings.empty_lists_mean_everyone)
    .with_history(store.clone(), settings.history);
    if let Some((queue_url, continuation_config)) = settings.continuations {
        let queue = Arc::new(SqsPublisher::new(&sdk, queue_url));
        service = service
            .with_presence(Presence::new(
                settings.presence,
                store.clone(),
                queue.clone(),
            ))
            .with_continuations(queue, continuation_config);
    }
    if let Some(ledger_config) = settings.ledger {
        service = service.with_ledger(store, ledger_config);
    }
    if let Some((namespace, function)) = settings.metrics {
        service = service.with_observer(Arc::new(EmfMetrics::stdout(namespace, function)));
    }
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            // Lambda gives the deadline in wall-clock time; pushes measure with the
            // monotonic clock.
            let left = event
                .context
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            let deadline = tokio::time::Instant::now() + left;
            handle_invocation(event.payload.get(), service, Some(deadline))
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
