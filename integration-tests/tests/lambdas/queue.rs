//! The pusher's continuations through a real queue (moto's SQS): a broadcast stopped at its
//! deadline continues through the template's notification queue, which the gateway polls as
//! the event source mapping would, and reaches every connection exactly once.

use std::time::Duration;

use wspush_adapters::SystemClock;
use wspush_domain::{Connection, ConnectionId, UserId};
use wspush_integration_tests::moto;
use wspush_local::{Faults, LocalConfig, SqsEndpoint};
use wspush_ports::{Clock, ConnectionStore};

use crate::{deployed_from, edited_template_with, lambdas_dir};

const AUDIENCE: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_stopped_at_its_deadline_continues_through_the_queue_to_everyone_once() {
    // A pusher with 2 s to run and 1.5 s kept back: about 500 ms of posts per invocation,
    // 4 in flight at 20 ms each, so about 100 connections per invocation.
    let (copy, path) = edited_template_with(&[
        ("      Timeout: 60\n", "      Timeout: 2\n"),
        (
            "          WSPUSH_SCATTER_ABOVE: !Ref PusherScatterAbove\n",
            "          WSPUSH_SCATTER_ABOVE: !Ref PusherScatterAbove\n          WSPUSH_DEADLINE_MARGIN_MS: \"1500\"\n",
        ),
    ]);
    let config = LocalConfig {
        faults: Faults {
            latency: Duration::from_millis(20),
            ..Faults::default()
        },
        ..LocalConfig::default()
    };
    let sqs = SqsEndpoint {
        endpoint: moto::endpoint(),
        queue_name: format!("wspush-lambdas-{}", fastrand::u32(..)),
    };
    let setup = deployed_from(
        lambdas_dir(),
        path,
        &[
            ("PusherMaxInFlight", "4"),
            ("PusherMaxPostsPerSecond", "off"),
        ],
        config,
        Some(sqs),
    )
    .await
    .expect("the functions start");
    let store = setup.dynamodb_store().expect("DynamoDB");
    let now = SystemClock.now();
    let ids: Vec<String> = (0..AUDIENCE).map(|i| format!("v{i:05}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let connection = Connection::open(
            ConnectionId::parse(id.as_str()).expect("valid"),
            UserId::parse(format!("u{}", i % 40)).expect("valid"),
            now,
        );
        store.save(&connection).await.expect("save");
    }
    setup.gateway.set_virtual_connections(ids);

    let (status, answer) = setup.notify(r#"{"broadcast":true,"data":{"n":1}}"#).await;
    assert_eq!(status, 200, "{answer}");
    let first = setup.gateway.virtual_tally();
    assert!(
        first.exactly_once < AUDIENCE,
        "the first invocation reached everyone, so nothing was continued: {first:?}"
    );
    let mut tally = first;
    for _ in 0..300 {
        tally = setup.gateway.virtual_tally();
        if tally.exactly_once + tally.more_than_once == AUDIENCE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("continuations through the queue: first invocation {first:?}, at the end {tally:?}");
    assert_eq!(tally.exactly_once, AUDIENCE, "{tally:?}");
    assert_eq!(tally.more_than_once, 0, "{tally:?}");
    let cold_starts = setup.gateway.cold_starts().expect("functions");
    assert_eq!(
        cold_starts["PusherFunction"].len(),
        1,
        "no instance crashed: {cold_starts:?}"
    );
    setup.finish().await;
    std::fs::remove_dir_all(copy).expect("remove the copy");
}
