//! Continuations, scatter and redelivery end to end, with every part real but AWS itself:
//! DynamoDB Local is the store and the request ledger, moto's SQS is the notification queue
//! (the pusher enqueues its continuations there and this test plays Lambda's event source
//! mapping: receive, invoke the pusher handler, delete what succeeded, let the rest come
//! back), and the local gateway's `@connections` API receives the posts on virtual
//! connections, tallying what each one received.

use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use tokio::time::Instant;
use wspush_adapters::{ApiGatewayGateway, DynamoDbStore, SqsPublisher, SystemClock, Transport};
use wspush_domain::{
    Connection, ConnectionId, ExternalId, HistoryPolicy, NotificationRequest, Retention, UserId,
};
use wspush_handlers::handle_invocation;
use wspush_integration_tests::moto;
use wspush_local::{Faults, VirtualTally};
use wspush_ports::{
    Clock, ConnectionStore, ContinuationConfig, HistoryStore, LedgerConfig, NotificationPublisher,
    PushConfig, PushService, ScatterConfig,
};

use crate::helpers::Setup;

type Pusher = PushService<dyn ConnectionStore, ApiGatewayGateway>;

struct Pipeline {
    setup: Setup,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    publisher: SqsPublisher,
    pusher: Pusher,
}

/// What running the queue dry took.
#[derive(Debug, Default)]
struct Run {
    /// Pusher invocations.
    invocations: usize,
    /// Messages handed to the pusher (redeliveries included).
    messages: usize,
    /// Messages the pusher reported failed.
    failed: usize,
}

/// A gateway on DynamoDB Local with `connections` virtual connections saved in the store, a
/// fresh moto queue, and a pusher wired like the Lambda's.
async fn pipeline(
    name: &str,
    connections: usize,
    faults: Faults,
    continuations: ContinuationConfig,
) -> Pipeline {
    pipeline_with(name, connections, faults, continuations, None).await
}

/// A [`pipeline`] whose connections are also subscribed to `room:busy`, and whose pusher
/// keeps `history`.
async fn pipeline_with(
    name: &str,
    connections: usize,
    faults: Faults,
    continuations: ContinuationConfig,
    history: Option<HistoryPolicy>,
) -> Pipeline {
    let setup = Setup::dynamodb_with(faults).await;
    let store: DynamoDbStore = setup.dynamodb_store().expect("a DynamoDB store");
    let now = SystemClock.now();
    let ids: Vec<String> = (0..connections).map(|i| format!("v{i:05}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let connection = Connection::open(
            ConnectionId::parse(id.as_str()).expect("valid"),
            UserId::parse(format!("u{}", i % 40)).expect("valid"),
            now,
        );
        store.save(&connection).await.expect("save");
        if history.is_some() {
            store
                .subscribe(&connection, &[busy()], now)
                .await
                .expect("subscribe");
        }
    }
    setup.gateway.set_virtual_connections(ids);
    let sdk = moto::sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = moto::new_queue(&sqs, name).await;
    // The SDK transport here (the in-process pushers elsewhere use the default, lean).
    let gateway = setup.gateway.api_gateway_on(Transport::Sdk);
    let pusher = PushService::new(
        setup.gateway.store(),
        Arc::new(gateway),
        Arc::new(SystemClock),
        PushConfig {
            max_in_flight: 16,
            page_size: 50,
            max_posts_per_second: None,
            ..PushConfig::default()
        },
    )
    .expect("config")
    .with_continuations(Arc::new(SqsPublisher::new(&sdk, &queue_url)), continuations)
    .with_ledger(Arc::new(store.clone()), LedgerConfig::default())
    .with_history(Arc::new(store), history.unwrap_or_default());
    Pipeline {
        publisher: SqsPublisher::new(&sdk, &queue_url),
        setup,
        sqs,
        queue_url,
        pusher,
    }
}

impl Pipeline {
    async fn enqueue(&self, request: &str) {
        self.publisher
            .publish(&NotificationRequest::parse(request).expect("valid"))
            .await
            .expect("enqueued");
    }

