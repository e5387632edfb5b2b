//! Catch-up after reconnect through real sockets on the local gateway, on both stores: a
//! client that was away resubscribes `since` its last position and gets exactly what it
//! missed, in order, then the live messages; a position older than the kept window is a gap;
//! and pushes racing a resume reach the client exactly once after dropping repeats.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use wspush_domain::HistoryPolicy;
use wspush_local::LocalConfig;

use crate::helpers::{Client, Setup};

/// History for `room:*`, keeping 5 messages per stream.
fn rooms_keep_5() -> LocalConfig {
    LocalConfig {
        history: HistoryPolicy::new(["room"], Duration::from_secs(900), 5).expect("valid"),
        ..LocalConfig::default()
    }
}

async fn push(setup: &Setup, stream: &str, n: u64) {
    let request = json!({"topics": [stream], "data": {"n": n}});
    let (status, body) = setup.notify(&request.to_string()).await;
    assert_eq!(status, 200, "{body}");
}

/// `(n, seq, epoch)` of an envelope of `stream`.
fn read_envelope(message: &Value, stream: &str) -> (u64, u64, String) {
    let position = &message["positions"][stream];
    (
        message["data"]["n"].as_u64().expect("data.n"),
        position["seq"].as_u64().expect("a seq"),
        position["epoch"].as_str().expect("an epoch").to_owned(),
    )
}

async fn resubscribe(client: &mut Client, stream: &str, seq: u64, epoch: &str) {
    let body = json!({
        "action": "subscribe",
        "topics": [stream],
        "since": {stream: {"seq": seq, "epoch": epoch}},
    });
    client.send(&body.to_string()).await;
}

async fn a_client_back_from_a_drop_gets_what_it_missed_in_order_then_live(setup: Setup) {
    let mut ana = setup.connect("ana").await;
    ana.subscribe(&["room:42"]).await;
    for n in 1..=3 {
        push(&setup, "room:42", n).await;
    }
    let mut epoch = String::new();
    for n in 1..=3 {
        let (data, seq, at) = read_envelope(&ana.next_json().await, "room:42");
        assert_eq!((data, seq), (n, n));
        epoch = at;
    }
    drop(ana);
    for n in 4..=8 {
        push(&setup, "room:42", n).await;
    }

    let mut back = setup.connect("ana").await;
    resubscribe(&mut back, "room:42", 3, &epoch).await;
    for n in 4..=8 {
        let message = back.next_json().await;
        assert_eq!(
            read_envelope(&message, "room:42"),
            (n, n, epoch.clone()),
            "{message}"
        );
    }
    let reply = back.next_json().await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["recovered"], json!({"room:42": 5}));
    assert_eq!(reply["gaps"], json!([]));
    push(&setup, "room:42", 9).await;
    assert_eq!(
        read_envelope(&back.next_json().await, "room:42"),
        (9, 9, epoch.clone())
    );

    // 9 appended, 5 kept (5-9): a client at seq 1 is told of the gap, and sent nothing.
    let mut late = setup.connect("bob").await;
    resubscribe(&mut late, "room:42", 1, &epoch).await;
    let reply = late.next_json().await;
    assert_eq!(reply["recovered"], json!({}), "{reply}");
    assert_eq!(reply["gaps"], json!(["room:42"]));
    // So is a position of another epoch.
    let mut stale = setup.connect("cy").await;
    resubscribe(&mut stale, "room:42", 9, "an-old-epoch").await;
    assert_eq!(stale.next_json().await["gaps"], json!(["room:42"]));

    // A request of no history stream is sent as its bare data, as before.
    let (status, _) = setup
        .notify(&json!({"users": ["ana"], "data": {"plain": true}}).to_string())
        .await;
    assert_eq!(status, 200);
    assert_eq!(back.next_json().await, json!({"plain": true}));
    setup.finish().await;
}

/// Pushes 2..=`last` to `stream` while a client that saw seq 1 resumes: after dropping
/// repeats by seq, it has every one of them once.
async fn a_resume_racing_pushes(setup: &Setup, stream: &str, last: u64) {
    let mut first = setup.connect("ana").await;
    first.subscribe(&[stream]).await;
    push(setup, stream, 1).await;
    let (_, _, epoch) = read_envelope(&first.next_json().await, stream);
    drop(first);

    let mut back = setup.connect("ana").await;
    let pushes = async {
        for n in 2..=last {
            push(setup, stream, n).await;
        }
    };
    let resume = async {
        resubscribe(&mut back, stream, 1, &epoch).await;
        let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
        let mut replied = false;
        while !(replied && seen.contains_key(&last)) {
            let message = back.next_json().await;
            if message.get("ok").is_some() {
                assert_eq!(message["gaps"], json!([]), "{message}");
                replied = true;
                continue;
            }
            let (n, seq, at) = read_envelope(&message, stream);
            assert_eq!((n, &at), (seq, &epoch));
            *seen.entry(seq).or_default() += 1;
        }
        seen
    };
    let ((), seen) = tokio::join!(pushes, resume);

    let numbers: Vec<u64> = seen.keys().copied().collect();
    assert_eq!(
        numbers,
        (2..=last).collect::<Vec<u64>>(),
        "{stream}: {seen:?}"
    );
}

async fn pushes_racing_a_resume_reach_the_client_once_each_after_dropping_repeats(setup: Setup) {
    for round in 0..20 {
        a_resume_racing_pushes(&setup, &format!("room:race-{round}"), 5).await;
    }
    setup.finish().await;
}

async fn a_bad_since_is_refused_naming_the_field(setup: Setup) {
    let mut ana = setup.connect("ana").await;
    for (since, field) in [
        (
            json!({"room:9": {"seq": 1, "epoch": "e"}}),
            "since[\"room:9\"]",
        ),
        (
            json!({"room:1": {"seq": -1, "epoch": "e"}}),
            "since[\"room:1\"].seq",
        ),
        (
            json!({"room:1": {"seq": "3", "epoch": "e"}}),
            "since[\"room:1\"].seq",
        ),
        (
            json!({"room:1": {"seq": 1, "epoch": "e".repeat(65)}}),
            "since[\"room:1\"].epoch",
        ),
    ] {
        let body = json!({"action": "subscribe", "topics": ["room:1"], "since": since});
        ana.send(&body.to_string()).await;
        let reply = ana.next_json().await;
        assert_eq!(reply["ok"], false, "{reply}");
        let error = reply["error"].as_str().expect("an error");
        assert!(error.starts_with(&format!("field `{field}`")), "{error}");
    }
    let held = setup
        .gateway
        .store()
        .subscriptions(&wspush_domain::ConnectionId::parse(ana.id.as_str()).expect("id"))
        .await
        .expect("read");
    assert!(
        held.is_empty(),
        "a refused message subscribes nothing: {held:?}"
    );
    setup.finish().await;
}

macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(crate::helpers::Setup::memory_with(super::rooms_keep_5()).await)
                        .await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let setup =
                        crate::helpers::Setup::dynamodb_with_config(super::rooms_keep_5()).await;
                    super::$case(setup).await;
                }
            )*
        }
    };
}

on_both_stores!(
    a_client_back_from_a_drop_gets_what_it_missed_in_order_then_live,
    pushes_racing_a_resume_reach_the_client_once_each_after_dropping_repeats,
    a_bad_since_is_refused_naming_the_field,
);
