//! What reaches the logs at the default level (INFO): never a token, never a message body,
//! never a value quoted from a malformed request or route body.

use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::json;
use tracing::Level;
use wspush_handlers::{handle_connect, handle_route, handle_sqs};
use wspush_ports::{ConnectionService, SubscriptionService};

use crate::helpers::*;
use crate::tokens::{claims, hs256, hs256_identity, now};

const CONNECT_WITHOUT_IDENTITY: &str = include_str!("../fixtures/connect-without-identity.json");
const SUBSCRIBE: &str = include_str!("../fixtures/subscribe.json");
const BODY_MARKER: &str = "PRIVATE-MESSAGE-BODY-7f3a";
const FIELD_MARKER: &str = "PRIVATE-FIELD-VALUE-19c2";

/// Everything written at INFO and above while the guard lives.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn start(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8")
    }
}

fn assert_clean(logs: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!logs.contains(secret), "the logs hold {secret:?}:\n{logs}");
    }
}

#[tokio::test]
async fn a_connect_logs_neither_a_valid_nor_a_refused_token() {
    let captured = Captured::default();
    let _guard = captured.start();
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());
    let valid = hs256(&claims(json!({})));
    let expired = hs256(&claims(json!({"exp": now() - 600})));

    for (token, status) in [(&valid, 200), (&expired, 401)] {
        let mut event = websocket_event(CONNECT_WITHOUT_IDENTITY);
        let query = format!("token={token}");
        event.query_string_parameters = query.parse().expect("query");
        let response = handle_connect(&event, &service, &hs256_identity()).await;
        assert_eq!(response.status_code, status);
    }

    let logs = captured.text();
    assert!(logs.contains("connected"), "{logs}");
    assert!(logs.contains("the token has expired"), "{logs}");
    // Neither token, nor its signature or claims part on their own.
    let parts: Vec<&str> = valid.split('.').chain(expired.split('.')).skip(1).collect();
    let mut secrets = vec![valid.as_str(), expired.as_str()];
    secrets.extend(parts);
    assert_clean(&logs, &secrets);
}

#[tokio::test]
async fn a_push_logs_neither_the_message_body_nor_values_of_a_malformed_request() {
    let captured = Captured::default();
    let _guard = captured.start();
    let store = store_with(&[("c1", "u-1"), ("c2", "u-2")]).await;
    let (service, sent) = pusher(store);
    let record = |id: &str, body: String| {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.to_owned());
        message.body = Some(body);
        message
    };
    let mut event = SqsEvent::default();
    event.records = vec![
        record(
            "m-1",
            json!({"users": ["u-1"], "data": {"text": BODY_MARKER}}).to_string(),
        ),
        record(
            "m-2",
            json!({"users": FIELD_MARKER, "data": {"text": BODY_MARKER}}).to_string(),
        ),
    ];

    let answer = handle_sqs(event, &service, None)
        .await
        .expect("every failed record has a message ID");

    assert_eq!(sent.lock().expect("lock").len(), 1);
    assert_eq!(answer.batch_item_failures.len(), 1);
    let logs = captured.text();
    assert!(logs.contains("delivery finished"), "{logs}");
    assert!(logs.contains("malformed notification request"), "{logs}");
    assert_clean(&logs, &[BODY_MARKER, FIELD_MARKER]);
}

#[tokio::test]
async fn an_invalid_route_body_is_not_logged() {
    let captured = Captured::default();
    let _guard = captured.start();
    let store = store_with(&[(CONNECTION, "u-1")]).await;
    let service = SubscriptionService::new(store, clock(), Default::default());

    for body in [
        json!({"action": "subscribe", "topics": FIELD_MARKER}).to_string(),
        json!({"action": FIELD_MARKER, "topics": ["room:1"]}).to_string(),
        json!({"action": "subscribe", "topics": [format!("user:{FIELD_MARKER}")]}).to_string(),
    ] {
        let response = handle_route(&with_body(SUBSCRIBE, &body), &service).await;
        assert!(response.status_code >= 400, "{body}");
    }

    let logs = captured.text();
    assert!(logs.contains("invalid route body"), "{logs}");
    assert_clean(&logs, &[FIELD_MARKER]);
}