    /// One receive of up to 10 messages, as the event source mapping does; `visibility`
    /// is how long received messages stay hidden.
    async fn receive(&self, visibility: i32) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .send()
            .await
            .expect("receive")
            .messages()
            .to_vec()
    }

    /// Invokes the pusher on `messages` with `budget` before the deadline; returns the IDs
    /// of the messages it reported failed.
    async fn invoke(
        &self,
        messages: &[aws_sdk_sqs::types::Message],
        budget: Duration,
    ) -> Vec<String> {
        let answer = handle_invocation(
            &moto::sqs_event(messages),
            &self.pusher,
            Some(Instant::now() + budget),
        )
        .await
        .expect("an SQS batch is always answered");
        answer["batchItemFailures"]
            .as_array()
            .expect("a batch response")
            .iter()
            .map(|failure| {
                failure["itemIdentifier"]
                    .as_str()
                    .expect("an ID")
                    .to_owned()
            })
            .collect()
    }

    async fn delete(&self, message: &aws_sdk_sqs::types::Message) {
        self.sqs
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(message.receipt_handle().expect("a receipt handle"))
            .send()
            .await
            .expect("delete");
    }

    /// Runs the queue dry: every batch goes to the pusher with `budget` before its deadline;
    /// what succeeded is deleted, what failed comes back at once.
    async fn run_queue(&self, budget: Duration) -> Run {
        let mut run = Run::default();
        let started = StdInstant::now();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the queue never ran dry: {run:?}"
            );
            let messages = self.receive(0).await;
            if messages.is_empty() {
                return run;
            }
            run.invocations += 1;
            run.messages += messages.len();
            let failed = self.invoke(&messages, budget).await;
            run.failed += failed.len();
            for message in &messages {
                if !failed
                    .iter()
                    .any(|id| Some(id.as_str()) == message.message_id())
                {
                    self.delete(message).await;
                }
            }
        }
    }

    fn tally(&self) -> VirtualTally {
        self.setup.gateway.virtual_tally()
    }
}

fn busy() -> ExternalId {
    ExternalId::parse("room:busy").expect("valid")
}

/// How many messages `stream` holds: one more is appended, and its number says.
async fn appended_so_far(pipeline: &Pipeline, stream: &ExternalId) -> u64 {
    let store = pipeline.setup.dynamodb_store().expect("a DynamoDB store");
    let probe = store
        .append(stream, None, "0", Retention::default(), SystemClock.now())
        .await
        .expect("append");
    probe.position.seq - 1
}

