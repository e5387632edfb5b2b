//! Lambda events as API Gateway builds them, from what the local gateway sees.

use std::collections::HashMap;

use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::{Map, Value, json};

/// What an event says about its connection.
pub struct EventContext<'a> {
    pub connection_id: &'a str,
    pub stage: &'a str,
    pub domain: &'a str,
    pub source_ip: &'a str,
    pub user_agent: Option<&'a str>,
    pub connected_at_ms: u64,
    pub now_ms: u64,
}

impl EventContext<'_> {
    fn request_context(&self, route_key: &str, event_type: &str) -> Map<String, Value> {
        let request_id = format!("{:016x}", fastrand::u64(..));
        let mut context = Map::new();
        for (key, value) in [
            ("routeKey", json!(route_key)),
            ("eventType", json!(event_type)),
            ("extendedRequestId", json!(request_id)),
            ("requestId", json!(request_id)),
            ("messageDirection", json!("IN")),
            ("stage", json!(self.stage)),
            ("connectedAt", json!(self.connected_at_ms)),
            ("requestTimeEpoch", json!(self.now_ms)),
            (
                "identity",
                json!({"sourceIp": self.source_ip, "userAgent": self.user_agent}),
            ),
            ("domainName", json!(self.domain)),
            ("connectionId", json!(self.connection_id)),
            ("apiId", json!("local")),
        ] {
            context.insert(key.to_owned(), value);
        }
        context
    }
}

fn parse(event: Value) -> ApiGatewayWebsocketProxyRequest {
    // The JSON is built above from plain strings and numbers, in the shape the type reads.
    serde_json::from_value(event).unwrap_or_default()
}

/// The single-value map (the last value of each name, as API Gateway gives it) and the
/// multi-value map (every value, in order) of name-value pairs.
fn maps(pairs: &[(String, String)]) -> (HashMap<&str, &str>, HashMap<&str, Vec<&str>>) {
    let mut single = HashMap::new();
    let mut multi: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, value) in pairs {
        single.insert(name.as_str(), value.as_str());
        multi.entry(name.as_str()).or_default().push(value.as_str());
    }
    (single, multi)
}

/// A `$connect` event from the request's headers and query parameters (every value of a
/// repeated one kept, as API Gateway does); `user` plays the authorizer's `principalId`.
pub fn connect(
    context: &EventContext<'_>,
    headers: &[(String, String)],
    query: &[(String, String)],
    user: Option<&str>,
) -> ApiGatewayWebsocketProxyRequest {
    let mut request_context = context.request_context("$connect", "CONNECT");
    if let Some(user) = user {
        request_context.insert(
            "authorizer".into(),
            json!({"principalId": user, "integrationLatency": 0}),
        );
    }
    let (headers, multi_headers) = maps(headers);
    let (single_query, multi_query) = maps(query);
    parse(json!({
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": if query.is_empty() { Value::Null } else { json!(single_query) },
        "multiValueQueryStringParameters": if query.is_empty() { Value::Null } else { json!(multi_query) },
        "requestContext": request_context,
        "isBase64Encoded": false,
    }))
}

/// A message event for `route_key`.
pub fn message(
    context: &EventContext<'_>,
    route_key: &str,
    body: &str,
) -> ApiGatewayWebsocketProxyRequest {
    let mut request_context = context.request_context(route_key, "MESSAGE");
    request_context.insert(
        "messageId".into(),
        json!(format!("{:016x}", fastrand::u64(..))),
    );
    parse(json!({
        "requestContext": request_context,
        "body": body,
        "isBase64Encoded": false,
    }))
}

/// A `$disconnect` event.
pub fn disconnect(
    context: &EventContext<'_>,
    status: u16,
    reason: &str,
) -> ApiGatewayWebsocketProxyRequest {
    let mut request_context = context.request_context("$disconnect", "DISCONNECT");
    request_context.insert("disconnectStatusCode".into(), json!(status));
    request_context.insert("disconnectReason".into(), json!(reason));
    parse(json!({
        "requestContext": request_context,
        "isBase64Encoded": false,
    }))
}

/// The route a message takes: `$request.body.action` when it names a route, else `$default`.
pub fn route_of(body: &str) -> &'static str {
    let action = serde_json::from_str::<Value>(body).ok().and_then(|value| {
        value
            .get("action")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    match action.as_deref() {
        Some("subscribe") => "subscribe",
        Some("unsubscribe") => "unsubscribe",
        Some("presence") => "presence",
        Some("ping") => "ping",
        _ => "$default",
    }
}
