//! What presence costs the socket functions: the subscribe and disconnect handlers' latency
//! with presence off and on, alternating in one run, on the memory store and on DynamoDB
//! Local, the events enqueued to moto's SQS as the Lambdas enqueue them.
//!
//! ```sh
//! cargo run --release -p wspush-bench --bin presence -- --rounds 3 --iterations 200
//! ```
//!
//! Each iteration is a new user's connection joining `room:1` (ten others are there), so
//! that with presence on every subscribe is a join and every disconnect a leave: the most a
//! presence topic costs. Presence runs twice: with the events handed to an in-process queue
//! (the store's share of the cost) and enqueued to moto's SQS (moto, in Python, answers a
//! `SendMessageBatch` far slower than SQS does in a region). Every event is checked to
//! have reached its queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::json;
use wspush_adapters::{DynamoDbStore, MemoryStore, SqsPublisher, SystemClock};
use wspush_domain::{
    ConnectionId, NotificationRequest, PresencePolicy, SubscriptionPolicy, UserId,
};
use wspush_handlers::{handle_disconnect, handle_route};
use wspush_integration_tests::dynamodb_local::DynamoDbFixture;
use wspush_integration_tests::moto;
use wspush_ports::{
    Clock, ConnectionService, ConnectionStore, MessageId, NotificationPublisher, Presence,
    PresenceStore, PublishError, SubscriptionService,
};

fn event(route: &str, connection: &str, body: Option<&str>) -> ApiGatewayWebsocketProxyRequest {
    let event_type = if route == "$disconnect" {
        "DISCONNECT"
    } else {
        "MESSAGE"
    };
    serde_json::from_value(json!({
        "requestContext": {
            "routeKey": route, "eventType": event_type, "stage": "bench",
            "connectedAt": 1_795_334_400_000u64, "requestTimeEpoch": 1_795_334_463_000u64,
            "requestId": "r", "domainName": "bench", "connectionId": connection, "apiId": "bench",
            "identity": {"sourceIp": "127.0.0.1"}
        },
        "body": body,
        "isBase64Encoded": false
    }))
    .expect("a WebSocket event")
}

/// Latencies of `iterations` subscribes and disconnects, in microseconds.
async fn round<S: ConnectionStore + PresenceStore + 'static>(
    store: Arc<S>,
    presence: Option<Presence>,
    round: usize,
    iterations: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let clock = Arc::new(SystemClock);
    let connections =
        ConnectionService::new(Arc::clone(&store), clock.clone()).with_presence(presence.clone());
    let subscriptions =
        SubscriptionService::new(Arc::clone(&store), clock, SubscriptionPolicy::default())
            .with_presence(presence);
    let subscribe = json!({"action": "subscribe", "topics": ["room:1"]}).to_string();
    let (mut subscribes, mut disconnects) = (Vec::new(), Vec::new());
    for iteration in 0..iterations {
        let id = format!("c-{round}-{iteration}-{}", fastrand::u32(..));
        connections
            .connect(
                ConnectionId::parse(id.clone())?,
                UserId::parse(format!("u-{round}-{iteration}"))?,
            )
            .await?;
        let started = Instant::now();
        let answer = handle_route(&event("subscribe", &id, Some(&subscribe)), &subscriptions).await;
        subscribes.push(started.elapsed().as_secs_f64() * 1e6);
        ensure!(
            answer.status_code == 200,
            "subscribe answered {}",
            answer.status_code
        );
        let started = Instant::now();
        let answer = handle_disconnect(&event("$disconnect", &id, None), &connections).await;
        disconnects.push(started.elapsed().as_secs_f64() * 1e6);
        ensure!(
            answer.status_code == 200,
            "disconnect answered {}",
            answer.status_code
        );
    }
    Ok((subscribes, disconnects))
}

/// A queue that counts what it is handed.
#[derive(Default)]
struct Counted(AtomicUsize);

