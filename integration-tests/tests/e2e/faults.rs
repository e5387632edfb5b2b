//! The fault-injection suite: one SQS batch pushed through the real pusher handler to real
//! sockets on a local gateway whose `@connections` answers 30% of posts 429 and 10% 500, with
//! random latency spikes, while a third of the audience is gone (closed without
//! `$disconnect`, so the store still lists it and posts get 410).
//!
//! What must hold, per client and per record: a live client receives each record exactly
//! once unless the pusher's report lists its connection as failed (then not at all); a gone
//! connection is pruned from the store unless every record failed it before reaching the
//! 410; and the batch response lists exactly the records whose report is incomplete. The
//! tallies are printed (`cargo test --test e2e faults -- --nocapture`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use wspush_adapters::SystemClock;
use wspush_domain::{ConnectionId, NotificationRequest, RetryPolicy};
use wspush_handlers::pusher::handle_sqs;
use wspush_local::{Faults, LocalConfig};
use wspush_ports::{Clock, PushConfig, PushObserver, PushReport, PushService};

use crate::helpers::{Client, Setup, wait_for};

const LIVE: usize = 30;
const GONE: usize = 15;
const RECORDS: usize = 3;

/// The report of each pushed request, by payload.
#[derive(Default)]
struct Reports(Mutex<HashMap<String, PushReport>>);

impl PushObserver for Reports {
    fn pushed(&self, request: &NotificationRequest, report: &PushReport) {
        self.0
            .lock()
            .expect("lock")
            .insert(request.payload().to_owned(), report.clone());
    }
}

