//! The `@connections` management API, the notification intake and the demo page.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use wspush_domain::limits::MAX_PAYLOAD_BYTES;
use wspush_domain::{
    ConnectionId, ControlRequest, ExternalId, NotificationRequest, is_control_request,
};
use wspush_handlers::PusherError;
use wspush_handlers::pusher::deliver_text;

use crate::faults::Injected;
use crate::registry::Outbound;
use crate::state::AppState;

/// An error as API Gateway answers it: the code in `x-amzn-ErrorType`, a JSON message.
fn api_error(status: StatusCode, code: &'static str, message: Option<&str>) -> Response {
    let mut response = (status, json!({ "message": message }).to_string()).into_response();
    response
        .headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(code));
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn gone() -> Response {
    api_error(StatusCode::GONE, "GoneException", None)
}

/// `POST /{stage}/@connections/{id}`: the body goes to the socket as one text frame.
pub async fn post_to_connection(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if body.len() > MAX_PAYLOAD_BYTES {
        return api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            Some("Request entity too large"),
        );
    }
    match state.faults.apply(&id).await {
        Some(Injected::Throttled) => {
            return api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "LimitExceededException",
                Some("Rate exceeded"),
            );
        }
        Some(Injected::ServerError) => {
            return api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
                Some("Internal server error"),
            );
        }
        None => {}
    }
    let Some(live) = state.registry.get(&id) else {
        if state.virtuals.receive(&id) {
            return StatusCode::OK.into_response();
        }
        return gone();
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    if live.tx.send(Outbound::Text(text)).is_err() {
        return gone();
    }
    StatusCode::OK.into_response()
}

/// `GET /{stage}/@connections/{id}`.
pub async fn get_connection(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let Some(live) = state.registry.get(&id) else {
        if state.virtuals.contains(&id) {
            let body = json!({"identity": {"sourceIp": "127.0.0.1"}, "virtual": true});
            return (StatusCode::OK, body.to_string()).into_response();
        }
        return gone();
    };
    let last_active = live
        .last_active_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    let body = json!({
        "connectedAt": iso8601(live.connected_at_ms),
        "lastActiveAt": iso8601(last_active),
        "identity": {"sourceIp": live.source_ip, "userAgent": live.user_agent},
    });
    (StatusCode::OK, body.to_string()).into_response()
}

/// `DELETE /{stage}/@connections/{id}`: closes the socket, which fires `$disconnect`.
pub async fn delete_connection(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    match state.registry.get(&id) {
        Some(live)
            if live
                .tx
                .send(Outbound::Close(1000, "Connection deleted"))
                .is_ok() =>
        {
            StatusCode::NO_CONTENT.into_response()
        }
        None if state.virtuals.remove(&id) => StatusCode::NO_CONTENT.into_response(),
        _ => gone(),
    }
}

/// `GET /_local/connections`: the IDs of the open sockets, so that a test or a developer can
/// drop one (`DELETE @connections/{id}`) as API Gateway would.
pub async fn open_connections(State(state): State<Arc<AppState>>) -> Response {
    let mut ids = state.registry.ids();
    ids.sort();
    Json(json!({"connections": ids})).into_response()
}

/// The body of `PUT /_local/virtual-connections`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualIds {
    ids: Vec<String>,
}

/// `PUT /_local/virtual-connections`: replaces the virtual connections (see
/// [`crate::virtuals`]) and answers with their (zeroed) tally; 400 names an invalid ID.
pub async fn put_virtual_connections(
    State(state): State<Arc<AppState>>,
    body: Result<Json<VirtualIds>, JsonRejection>,
) -> Response {
    let ids = match body {
        Ok(Json(VirtualIds { ids })) => ids,
        Err(rejection) => {
            return (
                StatusCode::BAD_REQUEST,
                json!({"error": rejection.body_text()}).to_string(),
            )
                .into_response();
        }
    };
    if let Some((index, error)) = ids
        .iter()
        .enumerate()
        .find_map(|(index, id)| ConnectionId::parse(id.as_str()).err().map(|e| (index, e)))
    {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": format!("ids[{index}]: {error}")}).to_string(),
        )
            .into_response();
    }
    state.virtuals.replace(ids);
    Json(state.virtuals.tally()).into_response()
}

