use wspush_domain::SubscriptionPolicy;
use wspush_handlers::handle_route;
use wspush_ports::{ConnectionStore, SubscriptionService};

use crate::helpers::*;

const SUBSCRIBE: &str = include_str!("../fixtures/subscribe.json");

async fn service_with(
    policy: SubscriptionPolicy,
) -> (
    SubscriptionService<wspush_adapters::MemoryStore>,
    std::sync::Arc<wspush_adapters::MemoryStore>,
) {
    let store = store_with(&[(CONNECTION, "u-1")]).await;
    (
        SubscriptionService::new(store.clone(), clock(), policy),
        store,
    )
}

#[tokio::test]
async fn subscribe_replies_with_every_topic_held() {
    let (service, store) = service_with(SubscriptionPolicy::default()).await;

    let response = handle_route(&websocket_event(SUBSCRIBE), &service).await;

    assert_eq!(response.status_code, 200);
    assert_eq!(
        body_json(&response),
        serde_json::json!({"ok": true, "action": "subscribe", "topics": ["room:42", "ticker:AAPL"]})
    );
    assert_eq!(held(&store).await.len(), 2);
}

#[tokio::test]
async fn unsubscribe_removes_the_named_topics() {
    let (service, store) = service_with(SubscriptionPolicy::default()).await;
    handle_route(&websocket_event(SUBSCRIBE), &service).await;

    let response = handle_route(
        &with_body(
            SUBSCRIBE,
            r#"{"action":"unsubscribe","topics":["room:42"]}"#,
        ),
        &service,
    )
    .await;

    assert_eq!(response.status_code, 200);
    assert_eq!(held(&store).await, [topic("ticker:AAPL")]);
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_an_error_reply() {
    let (service, _) = service_with(SubscriptionPolicy::default()).await;

    let response = handle_route(&with_body(SUBSCRIBE, "subscribe me"), &service).await;

    assert_eq!(response.status_code, 400);
    let reply = body_json(&response);
    assert_eq!(reply["ok"], false);
    assert!(
        reply["error"]
            .as_str()
            .expect("error")
            .starts_with("invalid message")
    );
}

#[tokio::test]
async fn an_unknown_field_in_the_body_is_named_in_the_reply() {
    let (service, _) = service_with(SubscriptionPolicy::default()).await;

    let response = handle_route(
        &with_body(SUBSCRIBE, r#"{"action":"subscribe","topic":["room:1"]}"#),
        &service,
    )
    .await;

    assert_eq!(response.status_code, 400);
    assert!(body(&response).contains("unknown field `topic`"));
}

#[tokio::test]
async fn an_invalid_topic_is_named_with_its_position() {
    let (service, store) = service_with(SubscriptionPolicy::default()).await;

    let response = handle_route(
        &with_body(
            SUBSCRIBE,
            r#"{"action":"subscribe","topics":["room:1","bad topic"]}"#,
        ),
        &service,
    )
    .await;

    assert_eq!(response.status_code, 400);
    assert!(body(&response).contains("field `topics[1]`: external ID must not contain ' '"));
    assert!(held(&store).await.is_empty());
}

#[tokio::test]
async fn an_empty_topic_list_is_an_error() {
    let (service, _) = service_with(SubscriptionPolicy::default()).await;

    let response = handle_route(
        &with_body(SUBSCRIBE, r#"{"action":"subscribe","topics":[]}"#),
        &service,
    )
    .await;

    assert_eq!(response.status_code, 400);
}

#[tokio::test]
async fn an_unknown_action_is_an_error() {
    let (service, _) = service_with(SubscriptionPolicy::default()).await;

    let response = handle_route(
        &with_body(SUBSCRIBE, r#"{"action":"publish","topics":["room:1"]}"#),
        &service,
    )
    .await;

    assert_eq!(response.status_code, 400);
    assert!(body(&response).contains("unknown action `publish`"));
}

#[tokio::test]
async fn another_users_channel_is_denied_with_a_403_reply_and_nothing_written() {
    let (service, store) = service_with(SubscriptionPolicy::default()).await;

    let response = handle_route(
        &with_body(SUBSCRIBE, r#"{"action":"subscribe","topics":["user:u-2"]}"#),
        &service,
    )
    .await;

    assert_eq!(response.status_code, 403);
    assert_eq!(
        body_json(&response)["error"],
        "topic `user:u-2` is another user's own channel"
    );
    assert!(held(&store).await.is_empty());
}

#[tokio::test]
async fn a_topic_outside_the_allowed_namespaces_is_denied() {
    let (service, _) =
        service_with(SubscriptionPolicy::default().with_allowed_namespaces(["room"])).await;

    let response = handle_route(&websocket_event(SUBSCRIBE), &service).await;

    assert_eq!(response.status_code, 403);
    assert!(body(&response).contains("ticker:AAPL"));
}

#[tokio::test]
async fn the_subscription_limit_is_enforced() {
    let (service, _) =
        service_with(SubscriptionPolicy::default().with_max_subscriptions_per_connection(1)).await;

    let response = handle_route(&websocket_event(SUBSCRIBE), &service).await;

    assert_eq!(response.status_code, 403);
    assert!(body(&response).contains("at most 1 subscriptions"));
}

#[tokio::test]
async fn a_message_from_a_connection_the_store_does_not_know_gets_a_410_reply() {
    let store = store_with(&[]).await;
    let service = SubscriptionService::new(store, clock(), SubscriptionPolicy::default());

    let response = handle_route(&websocket_event(SUBSCRIBE), &service).await;

    assert_eq!(response.status_code, 410);
    assert!(body(&response).contains("is not connected"));
}

#[tokio::test]
async fn too_many_topics_in_one_message_are_denied() {
    let (service, _) =
        service_with(SubscriptionPolicy::default().with_max_topics_per_message(1)).await;

    let response = handle_route(&websocket_event(SUBSCRIBE), &service).await;

    assert_eq!(response.status_code, 403);
    assert_eq!(
        body_json(&response)["error"],
        "a message may name at most 1 topics, got 2"
    );
}

#[tokio::test]
async fn a_topic_the_connections_token_does_not_grant_is_denied_and_nothing_written() {
    let store = std::sync::Arc::new(wspush_adapters::MemoryStore::new());
    let grants = wspush_domain::TopicGrants::parse(["room:*"]).expect("valid");
    let connection = wspush_domain::Connection::open(
        id(CONNECTION),
        wspush_domain::UserId::parse("u-1").expect("valid"),
        NOW,
    )
    .with_grants(Some(grants));
    store.save(&connection).await.expect("save");
    let service = SubscriptionService::new(store.clone(), clock(), SubscriptionPolicy::default());

    // The fixture asks for room:42 (granted) and ticker:AAPL (not granted).
    let response = handle_route(&websocket_event(SUBSCRIBE), &service).await;

    assert_eq!(response.status_code, 403);
    assert_eq!(
        body_json(&response)["error"],
        "topic `ticker:AAPL` is not granted to the connection (by its token or authorizer)"
    );
    assert!(held(&store).await.is_empty());
}

#[tokio::test]
async fn a_bad_since_or_since_on_unsubscribe_is_a_400_naming_the_field_and_writes_nothing() {
    let (service, store) = service_with(SubscriptionPolicy::default()).await;
    for (body, expected) in [
        (
            r#"{"action":"subscribe","topics":["room:42"],"since":{"room:42":{"seq":-1,"epoch":"e"}}}"#,
            "field `since[\"room:42\"].seq` must be an integer of at least 0",
        ),
        (
            r#"{"action":"subscribe","topics":["room:42"],"since":{"room:7":{"seq":1,"epoch":"e"}}}"#,
            "field `since[\"room:7\"]` names a stream this message does not subscribe to",
        ),
        (
            r#"{"action":"subscribe","topics":["room:42"],"since":"yesterday"}"#,
            "field `since` must be an object of positions by stream, or null",
        ),
        (
            r#"{"action":"unsubscribe","topics":["room:42"],"since":{}}"#,
            "field `since` applies to subscribe only",
        ),
    ] {
        let response = handle_route(&with_body(SUBSCRIBE, body), &service).await;

        assert_eq!(response.status_code, 400, "{body}");
        assert_eq!(body_json(&response)["error"], expected, "{body}");
    }
    assert!(held(&store).await.is_empty());
}

#[tokio::test]
async fn a_since_without_history_subscribes_and_reports_every_stream_as_a_gap() {
    let (service, store) = service_with(SubscriptionPolicy::default()).await;

    let response = handle_route(
        &with_body(
            SUBSCRIBE,
            r#"{"action":"subscribe","topics":["room:42"],"since":{"room:42":{"seq":3,"epoch":"e"}}}"#,
        ),
        &service,
    )
    .await;

    assert_eq!(response.status_code, 200);
    assert_eq!(
        body_json(&response),
        serde_json::json!({"ok": true, "action": "subscribe", "topics": ["room:42"], "recovered": {}, "gaps": ["room:42"]})
    );
    assert_eq!(held(&store).await, [topic("room:42")]);
}

#[tokio::test]
async fn a_message_id_is_echoed_in_the_reply_and_a_bad_one_is_refused() {
    let (service, _) = service_with(SubscriptionPolicy::default()).await;

    let ok = handle_route(
        &with_body(
            SUBSCRIBE,
            r#"{"action":"subscribe","topics":["room:1"],"id":"7"}"#,
        ),
        &service,
    )
    .await;
    let refused = handle_route(
        &with_body(
            SUBSCRIBE,
            r#"{"action":"subscribe","topics":["a b"],"id":"8"}"#,
        ),
        &service,
    )
    .await;
    let bad_id = handle_route(
        &with_body(
            SUBSCRIBE,
            r#"{"action":"subscribe","topics":["room:1"],"id":""}"#,
        ),
        &service,
    )
    .await;

    assert_eq!(body_json(&ok)["id"], "7");
    assert_eq!(body_json(&refused)["id"], "8");
    assert_eq!(body_json(&refused)["ok"], false);
    assert_eq!(bad_id.status_code, 400);
    assert_eq!(
        body_json(&bad_id)["error"],
        "field `id` must be 1 to 64 visible ASCII characters"
    );
}

#[tokio::test]
async fn a_presence_reply_of_long_user_ids_stays_a_message_api_gateway_delivers() {
    let (service, store) = service_with(SubscriptionPolicy::default()).await;
    let mut publisher = wspush_ports::MockNotificationPublisher::new();
    publisher
        .expect_publish_batch()
        .returning(|requests| requests.iter().map(|_| Ok(String::new())).collect());
    let presence = wspush_ports::Presence::new(
        wspush_domain::PresencePolicy::new(["room"]).expect("valid"),
        store.clone(),
        std::sync::Arc::new(publisher),
    );
    let service = service.with_presence(presence);
    let room = [topic("room:1")];
    for n in 0..600 {
        // 256 bytes each, the longest a user ID may be.
        let user = wspush_domain::UserId::parse(format!("{n:0>256}")).expect("valid");
        let connection = wspush_domain::Connection::open(id(&format!("c{n}")), user, NOW);
        store.save(&connection).await.expect("save");
        store
            .subscribe(&connection, &room, NOW)
            .await
            .expect("subscribe");
    }
    let fixture = store
        .get(&id(CONNECTION), NOW)
        .await
        .expect("read")
        .expect("saved");
    store
        .subscribe(&fixture, &room, NOW)
        .await
        .expect("subscribe");

    let response = handle_route(
        &with_body(
            SUBSCRIBE,
            r#"{"action":"presence","topic":"room:1","limit":1000}"#,
        ),
        &service,
    )
    .await;

    assert_eq!(response.status_code, 200);
    let text = body(&response);
    assert!(text.len() < 128 * 1024, "{} bytes", text.len());
    let reply: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(reply["total"], 601);
    assert_eq!(reply["truncated"], true);
    let listed = reply["users"].as_array().expect("users").len();
    assert!((300..601).contains(&listed), "{listed} listed");
}