/// Every text message that arrives until the socket has been quiet for 500 ms.
async fn drain(client: &mut Client) -> Vec<String> {
    let mut texts = Vec::new();
    while let Ok(Some(frame)) =
        tokio::time::timeout(Duration::from_millis(500), client.socket.next()).await
    {
        if let Ok(Message::Text(text)) = frame {
            texts.push(text.to_string());
        }
    }
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_faults_each_live_client_gets_each_record_once_or_is_reported_failed() {
    let setup = Setup::memory_with(LocalConfig {
        faults: Faults {
            latency: Duration::from_millis(2),
            jitter: Duration::from_millis(40),
            throttle_rate: 0.3,
            error_rate: 0.1,
            lose_disconnects: true,
            ..Faults::default()
        },
        ..LocalConfig::default()
    })
    .await;
    let mut live = Vec::new();
    for index in 0..LIVE {
        live.push(setup.connect(&format!("live-{index}")).await);
    }
    let mut gone = Vec::new();
    for index in 0..GONE {
        let client = setup.connect(&format!("gone-{index}")).await;
        gone.push(client.id.clone());
        drop(client); // no close frame, and the gateway loses the $disconnect
    }
    wait_for(|| {
        let open = setup.gateway.open_connections();
        gone.iter().all(|id| !open.contains(id)).then_some(())
    })
    .await
    .expect("the gateway notices the gone sockets");

    let reports = Arc::new(Reports::default());
    let gateway = setup.gateway.api_gateway();
    let pusher = PushService::new(
        setup.gateway.store(),
        Arc::new(gateway),
        Arc::new(SystemClock),
        PushConfig {
            // Three attempts, so that some posts fail for good and that path is exercised.
            retry: RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            },
            ..PushConfig::default()
        },
    )
    .expect("a valid configuration")
    .with_observer(reports.clone());
    let records: Vec<Value> = (0..RECORDS)
        .map(|index| {
            json!({
                "messageId": format!("message-{index}"),
                "body": json!({"data": {"record": index}}).to_string(),
                "eventSource": "aws:sqs",
                "attributes": {},
                "messageAttributes": {},
            })
        })
        .collect();
    let event: SqsEvent =
        serde_json::from_value(json!({ "Records": records })).expect("an SQS event");

    let answer = handle_sqs(event, &pusher, None)
        .await
        .expect("every failed record has a message ID");

    let reports = reports.0.lock().expect("lock").clone();
    assert_eq!(reports.len(), RECORDS);
    let drained = futures::future::join_all(live.iter_mut().map(drain)).await;
    let received: HashMap<String, Vec<String>> = live
        .iter()
        .map(|client| client.id.clone())
        .zip(drained)
        .collect();
    let mut expected_failures = HashSet::new();
    for index in 0..RECORDS {
        let payload = json!({ "record": index }).to_string();
        let report = &reports[&payload];
        let failed: HashSet<String> = report
            .failed
            .iter()
            .map(|failure| failure.connection.to_string())
            .collect();
        for client in &live {
            let copies = received[&client.id]
                .iter()
                .filter(|text| **text == payload)
                .count();
            let expected = usize::from(!failed.contains(&client.id));
            assert_eq!(
                copies, expected,
                "record {index} reached {} {copies} times; failed: {failed:?}",
                client.id
            );
        }
        assert_eq!(report.not_attempted, 0);
        assert!(report.read_errors.is_empty() && report.aborted.is_none());
        let failed_live = live
            .iter()
            .filter(|client| failed.contains(&client.id))
            .count();
        assert_eq!(
            report.delivered + failed_live,
            LIVE,
            "every live connection is delivered or reported failed: {report:?}"
        );
        if !report.is_complete() {
            expected_failures.insert(format!("message-{index}"));
        }
        println!(
            "record {index}: delivered {}, pruned {}, failed {}, retries {}, throttled {}, {} ms",
            report.delivered,
            report.pruned,
            report.failed.len(),
            report.retries,
            report.throttled,
            report.elapsed.as_millis()
        );
    }
    let reported: HashSet<String> = answer
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone())
        .collect();
    assert_eq!(reported, expected_failures, "the batch response");

    let store = setup.gateway.store();
    let mut still_stored = 0;
    for id in &gone {
        let found = store
            .get(
                &ConnectionId::parse(id.as_str()).expect("valid"),
                SystemClock.now(),
            )
            .await
            .expect("a store read");
        if found.is_some() {
            still_stored += 1;
            let failed_everywhere = reports.values().all(|report| {
                report
                    .failed
                    .iter()
                    .any(|failure| failure.connection.as_str() == id)
            });
            assert!(
                failed_everywhere,
                "{id} is gone, still stored, and some record did not fail it"
            );
        }
    }
    // The records ran concurrently: a gone connection two of them found is counted by the
    // one whose delete removed it.
    let pruned: usize = reports.values().map(|report| report.pruned).sum();
    let already: usize = reports.values().map(|report| report.already_pruned).sum();
    assert_eq!(
        pruned,
        GONE - still_stored,
        "each removed connection pruned once"
    );
    println!(
        "fault suite: {LIVE} live and {GONE} gone connections, {RECORDS} records; {} records reported failed; {still_stored} gone connections left for a later push; pruned {pruned}, already pruned {already}",
        reported.len()
    );
    setup.finish().await;
}

