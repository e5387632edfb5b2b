//! A function that fails to start, crashes, fails or times out, with `fake_bootstrap.py`
//! standing in for the subscribe function: the caller gets API Gateway's answer to a failed
//! integration, the log names the function and how it exited, and a new instance serves what
//! comes next.

use std::time::{Duration, Instant};

use serde_json::json;
use wspush_local::LocalConfig;

use crate::{deployed_from, edited_template, template, with_fake_subscribe};

const SUBSCRIBE_VARIABLES: &str = "      Description: wspush subscribe/unsubscribe routes, under the subscription policy.\n      Environment:\n        Variables:\n";

/// API Gateway's answer on the socket when a route's integration failed.
fn internal_error(reply: &serde_json::Value) -> bool {
    reply["message"] == "Internal server error"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_or_failing_instance_is_reported_and_replaced() {
    let dir = with_fake_subscribe();
    let setup = deployed_from(dir.clone(), template(), &[], LocalConfig::default(), None)
        .await
        .expect("the functions start");
    let mut ana = setup.connect("ana").await;

    ana.send(r#"{"action":"subscribe","topics":["crash"]}"#)
        .await;
    let crashed = ana.next_json().await;
    assert!(internal_error(&crashed), "{crashed}");
    ana.send(r#"{"action":"subscribe","topics":["room:1"]}"#)
        .await;
    assert_eq!(
        ana.next_json().await,
        json!({"ok": true, "fake": true}),
        "a new instance answers"
    );

    ana.send(r#"{"action":"subscribe","topics":["fail"]}"#)
        .await;
    let failed = ana.next_json().await;
    assert!(internal_error(&failed), "{failed}");
    ana.send(r#"{"action":"subscribe","topics":["room:2"]}"#)
        .await;
    assert_eq!(ana.next_json().await, json!({"ok": true, "fake": true}));

    let cold_starts = setup.gateway.cold_starts().expect("functions");
    assert_eq!(
        cold_starts["SubscribeFunction"].len(),
        2,
        "the crash started a second instance, the failure did not: {cold_starts:?}"
    );
    assert_eq!(cold_starts["ConnectFunction"].len(), 1, "{cold_starts:?}");
    setup.finish().await;
    std::fs::remove_dir_all(dir).expect("remove the fake directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_past_its_timeout_is_ended_and_its_instance_killed() {
    let dir = with_fake_subscribe();
    // The subscribe function alone gets 1 s (the others keep the Globals' 10 s).
    let (copy, path) = edited_template(
        SUBSCRIBE_VARIABLES,
        &format!("      Timeout: 1\n{SUBSCRIBE_VARIABLES}"),
    );
    let setup = deployed_from(dir.clone(), path, &[], LocalConfig::default(), None)
        .await
        .expect("the functions start");
    let mut ana = setup.connect("ana").await;

    let sent = Instant::now();
    ana.send(r#"{"action":"subscribe","topics":["hang"]}"#)
        .await;
    let hung = ana.next_json().await;
    let waited = sent.elapsed();
    assert!(internal_error(&hung), "{hung}");
    assert!(
        waited >= Duration::from_secs(1),
        "answered before the 1 s timeout: {waited:?}"
    );
    ana.send(r#"{"action":"subscribe","topics":["room:1"]}"#)
        .await;
    assert_eq!(ana.next_json().await, json!({"ok": true, "fake": true}));
    let cold_starts = setup.gateway.cold_starts().expect("functions");
    assert_eq!(cold_starts["SubscribeFunction"].len(), 2, "{cold_starts:?}");
    setup.finish().await;
    for dir in [dir, copy] {
        std::fs::remove_dir_all(dir).expect("remove the temporary directories");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_exits_before_it_is_ready_fails_the_start_with_its_output() {
    let dir = with_fake_subscribe();
    let (copy, path) = edited_template(
        SUBSCRIBE_VARIABLES,
        &format!("{SUBSCRIBE_VARIABLES}          FAKE_EXIT_AT_INIT: cannot read my settings\n"),
    );
    let error = deployed_from(dir.clone(), path, &[], LocalConfig::default(), None)
        .await
        .err()
        .expect("the start fails");
    let error = format!("{error:#}");
    assert!(
        error.contains("SubscribeFunction failed to start")
            && error.contains("exit status 3")
            && error.contains("cannot read my settings"),
        "{error}"
    );
    for dir in [dir, copy] {
        std::fs::remove_dir_all(dir).expect("remove the temporary directories");
    }
}
