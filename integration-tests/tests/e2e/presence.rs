//! Presence and control through real sockets on the local gateway, on both stores: joins and
//! leaves seen by the other members, once per transition; a vanished socket's leave after
//! the next push prunes it; a backend's disconnect, subscribe and unsubscribe; the presence
//! query refused outside its topic; occupancy.

use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use wspush_adapters::SystemClock;
use wspush_domain::{PresencePolicy, Source, UserId};
use wspush_local::{Faults, LocalConfig};
use wspush_ports::{Clock, stream_source};

use crate::helpers::{Client, Setup, http, wait_for};

/// Which store a case runs on.
#[derive(Clone, Copy)]
pub enum Kind {
    Memory,
    DynamoDb,
}

/// A gateway keeping presence for `room:*`, losing every `$disconnect` when `lossy`.
async fn setup(kind: Kind, lossy: bool) -> Setup {
    let config = LocalConfig {
        presence: PresencePolicy::new(["room"]).expect("valid"),
        faults: Faults {
            lose_disconnects: lossy,
            ..Faults::default()
        },
        ..LocalConfig::default()
    };
    match kind {
        Kind::Memory => Setup::memory_with(config).await,
        Kind::DynamoDb => Setup::dynamodb_with_config(config).await,
    }
}

fn event(topic: &str, user: &str, change: &str) -> Value {
    json!({"presence": {"topic": topic, "user": user, "event": change}})
}

/// The next route reply. An event is pushed to whoever is subscribed when the pusher sends
/// it, so a user who subscribed just after another may be sent the other's join, before or
/// after its own reply: those are skipped here.
async fn reply(client: &mut Client) -> Value {
    loop {
        let message = client.next_json().await;
        if message.get("presence").is_none() {
            return message;
        }
    }
}

/// Subscribes and checks the reply (skipping others' presence events).
async fn join(client: &mut Client, topics: &[&str]) {
    client
        .send(&json!({"action": "subscribe", "topics": topics}).to_string())
        .await;
    let answer = reply(client).await;
    assert_eq!(answer["ok"], true, "{answer}");
}

/// Asserts that nothing but other users' presence events arrives for 300 ms.
async fn quiet(client: &mut Client, me: &str) {
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_millis(300), client.socket.next()).await
    {
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert!(
            value["presence"]["user"]
                .as_str()
                .is_some_and(|user| user != me),
            "expected nothing for {me}, got {value}"
        );
    }
}

async fn presence_query(client: &mut Client, topic: &str) -> Value {
    client
        .send(&json!({"action": "presence", "topic": topic}).to_string())
        .await;
    reply(client).await
}

async fn unsubscribe(client: &mut Client, topics: &[&str]) {
    client
        .send(&json!({"action": "unsubscribe", "topics": topics}).to_string())
        .await;
    assert_eq!(reply(client).await["ok"], true);
}

/// Closes the socket and waits for the close to be acknowledged.
async fn close(mut client: Client) {
    client.socket.close(None).await.expect("close");
    while let Some(Ok(frame)) = client.socket.next().await {
        if matches!(frame, Message::Close(_)) {
            break;
        }
    }
}

/// The live connections of `user` in the gateway's store.
async fn connections_of(setup: &Setup, user: &str) -> usize {
    let mut pages = std::pin::pin!(stream_source(
        setup.gateway.store(),
        Source::User(UserId::parse(user).expect("valid")),
        100,
        SystemClock.now(),
    ));
    let mut count = 0;
    while let Some(page) = pages.next().await {
        count += page.expect("read").len();
    }
    count
}

pub async fn joins_and_leaves_are_seen_by_the_other_members(kind: Kind) {
    let setup = setup(kind, false).await;
    let mut bo = setup.connect("bo").await;
    bo.subscribe(&["room:1"]).await;
    let mut ana = setup.connect("ana").await;

    join(&mut ana, &["room:1", "chat:1"]).await;
    assert_eq!(bo.next_json().await, event("room:1", "ana", "join"));
    unsubscribe(&mut ana, &["room:1"]).await;
    assert_eq!(bo.next_json().await, event("room:1", "ana", "leave"));
    join(&mut ana, &["room:1"]).await;
    assert_eq!(bo.next_json().await, event("room:1", "ana", "join"));
    quiet(&mut ana, "ana").await; // not her own join, and nothing for chat:1 (no presence)
    close(ana).await;
    assert_eq!(bo.next_json().await, event("room:1", "ana", "leave"));
    bo.expect_nothing().await;
    setup.finish().await;
}

pub async fn a_user_with_two_sockets_leaves_only_when_both_are_gone(kind: Kind) {
    let setup = setup(kind, false).await;
    let mut bo = setup.connect("bo").await;
    bo.subscribe(&["room:1"]).await;
    let mut phone = setup.connect("ana").await;
    let mut laptop = setup.connect("ana").await;

    join(&mut phone, &["room:1"]).await;
    assert_eq!(bo.next_json().await, event("room:1", "ana", "join"));
    join(&mut laptop, &["room:1"]).await;
    bo.expect_nothing().await;
    close(phone).await;
    bo.expect_nothing().await;
    close(laptop).await;
    assert_eq!(bo.next_json().await, event("room:1", "ana", "leave"));
    bo.expect_nothing().await;
    setup.finish().await;
}