/// `GET /_local/virtual-connections`: how many messages the virtual connections received.
pub async fn virtual_tally(State(state): State<Arc<AppState>>) -> Response {
    Json(state.virtuals.tally()).into_response()
}

/// `POST /notifications`: runs the pusher handler on a notification request and answers
/// with its report and outcome (400 naming the field for a malformed request, 502 when the
/// delivery failed; a request whose `id` was pushed before answers 200, outcome
/// `duplicate`).
pub async fn notifications(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    // A body that is not UTF-8 gets the parser's words (where the bad byte is), as JSON.
    let Ok(text) = std::str::from_utf8(&body) else {
        let error = NotificationRequest::parse_slice(&body)
            .err()
            .map_or_else(|| "the request is not UTF-8".to_owned(), |e| e.to_string());
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": error, "field": null}).to_string(),
        )
            .into_response();
    };
    if let Some(functions) = &state.functions {
        // Refused here as the pusher would refuse it, so that the caller hears which field.
        let checked = match is_control_request(text) {
            true => ControlRequest::parse(text)
                .map(drop)
                .map_err(PusherError::Control),
            false => NotificationRequest::parse(text)
                .map(drop)
                .map_err(PusherError::Request),
        };
        if let Err(error) = checked {
            return refused(&error);
        }
        let (status, answer) = functions.notify(text).await;
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        return (status, answer.to_string()).into_response();
    }
    match deliver_text(text, &state.pusher, None, None).await {
        Ok(handled) => {
            let status = if handled.succeeded() {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            };
            (status, handled.answer().to_string()).into_response()
        }
        Err(error @ (PusherError::Request(_) | PusherError::Control(_))) => refused(&error),
        Err(error @ PusherError::ControlFailed(_)) => (
            StatusCode::BAD_GATEWAY,
            json!({"error": format!("{:#}", anyhow::Error::new(error))}).to_string(),
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": error.to_string()}).to_string(),
        )
            .into_response(),
    }
}

/// 400 naming the field of a malformed notification or control request.
fn refused(error: &PusherError) -> Response {
    let field = match error {
        PusherError::Request(error) => error.field(),
        PusherError::Control(error) => error.field(),
        _ => None,
    };
    (
        StatusCode::BAD_REQUEST,
        json!({"error": error.to_string(), "field": field}).to_string(),
    )
        .into_response()
}

/// `GET /occupancy?topic=room:42`: how many live connections are subscribed to the topic,
/// and how many distinct users they belong to (read-only, any topic).
pub async fn occupancy(
    State(state): State<Arc<AppState>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let topic = match query
        .get("topic")
        .map(|topic| ExternalId::parse(topic.clone()))
    {
        Some(Ok(topic)) => topic,
        Some(Err(error)) => {
            return (
                StatusCode::BAD_REQUEST,
                json!({"error": format!("parameter `topic`: {error}"), "field": "topic"})
                    .to_string(),
            )
                .into_response();
        }
        None => {
            return (
                StatusCode::BAD_REQUEST,
                json!({"error": "parameter `topic` is required: /occupancy?topic=room:42", "field": "topic"})
                    .to_string(),
            )
                .into_response();
        }
    };
    match wspush_ports::occupancy(Arc::clone(&state.store), &topic, state.clock.now()).await {
        Ok(counted) => (
            StatusCode::OK,
            json!({"topic": topic.as_str(), "connections": counted.connections, "users": counted.users})
                .to_string(),
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": wspush_ports::with_causes(&error)}).to_string(),
        )
            .into_response(),
    }
}

/// `GET /`: the demo page.
pub async fn demo_page(State(state): State<Arc<AppState>>) -> Html<String> {
    Html(
        include_str!("demo.html")
            .replace("{{STAGE}}", &state.config.stage)
            .replace("{{IDENTITY_PARAM}}", &state.config.identity_param),
    )
}

/// `GET /client.js`: `@wspush/client` as built in `clients/js/dist` (the demo page runs on
/// it; CI checks that the built file is the source's).
pub async fn client_library() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        include_str!("../../../clients/js/dist/index.js"),
    )
        .into_response()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch (API Gateway's format).
fn iso8601(millis: u64) -> String {
    let secs = millis / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::iso8601;

    #[test]
    fn timestamps_format_as_api_gateway_does() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_334_400_123), "2026-11-22T08:00:00.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
