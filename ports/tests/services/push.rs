use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockall::Sequence;
use mockall::predicate::eq;
use wspush_domain::limits::MAX_CONNECTION_DURATION;
use wspush_domain::{
    Connection, NotificationRequest, RequestError, RetryPolicy, Source, Timestamp,
};
use wspush_ports::{
    ConnectionStore, FailureReason, GatewayError, MockConnectionGateway, MockConnectionStore,
    PushConfig, PushService, StoreError,
};

use crate::helpers::*;

/// (connection, payload) for each post accepted.
type SentLog = Arc<Mutex<Vec<(String, String)>>>;

/// A mock gateway that accepts every post and records who got which payload.
fn recording_gateway() -> (MockConnectionGateway, SentLog) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut gateway = MockConnectionGateway::new();
    let log = Arc::clone(&sent);
    gateway.expect_post().returning(move |connection, payload| {
        let text = String::from_utf8(payload.to_vec()).expect("utf-8");
        log.lock()
            .expect("lock")
            .push((connection.to_string(), text));
        Ok(())
    });
    (gateway, sent)
}

fn recipients(sent: &Mutex<Vec<(String, String)>>) -> Vec<String> {
    let mut ids: Vec<String> = sent
        .lock()
        .expect("lock")
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids
}

fn service<S, G>(store: Arc<S>, gateway: G, config: PushConfig) -> PushService<S, G>
where
    S: ConnectionStore + ?Sized,
    G: wspush_ports::ConnectionGateway,
{
    PushService::new(store, Arc::new(gateway), clock(), config).expect("valid config")
}

