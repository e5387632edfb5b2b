//! The `subscribe` and `unsubscribe` routes.
//!
//! Body: `{"action": "subscribe", "topics": ["room:42"]}` (or `"unsubscribe"`). The reply,
//! sent back to the caller through the route response, is JSON:
//! `{"ok": true, "action": "subscribe", "topics": [...every topic now held...]}` or
//! `{"ok": false, "action": ..., "error": "..."}`. A bad body or a denied topic never crashes
//! the function: it gets an error reply naming the problem.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use serde::Deserialize;
use serde_json::json;
use wspush_domain::ExternalId;
use wspush_ports::{ConnectionStore, SubscribeError, SubscriptionService};

use crate::response::{connection_id, response};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteBody {
    action: String,
    topics: Vec<String>,
}

fn reply(
    status: i64,
    action: Option<&str>,
    error: impl std::fmt::Display,
) -> ApiGatewayProxyResponse {
    let body = json!({"ok": false, "action": action, "error": error.to_string()});
    response(status, body.to_string())
}

/// Handles a `subscribe` or `unsubscribe` message.
pub async fn handle_route<S>(
    event: &ApiGatewayWebsocketProxyRequest,
    service: &SubscriptionService<S>,
) -> ApiGatewayProxyResponse
where
    S: ConnectionStore + ?Sized,
{
    let connection = match connection_id(event.request_context.connection_id.as_deref()) {
        Ok(connection) => connection,
        Err(refusal) => return *refusal,
    };
    let Some(text) = event.body.as_deref() else {
        return reply(
            400,
            None,
            "the message has no body; send {\"action\":\"subscribe\",\"topics\":[...]}",
        );
    };
    let body: RouteBody = match serde_json::from_str(text) {
        Ok(body) => body,
        Err(error) => {
            tracing::info!(%connection, %error, "invalid route body");
            return reply(400, None, format!("invalid message: {error}"));
        }
    };
    let action = body.action.as_str();
    if action != "subscribe" && action != "unsubscribe" {
        return reply(
            400,
            Some(action),
            format!("unknown action `{action}`; expected subscribe or unsubscribe"),
        );
    }
    if body.topics.is_empty() {
        return reply(
            400,
            Some(action),
            "field `topics` must name at least one topic",
        );
    }
    let mut topics = Vec::with_capacity(body.topics.len());
    for (index, topic) in body.topics.into_iter().enumerate() {
        match ExternalId::parse(topic) {
            Ok(topic) => topics.push(topic),
            Err(error) => {
                return reply(
                    400,
                    Some(action),
                    format!("field `topics[{index}]`: {error}"),
                );
            }
        }
    }

    let result = if action == "subscribe" {
        service.subscribe(&connection, &topics).await
    } else {
        service
            .unsubscribe(&connection, &topics)
            .await
            .map(|()| topics)
    };
    match result {
        Ok(topics) => {
            let names: Vec<&str> = topics.iter().map(ExternalId::as_str).collect();
            response(
                200,
                json!({"ok": true, "action": action, "topics": names}).to_string(),
            )
        }
        Err(SubscribeError::Denied(denial)) => {
            tracing::info!(%connection, %denial, "subscription denied");
            reply(403, Some(action), denial)
        }
        Err(error @ SubscribeError::NotConnected(_)) => reply(410, Some(action), error),
        Err(SubscribeError::Store(error)) => {
            tracing::error!(%connection, error = %anyhow::Error::new(error), "the store failed");
            reply(500, Some(action), "internal error; try again")
        }
    }
}