fn assert_each_exactly_once(tally: &VirtualTally, audience: usize) {
    assert_eq!(tally.more_than_once, 0, "{tally:?}");
    assert_eq!(tally.unreached, tally.connections - audience, "{tally:?}");
    assert_eq!(tally.exactly_once, audience, "{tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_above_the_threshold_is_scattered_over_the_queue_and_reaches_everyone_once() {
    let config = ContinuationConfig {
        scatter: Some(ScatterConfig::new(100, 8).expect("valid")),
        ..ContinuationConfig::default()
    };
    let pipeline = pipeline("scatter", 600, Faults::default(), config).await;
    pipeline
        .enqueue(r#"{"exclude_users":["u3"],"data":{"n":1}}"#)
        .await;

    let run = pipeline.run_queue(Duration::from_secs(60)).await;

    let tally = pipeline.tally();
    println!("scatter: {run:?}, {tally:?}");
    // 600 connections, 15 of them user u3's (every 40th).
    assert_each_exactly_once(&tally, 585);
    assert!(run.messages > 1, "the broadcast was not scattered: {run:?}");
    assert_eq!(run.failed, 0);
    pipeline.setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_stopped_at_its_deadline_continues_through_the_queue_and_reaches_everyone_once() {
    let faults = Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    };
    let config = ContinuationConfig {
        deadline_margin: Duration::from_millis(200),
        scatter: None,
        ..ContinuationConfig::default()
    };
    let pipeline = pipeline("deadline", 300, faults, config).await;
    pipeline.enqueue(r#"{"data":{"n":2}}"#).await;

    // 16 posts of 20 ms in flight: about 120 fit in the 150 ms before each stop point, so
    // 300 connections need several invocations.
    let run = pipeline.run_queue(Duration::from_millis(350)).await;

    let tally = pipeline.tally();
    println!("deadline: {run:?}, {tally:?}");
    assert_each_exactly_once(&tally, 300);
    assert!(run.messages >= 3, "the push was never continued: {run:?}");
    // A continuation whose stop point comes before it read or posted anything (ten of them
    // share the machine) is reported failed rather than continued as is, and comes back:
    // `run.failed` may be above 0, and the tally above must still be exact.
    pipeline.setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_and_a_repeated_request_id_are_skipped() {
    let pipeline = pipeline(
        "redelivery",
        50,
        Faults::default(),
        ContinuationConfig::default(),
    )
    .await;
    pipeline.enqueue(r#"{"data":{"n":3}}"#).await;
    let first = pipeline.receive(0).await;
    let first_failed = pipeline.invoke(&first, Duration::from_secs(60)).await;

    // Not deleted (as if the answer were lost): SQS hands the same message out again.
    let again = pipeline.receive(0).await;
    let again_failed = pipeline.invoke(&again, Duration::from_secs(60)).await;
    for message in &again {
        pipeline.delete(message).await;
    }
    // A producer sending the same request twice, with its own `id`.
    pipeline
        .enqueue(r#"{"id":"order-77","users":["u1"],"data":{"n":4}}"#)
        .await;
    pipeline
        .enqueue(r#"{"id":"order-77","users":["u1"],"data":{"n":4}}"#)
        .await;
    let run = pipeline.run_queue(Duration::from_secs(60)).await;

    let tally = pipeline.tally();
    println!("redelivery: {run:?}, {tally:?}");
    assert_eq!(first.len(), 1);
    assert_eq!(
        again.first().and_then(|m| m.message_id()),
        first[0].message_id()
    );
    assert!(first_failed.is_empty() && again_failed.is_empty());
    // Both copies of order-77 usually arrive in one batch: the second finds the first's
    // claim in progress, is reported failed, comes back, and is then skipped as done.
    assert!(run.failed <= 1, "{run:?}");
    assert_eq!(run.messages, 2 + run.failed, "{run:?}");
    // The broadcast once to all 50; the order once to u1's 2 connections (v00001, v00041).
    assert_eq!(tally.messages, 52, "{tally:?}");
    assert_eq!(tally.more_than_once, 2, "{tally:?}");
    pipeline.setup.finish().await;
}

/// With history on, a request that is redelivered, sent twice with one `id`, and continued
/// at its deadline over several invocations is appended to its stream once; a scattered
/// broadcast names no stream and appends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_continued_and_repeated_request_is_appended_once() {
    let faults = Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    };
    let config = ContinuationConfig {
        deadline_margin: Duration::from_millis(200),
        scatter: Some(ScatterConfig::new(100, 8).expect("valid")),
        ..ContinuationConfig::default()
    };
    let rooms_and_users =
        HistoryPolicy::new(["room", "user"], Duration::from_secs(900), 100).expect("valid");
    let pipeline = pipeline_with("history", 300, faults, config, Some(rooms_and_users)).await;
    let request = r#"{"id":"h-1","topics":["room:busy"],"data":{"n":5}}"#;
    pipeline.enqueue(request).await;
    // The first delivery is received and answered, but not deleted: it comes back.
    let first = pipeline.receive(0).await;
    pipeline.invoke(&first, Duration::from_millis(350)).await;
    pipeline.enqueue(request).await;

    let run = pipeline.run_queue(Duration::from_millis(350)).await;

    let tally = pipeline.tally();
    println!("history: {run:?}, {tally:?}");
    assert_each_exactly_once(&tally, 300);
    assert!(run.messages >= 3, "the push was never continued: {run:?}");
    assert_eq!(appended_so_far(&pipeline, &busy()).await, 1);

    pipeline.enqueue(r#"{"data":{"n":6}}"#).await;
    let run = pipeline.run_queue(Duration::from_secs(60)).await;
    assert!(run.messages > 1, "the broadcast was not scattered: {run:?}");
    let u1 = ExternalId::parse("user:u1").expect("valid");
    assert_eq!(appended_so_far(&pipeline, &u1).await, 0);
    pipeline.setup.finish().await;
}
