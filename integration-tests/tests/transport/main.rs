//! The API Gateway transport adapter against a real HTTP server that answers like API
//! Gateway's `@connections` API: SigV4-signed requests on the wire, error codes in the
//! `x-amzn-ErrorType` header or only in the HTTP status, and a server too slow to answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes as Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use wspush_adapters::aws::local_sdk_config;
use wspush_adapters::{ApiGatewayConfig, ApiGatewayGateway};
use wspush_domain::ConnectionId;
use wspush_ports::{ConnectionGateway, GatewayError};

/// A request the server saw: connection ID, body, `Authorization` header.
type Request = (String, Vec<u8>, String);

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Request>>>);

fn api_error(status: StatusCode, code: Option<&str>) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(code) = code {
        headers.insert("x-amzn-ErrorType", code.parse().expect("header"));
    }
    let body = if code.is_some() {
        r#"{"message":"from the test server"}"#
    } else {
        ""
    };
    (status, headers, body).into_response()
}

async fn answer(
    Path(id): Path<String>,
    State(seen): State<Seen>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    seen.0
        .lock()
        .expect("lock")
        .push((id.clone(), body.to_vec(), authorization));
    match id.as_str() {
        "ok" => StatusCode::OK.into_response(),
        "gone" => api_error(StatusCode::GONE, Some("GoneException")),
        "gone-bare" => api_error(StatusCode::GONE, None),
        "throttled" => api_error(
            StatusCode::TOO_MANY_REQUESTS,
            Some("LimitExceededException"),
        ),
        "throttled-bare" => api_error(StatusCode::TOO_MANY_REQUESTS, None),
        "big" => api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("PayloadTooLargeException"),
        ),
        "big-bare" => api_error(StatusCode::PAYLOAD_TOO_LARGE, None),
        "forbidden" => api_error(StatusCode::FORBIDDEN, Some("ForbiddenException")),
        "forbidden-bare" => api_error(StatusCode::FORBIDDEN, None),
        "broken" => api_error(StatusCode::BAD_GATEWAY, None),
        "internal" => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("InternalServerErrorException"),
        ),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK.into_response()
        }
        _ => api_error(StatusCode::IM_A_TEAPOT, None),
    }
}

async fn connection_info(Path(id): Path<String>) -> Response {
    if id != "ok" {
        return api_error(StatusCode::GONE, Some("GoneException"));
    }
    (
        StatusCode::OK,
        r#"{"connectedAt":"2026-11-22T08:00:00.000Z","identity":{"sourceIp":"203.0.113.7","userAgent":"test-agent"},"lastActiveAt":"2026-11-22T08:05:00.000Z"}"#,
    )
        .into_response()
}

async fn serve() -> (ApiGatewayGateway, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/prod/@connections/{id}",
            post(answer).get(connection_info).delete(answer),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = ApiGatewayConfig::new(format!("http://{address}/prod"));
    config.call_timeout = Duration::from_millis(500);
    let sdk = local_sdk_config("us-east-1", "AKIDLOCAL", "local-secret");
    (ApiGatewayGateway::new(&sdk, &config), seen)
}

async fn post_to(gateway: &ApiGatewayGateway, id: &str) -> Result<(), GatewayError> {
    gateway
        .post(
            &ConnectionId::parse(id).expect("valid"),
            Bytes::from_static(br#"{"text":"hi"}"#),
        )
        .await
}

#[tokio::test]
async fn a_post_sends_the_payload_signed_with_sigv4_for_execute_api() {
    let (gateway, seen) = serve().await;

    post_to(&gateway, "ok").await.expect("delivered");

    let seen = seen.0.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "ok");
    assert_eq!(seen[0].1, br#"{"text":"hi"}"#);
    assert!(
        seen[0]
            .2
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDLOCAL/"),
        "{}",
        seen[0].2
    );
    assert!(
        seen[0].2.contains("/us-east-1/execute-api/aws4_request"),
        "{}",
        seen[0].2
    );
}

#[tokio::test]
async fn gone_is_recognised_by_error_code_and_by_bare_http_410() {
    let (gateway, _) = serve().await;

    assert!(matches!(
        post_to(&gateway, "gone").await,
        Err(GatewayError::Gone)
    ));
    assert!(matches!(
        post_to(&gateway, "gone-bare").await,
        Err(GatewayError::Gone)
    ));
}

#[tokio::test]
async fn a_429_is_throttled_and_a_413_is_payload_too_large() {
    let (gateway, _) = serve().await;

    assert!(matches!(
        post_to(&gateway, "throttled").await,
        Err(GatewayError::Throttled)
    ));
    assert!(matches!(
        post_to(&gateway, "throttled-bare").await,
        Err(GatewayError::Throttled)
    ));
    assert!(matches!(
        post_to(&gateway, "big").await,
        Err(GatewayError::PayloadTooLarge)
    ));
    assert!(matches!(
        post_to(&gateway, "big-bare").await,
        Err(GatewayError::PayloadTooLarge)
    ));
}

#[tokio::test]
async fn a_403_is_forbidden_and_keeps_the_cause() {
    let (gateway, _) = serve().await;

    let coded = post_to(&gateway, "forbidden").await;
    let bare = post_to(&gateway, "forbidden-bare").await;

    let Err(GatewayError::Forbidden(cause)) = coded else {
        panic!("expected Forbidden, got {coded:?}");
    };
    assert!(format!("{cause:?}").contains("ForbiddenException"));
    assert!(matches!(bare, Err(GatewayError::Forbidden(_))));
}

#[tokio::test]
async fn a_5xx_is_unavailable_and_is_not_retried_by_the_sdk() {
    let (gateway, seen) = serve().await;

    let bad_gateway = post_to(&gateway, "broken").await;
    let internal = post_to(&gateway, "internal").await;

    assert!(
        matches!(bad_gateway, Err(GatewayError::Unavailable(_))),
        "{bad_gateway:?}"
    );
    assert!(
        matches!(internal, Err(GatewayError::Unavailable(_))),
        "{internal:?}"
    );
    assert_eq!(
        seen.0.lock().expect("lock").len(),
        2,
        "one request each: the push service owns retries"
    );
}

#[tokio::test]
async fn a_post_that_outlasts_the_call_timeout_is_unavailable_instead_of_hanging() {
    let (gateway, _) = serve().await;
    let started = std::time::Instant::now();

    let result = post_to(&gateway, "slow").await;

    assert!(
        matches!(result, Err(GatewayError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_unexpected_status_is_unknown() {
    let (gateway, _) = serve().await;

    assert!(matches!(
        post_to(&gateway, "teapot").await,
        Err(GatewayError::Unknown(_))
    ));
}

#[tokio::test]
async fn get_reads_the_connection_info_and_delete_maps_gone() {
    let (gateway, _) = serve().await;

    let info = gateway
        .get(&ConnectionId::parse("ok").expect("valid"))
        .await
        .expect("info");
    let missing = gateway
        .get(&ConnectionId::parse("nope").expect("valid"))
        .await;
    let deleted = gateway
        .delete(&ConnectionId::parse("gone").expect("valid"))
        .await;

    assert_eq!(info.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(info.user_agent.as_deref(), Some("test-agent"));
    assert_eq!(
        info.last_active_at.unix_millis() - info.connected_at.unix_millis(),
        300_000
    );
    assert!(matches!(missing, Err(GatewayError::Gone)));
    assert!(matches!(deleted, Err(GatewayError::Gone)));
}