#[tokio::test]
async fn a_multicast_sends_the_compact_data_to_every_connection_of_each_user() {
    let store = store_with(&[("a1", "ana"), ("a2", "ana"), ("b1", "bob"), ("c1", "cy")]).await;
    let (gateway, sent) = recording_gateway();
    let push = service(store, gateway, config());

    let report = push
        .push(&request(
            r#"{"users": ["ana", "bob"], "data": {"text": "hi"}}"#,
        ))
        .await;

    assert_eq!(recipients(&sent), ["a1", "a2", "b1"]);
    assert!(
        sent.lock()
            .expect("lock")
            .iter()
            .all(|(_, payload)| payload == r#"{"text":"hi"}"#)
    );
    assert_eq!(report.delivered, 3);
    assert!(report.is_complete());
}

#[tokio::test]
async fn a_user_in_two_targeted_topics_gets_the_request_once() {
    let store = store_with(&[("shared", "ana"), ("only-a", "bob"), ("only-b", "cy")]).await;
    subscribe(&store, "shared", &["room:a", "room:b"]).await;
    subscribe(&store, "only-a", &["room:a"]).await;
    subscribe(&store, "only-b", &["room:b"]).await;
    let (gateway, sent) = recording_gateway();
    let push = service(store, gateway, config());

    let report = push
        .push(&request(r#"{"topics": ["room:a", "room:b"], "data": 1}"#))
        .await;

    assert_eq!(recipients(&sent), ["only-a", "only-b", "shared"]);
    assert_eq!(report.duplicates, 1);
    assert_eq!(report.delivered, 3);
}

#[tokio::test]
async fn a_connection_targeted_by_user_topic_and_id_gets_the_request_once() {
    let store = store_with(&[("c1", "ana")]).await;
    subscribe(&store, "c1", &["room:1"]).await;
    let (gateway, sent) = recording_gateway();
    let push = service(store, gateway, config());

    let report = push
        .push(&request(
            r#"{"users":["ana"],"topics":["room:1"],"connections":["c1"],"data":1}"#,
        ))
        .await;

    assert_eq!(recipients(&sent), ["c1"]);
    assert_eq!(report.duplicates, 2);
}

#[tokio::test]
async fn exclusion_of_the_senders_connection_skips_only_that_connection() {
    let store = store_with(&[("sender", "ana"), ("ana-phone", "ana"), ("bob", "bob")]).await;
    for connection in ["sender", "ana-phone", "bob"] {
        subscribe(&store, connection, &["room:1"]).await;
    }
    let (gateway, sent) = recording_gateway();
    let push = service(store, gateway, config());

    let report = push
        .push(&request(
            r#"{"topics":["room:1"],"exclude_connections":["sender"],"data":"typing"}"#,
        ))
        .await;

    assert_eq!(recipients(&sent), ["ana-phone", "bob"]);
    assert_eq!(report.excluded, 1);
}

#[tokio::test]
async fn a_broadcast_reaches_every_live_connection_across_pages_and_segments() {
    let store = store_of(50, 7, 2).await;
    // Opened exactly 2 h before NOW: API Gateway has closed it, no $disconnect came.
    let opened = NOW.unix_millis() - MAX_CONNECTION_DURATION.as_millis() as u64;
    let stale = Connection::open(id("stale"), user("u1"), Timestamp::from_unix_millis(opened));
    store.save(&stale).await.expect("save");
    let (gateway, sent) = recording_gateway();
    let push = service(store, gateway, config());

    let report = push.push(&request(r#"{"data": {"all": true}}"#)).await;

    let expected: Vec<String> = (0..50).map(|i| format!("c{i:02}")).collect();
    assert_eq!(recipients(&sent), expected);
    assert_eq!(report.delivered, 50);
}

#[tokio::test]
async fn a_request_whose_lists_are_empty_or_null_reaches_nobody() {
    let store = store_of(12, 3, 2).await;
    for json in [
        r#"{"users": [], "data": "secret"}"#,
        r#"{"users": null, "data": "secret"}"#,
        r#"{"users": [], "topics": [], "connections": null, "data": "secret"}"#,
        r#"{"broadcast": false, "data": "secret"}"#,
    ] {
        let (gateway, sent) = recording_gateway();
        let push = service(Arc::clone(&store), gateway, config());

        let report = push.push(&request(json)).await;

        assert!(recipients(&sent).is_empty(), "{json}");
        assert_eq!(report.delivered, 0, "{json}");
        assert!(report.is_complete(), "{json}");
    }
}

#[tokio::test]
async fn broadcast_true_reaches_everyone_and_the_python_reading_makes_empty_lists_a_broadcast() {
    let store = store_of(12, 3, 2).await;
    let everyone: Vec<String> = (0..12).map(|i| format!("c{i:02}")).collect();

    let (gateway, sent) = recording_gateway();
    let push = service(Arc::clone(&store), gateway, config());
    let report = push
        .push(&request(r#"{"broadcast": true, "data": 1}"#))
        .await;
    assert_eq!(recipients(&sent), everyone);
    assert_eq!(report.delivered, 12);

    let (gateway, sent) = recording_gateway();
    let python =
        service(Arc::clone(&store), gateway, config()).with_empty_lists_meaning_everyone(true);
    let report = python
        .push(&request(
            r#"{"users": [], "exclude_users": ["u0"], "data": 1}"#,
        ))
        .await;
    // u0 owns c00, c03, c06, c09.
    assert_eq!(report.delivered, 8);
    assert_eq!(report.excluded, 4);
    assert!(!recipients(&sent).contains(&"c00".to_owned()));
    let report = python
        .push(&request(r#"{"users": ["u1"], "topics": [], "data": 1}"#))
        .await;
    assert_eq!(
        report.delivered, 4,
        "a list that names someone is read as it is"
    );
}

#[tokio::test]
async fn a_broadcast_excluding_150_users_skips_all_their_connections() {
    let pairs: Vec<(String, String)> = (0..400)
        .map(|i| (format!("c{i}"), format!("u{}", i % 200)))
        .collect();
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(c, u)| (c.as_str(), u.as_str()))
        .collect();
    let store = store_with(&borrowed).await;
    let excluded: Vec<String> = (0..150).map(|i| format!("\"u{i}\"")).collect();
    let (gateway, sent) = recording_gateway();
    let push = service(store, gateway, config());

    let report = push
        .push(&request(&format!(
            r#"{{"exclude_users":[{}],"data":1}}"#,
            excluded.join(",")
        )))
        .await;

    assert_eq!(report.excluded, 300);
    assert_eq!(report.delivered, 100);
    assert_eq!(sent.lock().expect("lock").len(), 100);
}

#[tokio::test]
async fn a_410_in_the_middle_of_a_fan_out_prunes_exactly_that_connection() {
    let store = store_with(&[
        ("c1", "u"),
        ("c2", "u"),
        ("gone", "u"),
        ("c4", "u"),
        ("c5", "u"),
    ])
    .await;
    subscribe(&store, "gone", &["room:1", "room:2"]).await;
    subscribe(&store, "c1", &["room:1"]).await;
    let mut gateway = MockConnectionGateway::new();
    gateway
        .expect_post()
        .withf(|connection, _| connection.as_str() == "gone")
        .times(1)
        .returning(|_, _| Err(GatewayError::Gone));
    gateway
        .expect_post()
        .withf(|connection, _| connection.as_str() != "gone")
        .times(4)
        .returning(|_, _| Ok(()));
    let push = service(Arc::clone(&store), gateway, config());

    let report = push.push(&request(r#"{"users":["u"],"data":1}"#)).await;

    assert_eq!(report.delivered, 4);
    assert_eq!(report.pruned, 1);
    assert!(report.is_complete(), "a gone connection is not a failure");
    assert_eq!(store.get(&id("gone"), NOW).await.expect("get"), None);
    assert!(
        store
            .subscriptions(&id("gone"))
            .await
            .expect("subs")
            .is_empty()
    );
    for kept in ["c1", "c2", "c4", "c5"] {
        assert!(
            store.get(&id(kept), NOW).await.expect("get").is_some(),
            "{kept}"
        );
    }
    assert_eq!(
        store.subscriptions(&id("c1")).await.expect("subs"),
        [topic("room:1")]
    );
}

#[tokio::test(start_paused = true)]
async fn a_post_throttled_twice_then_accepted_is_delivered_once() {
    let store = store_with(&[("c1", "u")]).await;
    let mut gateway = MockConnectionGateway::new();
    let mut order = Sequence::new();
    gateway
        .expect_post()
        .times(2)
        .in_sequence(&mut order)
        .returning(|_, _| Err(GatewayError::Throttled));
    gateway
        .expect_post()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));
    let push = service(store, gateway, config());

    let report = push.push(&request(r#"{"users":["u"],"data":1}"#)).await;

    assert_eq!(report.delivered, 1);
    assert_eq!(report.retries, 2);
    assert_eq!(report.throttled, 2);
    assert!(report.is_complete());
}

#[tokio::test(start_paused = true)]
async fn an_unavailable_gateway_is_retried_like_a_throttled_one() {
    let store = store_with(&[("c1", "u")]).await;
    let mut gateway = MockConnectionGateway::new();
    let mut order = Sequence::new();
    gateway
        .expect_post()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Err(GatewayError::Unavailable("502 Bad Gateway".into())));
    gateway
        .expect_post()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));
    let push = service(store, gateway, config());

    let report = push.push(&request(r#"{"users":["u"],"data":1}"#)).await;

    assert_eq!(
        (report.delivered, report.retries, report.throttled),
        (1, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_still_throttled_after_the_last_attempt_is_reported_failed() {
    let store = store_with(&[("c1", "u"), ("c2", "u")]).await;
    let mut gateway = MockConnectionGateway::new();
    gateway
        .expect_post()
        .withf(|connection, _| connection.as_str() == "c1")
        .times(4)
        .returning(|_, _| Err(GatewayError::Throttled));
    gateway
        .expect_post()
        .withf(|connection, _| connection.as_str() == "c2")
        .times(1)
        .returning(|_, _| Ok(()));
    let push = service(store, gateway, config());

    let report = push.push(&request(r#"{"users":["u"],"data":1}"#)).await;

    assert_eq!(report.delivered, 1);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].connection, id("c1"));
    assert_eq!(report.failed[0].reason, FailureReason::Throttled);
    assert_eq!(report.failed[0].attempts, 4);
    assert!(!report.is_complete());
}

#[tokio::test(start_paused = true)]
async fn retries_stop_when_the_time_budget_is_spent() {
    let store = store_with(&[("c1", "u")]).await;
    let mut gateway = MockConnectionGateway::new();
    gateway
        .expect_post()
        .returning(|_, _| Err(GatewayError::Throttled));
    let mut config = config();
    config.retry.max_attempts = 1_000;
    config.retry.budget = Duration::from_millis(500);
    let push = service(store, gateway, config);

    let report = push.push(&request(r#"{"users":["u"],"data":1}"#)).await;

    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].attempts < 1_000);
    assert!(
        report.elapsed <= Duration::from_millis(500),
        "{:?}",
        report.elapsed
    );
}

#[tokio::test]
async fn a_payload_too_large_answer_is_not_retried() {
    let store = store_with(&[("c1", "u")]).await;
    let mut gateway = MockConnectionGateway::new();
    gateway
        .expect_post()
        .times(1)
        .returning(|_, _| Err(GatewayError::PayloadTooLarge));
    let push = service(store, gateway, config());

    let report = push.push(&request(r#"{"users":["u"],"data":1}"#)).await;

    assert_eq!(report.failed[0].reason, FailureReason::PayloadTooLarge);
    assert_eq!(report.failed[0].attempts, 1);
}

#[tokio::test]
async fn a_forbidden_answer_stops_the_push_instead_of_failing_every_connection() {
    let pairs: Vec<(String, String)> = (0..200).map(|i| (format!("c{i}"), "u".into())).collect();
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(c, u)| (c.as_str(), u.as_str()))
        .collect();
    let store = store_with(&borrowed).await;
    let mut gateway = MockConnectionGateway::new();
    gateway
        .expect_post()
        .returning(|_, _| Err(GatewayError::Forbidden("AccessDeniedException".into())));
    let mut config = config();
    config.max_in_flight = 1;
    let push = service(store, gateway, config);

    let report = push.push(&request(r#"{"users":["u"],"data":1}"#)).await;

    assert_eq!(report.failed.len(), 1);
    assert!(matches!(
        report.failed[0].reason,
        FailureReason::Forbidden { .. }
    ));
    assert!(
        report
            .aborted
            .as_deref()
            .expect("aborted")
            .contains("AccessDeniedException")
    );
    assert!(
        report.failed.len() + report.not_attempted < 200,
        "the push went on"
    );
    assert!(!report.is_complete());
}

#[tokio::test(start_paused = true)]
async fn the_in_flight_bound_is_reached_and_never_exceeded() {
    let pairs: Vec<(String, String)> = (0..500)
        .map(|i| (format!("c{i}"), format!("u{i}")))
        .collect();
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(c, u)| (c.as_str(), u.as_str()))
        .collect();
    let store = store_with(&borrowed).await;
    let gateway = Arc::new(CountingGateway::new(Duration::from_millis(20)));
    let mut config = config();
    config.max_in_flight = 32;
    config.page_size = 50;
    let push = PushService::new(store, Arc::clone(&gateway), clock(), config).expect("config");

    let report = push.push(&request(r#"{"data":1}"#)).await;

    assert_eq!(report.delivered, 500);
    assert_eq!(gateway.posts.load(Ordering::SeqCst), 500);
    assert_eq!(gateway.max_in_flight.load(Ordering::SeqCst), 32);
}

#[tokio::test(start_paused = true)]
async fn posts_run_concurrently_so_the_fan_out_takes_about_n_over_c_latencies() {
    let pairs: Vec<(String, String)> = (0..1_000).map(|i| (format!("c{i}"), "u".into())).collect();
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(c, u)| (c.as_str(), u.as_str()))
        .collect();
    let store = store_with(&borrowed).await;
    let gateway = Arc::new(CountingGateway::new(Duration::from_millis(20)));
    let mut config = config();
    config.max_in_flight = 100;
    config.page_size = 100;
    let push = PushService::new(store, Arc::clone(&gateway), clock(), config).expect("config");

    let report = push.push(&request(r#"{"users":["u"],"data":1}"#)).await;

    // ceil(1000 / 100) x 20 ms on the paused (virtual) clock: any serialisation would
    // multiply it.
    assert_eq!(report.delivered, 1_000);
    assert!(
        report.elapsed >= Duration::from_millis(200),
        "{:?}",
        report.elapsed
    );
    assert!(
        report.elapsed <= Duration::from_millis(240),
        "{:?}",
        report.elapsed
    );
}

#[tokio::test]
async fn a_failed_audience_read_is_reported_and_makes_the_push_incomplete() {
    let mut store = MockConnectionStore::new();
    store
        .expect_page()
        .withf(|source, _, _, _| matches!(source, Source::User(u) if u.as_str() == "ok"))
        .returning(|_, _, _, _| {
            Ok(wspush_ports::Page {
                connections: vec![Connection::open(id("c1"), user("ok"), NOW)],
                next: None,
            })
        });
    store
        .expect_page()
        .withf(|source, _, _, _| matches!(source, Source::User(u) if u.as_str() == "broken"))
        .returning(|_, _, _, _| Err(StoreError::Unavailable("connection reset".into())));
    let (gateway, sent) = recording_gateway();
    let push = service(Arc::new(store), gateway, config());

    let report = push
        .push(&request(r#"{"users":["ok","broken"],"data":1}"#))
        .await;

    assert_eq!(recipients(&sent), ["c1"]);
    assert_eq!(report.read_errors.len(), 1);
    assert!(
        report.read_errors[0].contains("connection reset"),
        "{:?}",
        report.read_errors
    );
    assert!(!report.is_complete());
}

/// That nothing is then sent is asserted through the pusher handler
/// (`a_direct_invoke_with_a_typo_is_rejected_not_broadcast` in `wspush-handlers`).
#[test]
fn a_typoed_field_is_rejected_rather_than_read_as_a_broadcast() {
    let parsed = NotificationRequest::parse(r#"{"user": ["ana"], "data": {"secret": 1}}"#);

    assert!(matches!(parsed, Err(RequestError::UnknownField { field }) if field == "user"));
}

#[tokio::test]
async fn the_store_is_asked_for_pages_of_the_configured_size() {
    let mut store = MockConnectionStore::new();
    store
        .expect_page()
        .with(eq(Source::User(user("u"))), eq(None), eq(3), eq(NOW))
        .times(1)
        .returning(|_, _, _, _| Ok(wspush_ports::Page::default()));
    let (gateway, _) = recording_gateway();
    let push = service(Arc::new(store), gateway, config());

    let report = push.push(&request(r#"{"users":["u"],"data":1}"#)).await;

    assert_eq!(report.delivered, 0);
    assert!(report.is_complete());
}

#[test]
fn a_config_with_zero_in_flight_is_refused() {
    let result = PushService::new(
        Arc::new(wspush_adapters::MemoryStore::new()),
        Arc::new(MockConnectionGateway::new()),
        clock(),
        PushConfig {
            max_in_flight: 0,
            ..PushConfig::default()
        },
    );

    assert_eq!(
        result.err().map(|e| e.to_string()),
        Some("push setting `max_in_flight` must be at least 1".to_owned())
    );
}

#[tokio::test]
async fn the_report_serializes_with_failure_kinds_and_milliseconds() {
    let store = store_with(&[("c1", "u")]).await;
    let mut gateway = MockConnectionGateway::new();
    gateway
        .expect_post()
        .returning(|_, _| Err(GatewayError::PayloadTooLarge));
    let push = service(store, gateway, config());

    let report = push.push(&request(r#"{"users":["u"],"data":1}"#)).await;
    let json: HashMap<String, serde_json::Value> =
        serde_json::from_value(serde_json::to_value(&report).expect("serialize")).expect("map");

    assert_eq!(
        json["failed"],
        serde_json::json!([{"connection": "c1", "reason": {"kind": "payload_too_large"}, "attempts": 1}])
    );
    assert!(json.contains_key("elapsed_ms"));
}

#[tokio::test]
async fn observers_hear_of_every_push_with_its_request_and_report() {
    #[derive(Default)]
    struct Heard(Mutex<Vec<(String, usize)>>);
    impl wspush_ports::PushObserver for Heard {
        fn pushed(&self, request: &NotificationRequest, report: &wspush_ports::PushReport) {
            self.0
                .lock()
                .expect("lock")
                .push((request.payload().to_owned(), report.delivered));
        }
    }
    let store = store_with(&[("a1", "ana"), ("b1", "bob")]).await;
    let (gateway, _sent) = recording_gateway();
    let heard = Arc::new(Heard::default());
    let push = service(store, gateway, config()).with_observer(heard.clone());

    push.push(&request(r#"{"users": ["ana"], "data": 1}"#))
        .await;
    push.push(&request(r#"{"data": 2}"#)).await;

    assert_eq!(
        *heard.0.lock().expect("lock"),
        [("1".to_owned(), 1), ("2".to_owned(), 2)]
    );
}

/// `count` connections `c0`, `c1`, ... of users `u0`, `u1`, ...
async fn many_connections(count: usize) -> Arc<wspush_adapters::MemoryStore> {
    let pairs: Vec<(String, String)> = (0..count)
        .map(|index| (format!("c{index}"), format!("u{index}")))
        .collect();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(connection, user)| (connection.as_str(), user.as_str()))
        .collect();
    store_with(&refs).await
}

fn paced(posts_per_second: u32) -> PushConfig {
    PushConfig {
        max_in_flight: 64,
        page_size: 50,
        max_posts_per_second: Some(posts_per_second),
        ..config()
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_pushes_of_one_service_share_its_post_rate() {
    let store = many_connections(300).await;
    let (gateway, sent) = recording_gateway();
    let push = service(store, gateway, paced(100));
    let started = tokio::time::Instant::now();

    let (one, two) = (request(r#"{"data":1}"#), request(r#"{"data":2}"#));
    let (first, second) = tokio::join!(push.push(&one), push.push(&two));

    // 600 posts at 100/s, the first 5 (50 ms of burst) at once: 5.95 s, not 2.95 s each.
    let elapsed = started.elapsed();
    assert_eq!(first.delivered + second.delivered, 600);
    assert_eq!(sent.lock().expect("lock").len(), 600);
    assert!(
        elapsed >= Duration::from_millis(5_900) && elapsed < Duration::from_millis(6_500),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn throttled_answers_slow_the_whole_fan_out_where_server_errors_do_not() {
    /// Answers each connection's first post with `first`, later ones with 200.
    fn failing_once(first: fn() -> GatewayError) -> MockConnectionGateway {
        let seen = Mutex::new(std::collections::HashSet::new());
        let mut gateway = MockConnectionGateway::new();
        gateway.expect_post().returning(move |connection, _| {
            if seen.lock().expect("lock").insert(connection.to_string()) {
                Err(first())
            } else {
                Ok(())
            }
        });
        gateway
    }
    let mut elapsed = Vec::new();
    for first in [
        (|| GatewayError::Unavailable("boom".into())) as fn() -> GatewayError,
        || GatewayError::Throttled,
    ] {
        let config = PushConfig {
            // Long enough that the slowed posts are still retried: this test is about pace.
            retry: wspush_domain::RetryPolicy {
                budget: Duration::from_secs(600),
                ..config().retry
            },
            ..paced(1_000)
        };
        let push = service(many_connections(200).await, failing_once(first), config);
        let started = tokio::time::Instant::now();

        let report = push.push(&request(r#"{"data":1}"#)).await;

        assert_eq!(report.delivered, 200);
        assert_eq!(report.retries, 200);
        elapsed.push(started.elapsed());
    }

    // The same 400 posts either way; only 429s (here from every connection: the account's
    // throttle) cut the shared rate.
    assert!(elapsed[1] > elapsed[0] * 2, "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn a_few_slow_connections_are_retried_alone_and_slow_nobody_else() {
    /// Answers 429 to every post to the connections `slow` names (a full client buffer),
    /// and notes when it last delivered to another.
    fn slow_clients(
        slow: fn(&str) -> bool,
        last_delivery: Arc<Mutex<tokio::time::Instant>>,
    ) -> MockConnectionGateway {
        let mut gateway = MockConnectionGateway::new();
        gateway.expect_post().returning(move |connection, _| {
            if slow(connection.as_str()) {
                return Err(GatewayError::Throttled);
            }
            *last_delivery.lock().expect("lock") = tokio::time::Instant::now();
            Ok(())
        });
        gateway
    }
    let mut delivered_within = Vec::new();
    for slow in [
        (|_: &str| false) as fn(&str) -> bool,
        // 4 of 200 connections, 2%.
        |connection: &str| ["c7", "c50", "c120", "c199"].contains(&connection),
    ] {
        let started = tokio::time::Instant::now();
        let last_delivery = Arc::new(Mutex::new(started));
        let gateway = slow_clients(slow, Arc::clone(&last_delivery));
        let push = service(many_connections(200).await, gateway, paced(1_000));

        let report = push.push(&request(r#"{"data":1}"#)).await;

        let slow_ones = (0..200).filter(|n| slow(&format!("c{n}"))).count();
        assert_eq!(report.delivered, 200 - slow_ones);
        assert_eq!(
            report.failed.len(),
            slow_ones,
            "reported failed, to be re-enqueued"
        );
        assert!(
            report
                .failed
                .iter()
                .all(|failure| failure.reason == FailureReason::Throttled),
            "{:?}",
            report.failed
        );
        delivered_within.push(*last_delivery.lock().expect("lock") - started);
    }
    // The slow ones' retries wait on their own backoff; the others go at the full rate, so
    // the last of them is delivered when it would be without the slow ones (it was 1.35
    // times later when every 429 cut the shared rate).
    assert!(
        delivered_within[1] <= delivered_within[0] * 11 / 10,
        "{delivered_within:?}: the shared rate was cut"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_clients_hold_the_push_only_for_the_tail_grace() {
    // 4 of 200 connections answer 429 to every post; the retry policy would let each of
    // them retry for up to 2.5 s (backoff ceilings 100, 200, 400, 800 and 1,000 ms).
    let slow = |connection: &str| ["c3", "c60", "c130", "c198"].contains(&connection);
    let last_delivery = Arc::new(Mutex::new(tokio::time::Instant::now()));
    let mut gateway = MockConnectionGateway::new();
    let noted = Arc::clone(&last_delivery);
    gateway.expect_post().returning(move |connection, _| {
        if slow(connection.as_str()) {
            return Err(GatewayError::Throttled);
        }
        *noted.lock().expect("lock") = tokio::time::Instant::now();
        Ok(())
    });
    let mut config = paced(1_000);
    config.retry = RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        budget: Duration::from_secs(5),
    };
    let started = tokio::time::Instant::now();
    let push = service(many_connections(200).await, gateway, config);

    let report = push.push(&request(r#"{"data":1}"#)).await;

    let fan_out = *last_delivery.lock().expect("lock") - started;
    assert_eq!(report.delivered, 196);
    assert_eq!(report.failed.len(), 4, "reported failed, to be re-enqueued");
    assert!(
        report
            .failed
            .iter()
            .all(|failure| failure.reason == FailureReason::Throttled
                && failure.attempts < config.retry.max_attempts),
        "{:?}",
        report.failed
    );
    // The push ends within the grace after the last other delivery (the slow ones' own
    // first posts are answered at about the same time).
    let grace = config.retry.slow_tail_grace(fan_out);
    assert!(
        report.elapsed <= fan_out + grace + Duration::from_millis(20),
        "{:?} after a fan-out of {fan_out:?} and a grace of {grace:?}",
        report.elapsed
    );
}
