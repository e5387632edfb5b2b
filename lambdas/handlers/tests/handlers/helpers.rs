use std::sync::{Arc, Mutex};

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use wspush_adapters::{ManualClock, MemoryStore};
use wspush_domain::{Connection, ConnectionId, ExternalId, Timestamp, UserId};
use wspush_ports::{ConnectionStore, MockConnectionGateway, PushConfig, PushService};

/// The fixtures' `requestContext.connectedAt`.
pub const NOW: Timestamp = Timestamp::from_unix_millis(1_795_334_400_000);
/// The fixtures' connection.
pub const CONNECTION: &str = "L0SM9cOFvHcCIhw=";

pub fn websocket_event(json: &str) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_str(json).expect("fixture parses as a WebSocket event")
}

pub fn with_body(json: &str, body: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut event = websocket_event(json);
    event.body = Some(body.to_owned());
    event
}

pub fn body(response: &ApiGatewayProxyResponse) -> String {
    match &response.body {
        Some(Body::Text(text)) => text.clone(),
        other => panic!("expected a text body, got {other:?}"),
    }
}

pub fn body_json(response: &ApiGatewayProxyResponse) -> serde_json::Value {
    serde_json::from_str(&body(response)).expect("a JSON body")
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at(NOW))
}

pub fn id(value: &str) -> ConnectionId {
    ConnectionId::parse(value).expect("valid")
}

pub fn topic(value: &str) -> ExternalId {
    ExternalId::parse(value).expect("valid")
}

pub async fn store_with(connections: &[(&str, &str)]) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    for (connection, user) in connections {
        store
            .save(&Connection::open(
                id(connection),
                UserId::parse(*user).expect("valid"),
                NOW,
            ))
            .await
            .expect("save");
    }
    store
}

/// The topics the fixtures' connection is subscribed to.
pub async fn held(store: &MemoryStore) -> Vec<ExternalId> {
    store
        .subscriptions(&id(CONNECTION))
        .await
        .expect("subscriptions read")
}

/// (connection, payload) of each accepted post.
pub type Sent = Arc<Mutex<Vec<(String, String)>>>;

/// A push service over `store` whose mock gateway accepts every post and records it.
pub fn pusher(store: Arc<MemoryStore>) -> (PushService<MemoryStore, MockConnectionGateway>, Sent) {
    let sent: Sent = Arc::default();
    let log = Arc::clone(&sent);
    let mut gateway = MockConnectionGateway::new();
    gateway.expect_post().returning(move |connection, payload| {
        log.lock().expect("lock").push((
            connection.to_string(),
            String::from_utf8(payload.to_vec()).expect("utf-8"),
        ));
        Ok(())
    });
    let service =
        PushService::new(store, Arc::new(gateway), clock(), PushConfig::default()).expect("config");
    (service, sent)
}