/// Eight sockets of one user subscribe at once, then all close at once: one join, one leave.
pub async fn eight_sockets_of_one_user_racing_join_once_and_leave_once(kind: Kind) {
    let setup = setup(kind, false).await;
    let mut bo = setup.connect("bo").await;
    bo.subscribe(&["room:1"]).await;
    let mut sockets = Vec::new();
    for _ in 0..8 {
        sockets.push(setup.connect("ana").await);
    }
    let subscribe = json!({"action": "subscribe", "topics": ["room:1"]}).to_string();
    join_all(sockets.iter_mut().map(|socket| socket.send(&subscribe))).await;
    for socket in &mut sockets {
        assert_eq!(reply(socket).await["ok"], true);
    }
    assert_eq!(bo.next_json().await, event("room:1", "ana", "join"));
    bo.expect_nothing().await;

    join_all(sockets.into_iter().map(close)).await;
    assert_eq!(bo.next_json().await, event("room:1", "ana", "leave"));
    bo.expect_nothing().await;
    setup.finish().await;
}

pub async fn a_vanished_socket_ends_in_one_leave_after_the_next_push_prunes_it(kind: Kind) {
    let setup = setup(kind, true).await;
    let mut bo = setup.connect("bo").await;
    bo.subscribe(&["room:1"]).await;
    let mut ana = setup.connect("ana").await;
    join(&mut ana, &["room:1"]).await;
    assert_eq!(bo.next_json().await, event("room:1", "ana", "join"));
    let ghost = ana.id.clone();

    drop(ana); // no close frame, and the gateway loses the $disconnect
    wait_for(|| (!setup.gateway.open_connections().contains(&ghost)).then_some(()))
        .await
        .expect("the gateway notices the socket is gone");
    bo.expect_nothing().await;
    let (status, report) = setup
        .notify(r#"{"topics":["room:1"],"data":"hello"}"#)
        .await;
    assert_eq!((status, &report["pruned"]), (200, &json!(1)), "{report}");
    // The leave is a push of its own, made while this one still posts: either comes first.
    let mut got = vec![bo.next_json().await, bo.next_json().await];
    got.sort_by_key(Value::to_string);
    let mut expected = vec![json!("hello"), event("room:1", "ana", "leave")];
    expected.sort_by_key(Value::to_string);
    assert_eq!(got, expected);

    let (_, report) = setup
        .notify(r#"{"topics":["room:1"],"data":"again"}"#)
        .await;
    assert_eq!(report["pruned"], 0, "{report}");
    assert_eq!(bo.next_text().await, r#""again""#);
    bo.expect_nothing().await;
    setup.finish().await;
}

pub async fn a_kicked_users_sockets_all_close_and_are_gone_from_the_store(kind: Kind) {
    let setup = setup(kind, false).await;
    let mut bo = setup.connect("bo").await;
    bo.subscribe(&["room:1"]).await;
    let mut phone = setup.connect("ana").await;
    let laptop = setup.connect("ana").await;
    join(&mut phone, &["room:1"]).await;
    assert_eq!(bo.next_json().await, event("room:1", "ana", "join"));

    let (status, report) = setup
        .notify(r#"{"action":"disconnect","users":["ana"]}"#)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["action"], &report["connections"], &report["closed"]),
        (&json!("disconnect"), &json!(2), &json!(2)),
        "{report}"
    );
    for mut socket in [phone, laptop] {
        let frame = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match socket.socket.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => continue,
                    other => panic!("expected a close frame, got {other:?}"),
                }
            }
        })
        .await
        .expect("closed within 5 s");
        assert_eq!(frame.map(|frame| u16::from(frame.code)), Some(1000));
    }
    assert_eq!(bo.next_json().await, event("room:1", "ana", "leave"));
    assert_eq!(connections_of(&setup, "ana").await, 0);
    let (_, report) = setup
        .notify(r#"{"users":["bo"],"data":"still here"}"#)
        .await;
    assert_eq!(report["delivered"], 1, "{report}");
    assert_eq!(bo.next_text().await, r#""still here""#);
    bo.expect_nothing().await;
    setup.finish().await;
}

pub async fn a_server_side_subscribe_makes_the_users_sockets_receive_the_topic(kind: Kind) {
    let setup = setup(kind, false).await;
    let mut phone = setup.connect("ana").await;
    let mut laptop = setup.connect("ana").await;
    let mut bo = setup.connect("bo").await;
    bo.subscribe(&["room:7"]).await;

    let (status, report) = setup
        .notify(r#"{"action":"subscribe","users":["ana"],"topics":["news:1","room:7"]}"#)
        .await;
    assert_eq!(
        (status, &report["connections"]),
        (200, &json!(2)),
        "{report}"
    );
    assert_eq!(bo.next_json().await, event("room:7", "ana", "join"));
    let (_, report) = setup
        .notify(r#"{"topics":["news:1"],"data":"headline"}"#)
        .await;
    assert_eq!(report["delivered"], 2, "{report}");
    assert_eq!(reply(&mut phone).await, json!("headline"));
    assert_eq!(reply(&mut laptop).await, json!("headline"));

    let (status, report) = setup
        .notify(r#"{"action":"unsubscribe","users":["ana"],"topics":["news:1","room:7"]}"#)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(bo.next_json().await, event("room:7", "ana", "leave"));
    let (_, report) = setup.notify(r#"{"topics":["news:1"],"data":"more"}"#).await;
    assert_eq!(report["delivered"], 0, "{report}");
    quiet(&mut phone, "ana").await;
    quiet(&mut laptop, "ana").await;
    setup.finish().await;
}

pub async fn a_presence_query_from_outside_the_topic_is_refused(kind: Kind) {
    let setup = setup(kind, false).await;
    let mut ana = setup.connect("ana").await;
    let mut tab = setup.connect("ana").await;
    let mut bo = setup.connect("bo").await;
    let mut eve = setup.connect("eve").await;
    join(&mut ana, &["room:1"]).await;
    join(&mut tab, &["room:1"]).await;
    join(&mut bo, &["room:1", "chat:1"]).await;

    let members = presence_query(&mut bo, "room:1").await;
    assert_eq!(members["ok"], true, "{members}");
    assert_eq!(members["users"], json!(["ana", "bo"]));
    assert_eq!(members["total"], 2);
    bo.send(r#"{"action":"presence","topic":"room:1","limit":1,"id":"q1"}"#)
        .await;
    let first = reply(&mut bo).await;
    assert_eq!(
        (&first["users"], &first["total"], &first["id"]),
        (&json!(["ana"]), &json!(2), &json!("q1"))
    );

    let refused = presence_query(&mut eve, "room:1").await;
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["rule"], "presence_needs_subscription");
    let error = refused["error"].as_str().expect("an error");
    assert!(error.contains("subscribers only"), "{error}");
    let refused = presence_query(&mut bo, "chat:1").await;
    assert!(
        refused["error"]
            .as_str()
            .expect("an error")
            .contains("keeps no presence"),
        "{refused}"
    );
    bo.send(r#"{"action":"presence","topic":"room:1","limit":0}"#)
        .await;
    let refused = reply(&mut bo).await;
    assert!(
        refused["error"]
            .as_str()
            .expect("an error")
            .contains("field `limit`"),
        "{refused}"
    );

    let (status, body) = http(
        setup.gateway.address(),
        "GET",
        "/occupancy?topic=room:1",
        b"",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let counted: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        counted,
        json!({"topic": "room:1", "connections": 3, "users": 2})
    );
    let (status, body) = http(setup.gateway.address(), "GET", "/occupancy", b"").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("parameter `topic`"), "{body}");
    setup.finish().await;
}

pub async fn a_bad_control_request_is_refused_naming_the_field_and_does_nothing(kind: Kind) {
    let setup = setup(kind, false).await;
    let mut ana = setup.connect("ana").await;
    for (request, field) in [
        (r#"{"action":"disconnect"}"#, "users"),
        (r#"{"action":"disconnect","users":[]}"#, "users"),
        (r#"{"action":"disconnect","user":["ana"]}"#, "user"),
        (
            r#"{"action":"disconnect","users":["ana"],"topics":["room:1"]}"#,
            "topics",
        ),
        (r#"{"action":"subscribe","users":["ana"]}"#, "topics"),
        (r#"{"action":"kick","users":["ana"]}"#, "action"),
        (r#"{"action":"disconnect","users":["a na"]}"#, "users"),
    ] {
        let (status, body) = setup.notify(request).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{request}: {body}"
        );
    }
    let (_, report) = setup
        .notify(r#"{"users":["ana"],"data":"still here"}"#)
        .await;
    assert_eq!(report["delivered"], 1, "{report}");
    assert_eq!(ana.next_text().await, r#""still here""#);
    setup.finish().await;
}

macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::Memory).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::DynamoDb).await;
                }
            )*
        }
    };
}

on_both_stores!(
    joins_and_leaves_are_seen_by_the_other_members,
    a_user_with_two_sockets_leaves_only_when_both_are_gone,
    eight_sockets_of_one_user_racing_join_once_and_leave_once,
    a_vanished_socket_ends_in_one_leave_after_the_next_push_prunes_it,
    a_kicked_users_sockets_all_close_and_are_gone_from_the_store,
    a_server_side_subscribe_makes_the_users_sockets_receive_the_topic,
    a_presence_query_from_outside_the_topic_is_refused,
    a_bad_control_request_is_refused_naming_the_field_and_does_nothing,
);