#[async_trait::async_trait]
impl NotificationPublisher for Counted {
    async fn publish(&self, _: &NotificationRequest) -> Result<MessageId, PublishError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(String::new())
    }

    async fn publish_batch(
        &self,
        requests: &[NotificationRequest],
    ) -> Vec<Result<MessageId, PublishError>> {
        self.0.fetch_add(requests.len(), Ordering::Relaxed);
        requests.iter().map(|_| Ok(String::new())).collect()
    }
}

fn quantile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

/// Messages waiting in `queue` (moto counts them at once).
async fn waiting(sqs: &aws_sdk_sqs::Client, queue: &str) -> anyhow::Result<usize> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await?;
    Ok(attributes
        .attributes()
        .and_then(|map| {
            map.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        })
        .context("the queue's message count")?
        .parse()?)
}

async fn measure<S: ConnectionStore + PresenceStore + 'static>(
    name: &str,
    store: Arc<S>,
    rounds: usize,
    iterations: usize,
) -> anyhow::Result<()> {
    let sdk = moto::sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = moto::new_queue(&sqs, "presence-bench").await;
    let clock = Arc::new(SystemClock);
    let members = ConnectionService::new(Arc::clone(&store), clock);
    for member in 0..10 {
        let id = ConnectionId::parse(format!("member-{member}-{}", fastrand::u32(..)))?;
        let connection = members
            .connect(id, UserId::parse(format!("m-{member}"))?)
            .await?;
        store
            .subscribe(
                &connection,
                &[wspush_domain::ExternalId::parse("room:1")?],
                SystemClock.now(),
            )
            .await?;
    }
    let counted = Arc::new(Counted::default());
    let mut results: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        ("off", vec![], vec![]),
        ("on, in-process queue", vec![], vec![]),
        ("on, moto SQS", vec![], vec![]),
    ];
    for number in 0..rounds {
        for (mode, subscribes, disconnects) in &mut results {
            let events: Option<Arc<dyn NotificationPublisher>> = match *mode {
                "off" => None,
                "on, in-process queue" => Some(counted.clone()),
                _ => Some(Arc::new(SqsPublisher::new(&sdk, queue.clone()))),
            };
            let presence = events.and_then(|events| {
                Presence::new(
                    PresencePolicy::new(["room"]).expect("valid"),
                    store.clone(),
                    events,
                )
            });
            let (s, d) = round(Arc::clone(&store), presence, number, iterations).await?;
            subscribes.extend(s);
            disconnects.extend(d);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let expected = 2 * iterations * rounds;
    ensure!(
        counted.0.load(Ordering::Relaxed) == expected && waiting(&sqs, &queue).await? == expected,
        "every join and leave reached its queue"
    );
    for (mode, subscribes, disconnects) in &mut results {
        println!(
            "| {name} | {mode} | {:.0} | {:.0} | {:.0} | {:.0} |",
            quantile(subscribes, 0.5),
            quantile(subscribes, 0.9),
            quantile(disconnects, 0.5),
            quantile(disconnects, 0.9),
        );
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let (mut rounds, mut iterations) = (3usize, 200usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => rounds = args.next().context("--rounds needs a number")?.parse()?,
            "--iterations" => {
                iterations = args
                    .next()
                    .context("--iterations needs a number")?
                    .parse()?;
            }
            other => anyhow::bail!("unknown argument {other}; expected --rounds N --iterations N"),
        }
    }
    println!(
        "{rounds} rounds x {iterations} joins and leaves per mode, alternating; latency in µs"
    );
    println!(
        "| store | presence | subscribe p50 | subscribe p90 | disconnect p50 | disconnect p90 |"
    );
    println!("|---|---|---|---|---|---|");
    measure("memory", Arc::new(MemoryStore::new()), rounds, iterations).await?;
    let fixture = DynamoDbFixture::new().await;
    let store: Arc<DynamoDbStore> = Arc::new(fixture.store.clone());
    measure("DynamoDB Local", store, rounds, iterations).await?;
    fixture.finish().await;
    Ok(())
}