/// Slow clients (every post to them answered 429, as API Gateway answers a client whose
/// buffer is full) are retried on their own and reported failed; every other socket gets
/// the push. On both stores.
async fn slow_clients_are_reported_failed_and_every_other_socket_is_delivered(setup: Setup) {
    let faults = Faults {
        slow_connections: 0.1,
        ..Faults::default()
    };
    let mut clients = Vec::new();
    for index in 0..100 {
        let mut client = setup.connect(&format!("u-{index}")).await;
        client.subscribe(&["room:slow"]).await;
        clients.push(client);
    }
    let slow: HashSet<String> = clients
        .iter()
        .map(|client| client.id.clone())
        .filter(|id| faults.is_slow(id))
        .collect();
    assert!(!slow.is_empty() && slow.len() < 30, "{} slow", slow.len());

    let (status, report) = setup
        .notify(r#"{"topics":["room:slow"],"data":"hello"}"#)
        .await;

    assert_eq!(status, 502, "incomplete: {report}");
    assert_eq!(report["delivered"], 100 - slow.len(), "{report}");
    let failed: HashSet<String> = report["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|failure| {
            assert_eq!(failure["reason"]["kind"], "throttled", "{failure}");
            failure["connection"].as_str().expect("an ID").to_owned()
        })
        .collect();
    assert_eq!(failed, slow, "exactly the slow ones are reported failed");
    let received = futures::future::join_all(clients.iter_mut().map(drain)).await;
    for (client, got) in clients.iter().zip(received) {
        let expected: &[&str] = if slow.contains(&client.id) {
            &[]
        } else {
            &[r#""hello""#]
        };
        assert_eq!(got, expected, "{}", client.id);
    }
    setup.finish().await;
}

fn slow_setup() -> LocalConfig {
    LocalConfig {
        faults: Faults {
            slow_connections: 0.1,
            ..Faults::default()
        },
        ..LocalConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_on_memory() {
    slow_clients_are_reported_failed_and_every_other_socket_is_delivered(
        Setup::memory_with(slow_setup()).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_on_dynamodb() {
    slow_clients_are_reported_failed_and_every_other_socket_is_delivered(
        Setup::dynamodb_with_config(slow_setup()).await,
    )
    .await;
}

/// Connections of the account-throttle scenario, and the gateway's throttle (posts per
/// second, with one second of burst) under the pusher's own ceiling.
const THROTTLED_AUDIENCE: usize = 1_200;
const ACCOUNT_THROTTLE: u32 = 300;
const PUSHER_CEILING: u32 = 600;

async fn the_account_throttle_is_absorbed_and_every_connection_is_accounted_for(setup: Setup) {
    let store = setup.gateway.store();
    let now = SystemClock.now();
    let topic = wspush_domain::ExternalId::parse("room:throttled").expect("valid");
    let ids: Vec<String> = (0..THROTTLED_AUDIENCE)
        .map(|index| format!("t{index:05}"))
        .collect();
    for (index, id) in ids.iter().enumerate() {
        let connection = wspush_domain::Connection::open(
            ConnectionId::parse(id.as_str()).expect("valid"),
            wspush_domain::UserId::parse(format!("u{index}")).expect("valid"),
            now,
        );
        store.save(&connection).await.expect("save");
        store
            .subscribe(&connection, std::slice::from_ref(&topic), now)
            .await
            .expect("subscribe");
    }
    setup.gateway.set_virtual_connections(ids.clone());
    let pusher = PushService::new(
        store,
        Arc::new(setup.gateway.api_gateway()),
        Arc::new(SystemClock),
        PushConfig {
            max_posts_per_second: Some(PUSHER_CEILING),
            ..PushConfig::default()
        },
    )
    .expect("a valid configuration");
    let request =
        NotificationRequest::parse(r#"{"topics":["room:throttled"],"data":"hi"}"#).expect("valid");

    let report = pusher.push(&request).await;

    // The throttle bit (so the pacer had something to settle on), and every connection is
    // either delivered once or reported failed as throttled, to be re-enqueued.
    assert!(report.throttled > 0, "{report:?}");
    assert!(
        report
            .failed
            .iter()
            .all(|failure| failure.reason == wspush_ports::FailureReason::Throttled),
        "{:?}",
        report.failed
    );
    assert_eq!(
        report.delivered + report.failed.len(),
        THROTTLED_AUDIENCE,
        "{report:?}"
    );
    let tally = setup.gateway.virtual_tally();
    assert_eq!(tally.more_than_once, 0, "{tally:?}");
    assert_eq!(tally.exactly_once, report.delivered, "{tally:?}");
    assert_eq!(
        tally.unreached,
        report.failed.len(),
        "the unreached are exactly the reported: {tally:?}"
    );
    setup.finish().await;
}

fn throttled_setup() -> LocalConfig {
    LocalConfig {
        faults: Faults {
            requests_per_second: Some(ACCOUNT_THROTTLE),
            ..Faults::default()
        },
        ..LocalConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_throttle_on_memory() {
    the_account_throttle_is_absorbed_and_every_connection_is_accounted_for(
        Setup::memory_with(throttled_setup()).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_throttle_on_dynamodb() {
    the_account_throttle_is_absorbed_and_every_connection_is_accounted_for(
        Setup::dynamodb_with_config(throttled_setup()).await,
    )
    .await;
}
