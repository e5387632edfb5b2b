//! Hostile input at the handlers: deep nesting, huge arrays, duplicate keys, numbers where
//! strings belong, control characters in IDs. Each gets an answer naming the problem, and
//! nothing is written or sent; none panics.

use serde_json::json;
use wspush_domain::SubscriptionPolicy;
use wspush_handlers::{IdentitySource, handle_connect, handle_invocation, handle_route};
use wspush_ports::{ConnectionService, SubscriptionService};

use crate::helpers::*;

const SUBSCRIBE: &str = include_str!("../fixtures/subscribe.json");
const CONNECT: &str = include_str!("../fixtures/connect.json");
const SQS: &str = include_str!("../fixtures/sqs-batch.json");

/// Each route body gets `status` and an error containing `words`; nothing is subscribed.
#[tokio::test]
async fn hostile_route_bodies_get_an_error_reply_naming_the_problem() {
    let deep = format!(
        r#"{{"action":"subscribe","topics":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let huge = json!({"action": "subscribe", "topics": (0..100_000).map(|i| format!("room:{i}")).collect::<Vec<_>>()}).to_string();
    let cases: [(&str, String, i64, &str); 8] = [
        (
            "deep nesting",
            deep,
            400,
            "invalid type: sequence, expected a string at line 1 column 32",
        ),
        (
            "huge array",
            huge,
            403,
            "a message may name at most 20 topics, got 100000",
        ),
        (
            "duplicate key",
            r#"{"action":"subscribe","topics":["a"],"topics":["b"]}"#.into(),
            400,
            "duplicate field `topics`",
        ),
        (
            "number where a string belongs",
            r#"{"action":"subscribe","topics":[42]}"#.into(),
            400,
            "invalid type: integer `42`, expected a string",
        ),
        (
            "number as the action",
            r#"{"action":1,"topics":["a"]}"#.into(),
            400,
            "invalid type: integer `1`, expected a string",
        ),
        (
            "control character in a topic",
            "{\"action\":\"subscribe\",\"topics\":[\"room\\u0007\"]}".into(),
            400,
            "field `topics[0]`: external ID must not contain '\\u{7}'",
        ),
        (
            "an array, not an object",
            "[]".into(),
            400,
            "invalid message: expected a JSON object",
        ),
        (
            "the struct's fields as an array",
            r#"["subscribe", ["room:1"]]"#.into(),
            400,
            "invalid message: expected a JSON object",
        ),
    ];
    let store = store_with(&[(CONNECTION, "u-1")]).await;
    let service = SubscriptionService::new(store.clone(), clock(), SubscriptionPolicy::default());

    for (case, body, status, words) in cases {
        let response = handle_route(&with_body(SUBSCRIBE, &body), &service).await;

        assert_eq!(response.status_code, status, "{case}");
        let reply = body_json(&response);
        assert_eq!(reply["ok"], false, "{case}");
        let error = reply["error"].as_str().expect("error");
        assert!(error.contains(words), "{case}: {error}");
    }
    assert!(held(&store).await.is_empty());
}

#[tokio::test]
async fn a_route_event_without_a_body_gets_an_error_reply_saying_what_to_send() {
    let store = store_with(&[(CONNECTION, "u-1")]).await;
    let service = SubscriptionService::new(store, clock(), SubscriptionPolicy::default());
    let mut event = websocket_event(SUBSCRIBE);
    event.body = None;

    let response = handle_route(&event, &service).await;

    assert_eq!(response.status_code, 400);
    assert_eq!(
        body_json(&response)["error"],
        r#"the message has no body; send {"action":"subscribe","topics":[...]}"#
    );
}

#[tokio::test]
async fn a_connect_event_with_a_hostile_connection_id_or_identity_is_refused() {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut event: serde_json::Value = serde_json::from_str(CONNECT).expect("json");
        edit(&mut event);
        websocket_event(&event.to_string())
    };
    let cases = [
        (
            "control character in the connection ID",
            with(&|e| e["requestContext"]["connectionId"] = json!("L0SM\u{1b}OFvHcCIhw=")),
            400,
        ),
        (
            "object as the principal",
            with(&|e| e["requestContext"]["authorizer"]["principalId"] = json!({"id": "u-1"})),
            401,
        ),
        (
            "control character in the principal",
            with(&|e| e["requestContext"]["authorizer"]["principalId"] = json!("u-1\u{0}")),
            401,
        ),
        (
            "huge principal",
            with(&|e| {
                e["requestContext"]["authorizer"]["principalId"] = json!("u".repeat(100_000))
            }),
            401,
        ),
    ];

    for (case, event, status) in cases {
        let response = handle_connect(&event, &service, &IdentitySource::default()).await;

        assert_eq!(response.status_code, status, "{case}");
    }
    assert!(store.is_empty());
}

#[test]
fn an_event_of_the_wrong_shape_fails_to_deserialize_naming_the_field() {
    // lambda_runtime deserializes the event before the handler runs and fails the
    // invocation with this error (API Gateway then answers 500).
    let mut event: serde_json::Value = serde_json::from_str(CONNECT).expect("json");
    event["requestContext"]["connectionId"] = json!(12345);

    let error = serde_json::from_value::<
        aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest,
    >(event)
    .expect_err("a number is not a connection ID");

    assert!(
        error
            .to_string()
            .contains("invalid type: integer `12345`, expected a string"),
        "{error}"
    );
}

#[tokio::test]
async fn hostile_pusher_payloads_are_errors_naming_the_problem_and_send_nothing() {
    let (service, sent) = pusher(store_with(&[("c1", "u-1")]).await);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!(
        r#"{{"Records":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut sqs_number_body: serde_json::Value = serde_json::from_str(SQS).expect("json");
    sqs_number_body["Records"][0]["body"] = json!(42);
    let cases = [
        ("deep array", deep, "request must be a JSON object"),
        ("deep Records", deep_object, "unknown field `Records`"),
        (
            "SQS record with a number for a body",
            sqs_number_body.to_string(),
            "unrecognised invocation payload: invalid type: integer `42`, expected a string",
        ),
        (
            "duplicate field",
            r#"{"users":["u-1"],"users":["u-2"],"data":1}"#.into(),
            "field `users` is given more than once",
        ),
        (
            "number where a string belongs",
            r#"{"users":[7],"data":1}"#.into(),
            "field `users` must be",
        ),
    ];

    for (case, payload, words) in cases {
        let error = handle_invocation(&payload, &service, None)
            .await
            .expect_err(case);

        assert!(error.to_string().contains(words), "{case}: {error}");
    }
    assert!(sent.lock().expect("lock").is_empty());
}
