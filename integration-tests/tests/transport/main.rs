//! Both `@connections` transports (lean and SDK) against a real HTTP server that answers
//! like API Gateway's `@connections` API: SigV4-signed requests on the wire (checked by
//! recomputing the signature, as API Gateway does), error codes in the `x-amzn-ErrorType`
//! header or only in the HTTP status, and a server too slow to answer. Every case runs on
//! both transports: they are one contract.

mod sigv4;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes as Body;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use wspush_adapters::aws::local_sdk_config;
use wspush_adapters::{ApiGatewayConfig, ApiGatewayGateway, Transport};
use wspush_domain::ConnectionId;
use wspush_ports::{ConnectionGateway, GatewayError};

const TRANSPORTS: [Transport; 2] = [Transport::Lean, Transport::Sdk];

/// A request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    /// The path as received (percent-encoded).
    path: String,
    /// The connection ID, decoded.
    id: String,
    headers: HeaderMap,
    body: Vec<u8>,
    authorization: String,
    /// Whether the signature is the one the request's content gives.
    signature_valid: Result<(), String>,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn all(&self) -> Vec<Seen> {
        self.0.lock().expect("lock").clone()
    }
}

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
    method: Method,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    State(log): State<Log>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let signature_valid = sigv4::verify(&method, uri.path(), &headers, &body, "local-secret");
    log.0.lock().expect("lock").push(Seen {
        method: method.clone(),
        path: uri.path().to_owned(),
        id: id.clone(),
        headers: headers.clone(),
        body: body.to_vec(),
        authorization,
        signature_valid,
    });
    if method == Method::GET {
        return connection_info(&id);
    }
    match id.as_str() {
        "ok" | "L0SM9c+OF/vHcCIhw=" => StatusCode::OK.into_response(),
        "gone" => api_error(StatusCode::GONE, Some("GoneException")),
        "gone-bare" => api_error(StatusCode::GONE, None),
        "gone-in-body" => (
            StatusCode::BAD_REQUEST,
            r#"{"__type":"GoneException","message":"gone"}"#,
        )
            .into_response(),
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

fn connection_info(id: &str) -> Response {
    if id != "ok" {
        return api_error(StatusCode::GONE, Some("GoneException"));
    }
    (
        StatusCode::OK,
        r#"{"connectedAt":"2026-11-22T08:00:00.000Z","identity":{"sourceIp":"203.0.113.7","userAgent":"test-agent"},"lastActiveAt":"2026-11-22T08:05:00.000Z"}"#,
    )
        .into_response()
}

async fn serve(transport: Transport) -> (ApiGatewayGateway, Log) {
    let log = Log::default();
    let app = Router::new()
        .route(
            "/prod/@connections/{id}",
            post(answer).get(answer).delete(answer),
        )
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config =
        ApiGatewayConfig::new(format!("http://{address}/prod")).with_transport(transport);
    config.call_timeout = Duration::from_millis(500);
    let sdk = local_sdk_config("us-east-1", "AKIDLOCAL", "local-secret");
    let gateway = ApiGatewayGateway::new(&sdk, &config).expect("set up");
    assert_eq!(gateway.transport(), transport);
    (gateway, log)
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
    for transport in TRANSPORTS {
        let (gateway, log) = serve(transport).await;

        post_to(&gateway, "ok").await.expect("delivered");
        // A real connection ID: `+`, `/` and `=` are percent-encoded in the path, and the
        // signature is over the path as API Gateway reads it.
        post_to(&gateway, "L0SM9c+OF/vHcCIhw=")
            .await
            .unwrap_or_else(|error| panic!("{transport}: {error:?}"));

        let seen = log.all();
        assert_eq!(seen.len(), 2, "{transport}");
        assert_eq!(seen[0].id, "ok");
        assert_eq!(seen[1].id, "L0SM9c+OF/vHcCIhw=");
        for request in &seen {
            assert_eq!(request.method, Method::POST);
            assert_eq!(request.body, br#"{"text":"hi"}"#);
            assert!(
                request
                    .authorization
                    .starts_with("AWS4-HMAC-SHA256 Credential=AKIDLOCAL/"),
                "{transport}: {}",
                request.authorization
            );
            assert!(
                request
                    .authorization
                    .contains("/us-east-1/execute-api/aws4_request"),
                "{transport}: {}",
                request.authorization
            );
            assert_eq!(request.signature_valid, Ok(()), "{transport}");
        }
    }
}

#[tokio::test]
async fn a_signature_made_with_another_secret_is_told_apart() {
    // The check itself can fail: the wrong secret or a changed body does not verify.
    let (gateway, log) = serve(Transport::Lean).await;
    post_to(&gateway, "ok").await.expect("delivered");
    let seen = &log.all()[0];

    let verify =
        |secret| sigv4::verify(&seen.method, &seen.path, &seen.headers, &seen.body, secret);
    let mut tampered = seen.body.clone();
    tampered.push(b' ');

    assert_eq!(verify("local-secret"), Ok(()));
    assert!(verify("another-secret").is_err());
    assert!(
        sigv4::verify(
            &seen.method,
            &seen.path,
            &seen.headers,
            &tampered,
            "local-secret"
        )
        .is_err(),
        "a changed body does not verify"
    );
}

#[tokio::test]
async fn gone_is_recognised_by_error_code_by_bare_http_410_and_by_the_body_code() {
    for transport in TRANSPORTS {
        let (gateway, _) = serve(transport).await;

        for id in ["gone", "gone-bare", "gone-in-body"] {
            let result = post_to(&gateway, id).await;
            assert!(
                matches!(result, Err(GatewayError::Gone)),
                "{transport} {id}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_429_is_throttled_and_a_413_is_payload_too_large() {
    for transport in TRANSPORTS {
        let (gateway, _) = serve(transport).await;

        for id in ["throttled", "throttled-bare"] {
            let result = post_to(&gateway, id).await;
            assert!(
                matches!(result, Err(GatewayError::Throttled)),
                "{transport} {id}: {result:?}"
            );
        }
        for id in ["big", "big-bare"] {
            let result = post_to(&gateway, id).await;
            assert!(
                matches!(result, Err(GatewayError::PayloadTooLarge)),
                "{transport} {id}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_403_is_forbidden_and_keeps_the_cause() {
    for transport in TRANSPORTS {
        let (gateway, _) = serve(transport).await;

        let coded = post_to(&gateway, "forbidden").await;
        let bare = post_to(&gateway, "forbidden-bare").await;

        let Err(GatewayError::Forbidden(cause)) = coded else {
            panic!("{transport}: expected Forbidden, got {coded:?}");
        };
        assert!(
            format!("{cause:?}").contains("ForbiddenException"),
            "{transport}: {cause:?}"
        );
        assert!(
            matches!(bare, Err(GatewayError::Forbidden(_))),
            "{transport}: {bare:?}"
        );
    }
}

#[tokio::test]
async fn a_5xx_is_unavailable_and_is_not_retried_by_the_transport() {
    for transport in TRANSPORTS {
        let (gateway, log) = serve(transport).await;

        let bad_gateway = post_to(&gateway, "broken").await;
        let internal = post_to(&gateway, "internal").await;

        assert!(
            matches!(bad_gateway, Err(GatewayError::Unavailable(_))),
            "{transport}: {bad_gateway:?}"
        );
        assert!(
            matches!(internal, Err(GatewayError::Unavailable(_))),
            "{transport}: {internal:?}"
        );
        assert_eq!(
            log.all().len(),
            2,
            "{transport}: one request each: the push service owns retries"
        );
    }
}

#[tokio::test]
async fn a_post_that_outlasts_the_call_timeout_is_unavailable_instead_of_hanging() {
    for transport in TRANSPORTS {
        let (gateway, _) = serve(transport).await;
        let started = std::time::Instant::now();

        let result = post_to(&gateway, "slow").await;

        assert!(
            matches!(result, Err(GatewayError::Unavailable(_))),
            "{transport}: {result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{transport}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_closed_port_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    for transport in TRANSPORTS {
        let config =
            ApiGatewayConfig::new(format!("http://{address}/prod")).with_transport(transport);
        let sdk = local_sdk_config("us-east-1", "AKIDLOCAL", "local-secret");
        let gateway = ApiGatewayGateway::new(&sdk, &config).expect("set up");

        let result = post_to(&gateway, "ok").await;

        assert!(
            matches!(result, Err(GatewayError::Unavailable(_))),
            "{transport}: {result:?}"
        );
    }
}

#[tokio::test]
async fn an_unexpected_status_is_unknown() {
    for transport in TRANSPORTS {
        let (gateway, _) = serve(transport).await;

        let result = post_to(&gateway, "teapot").await;

        assert!(
            matches!(result, Err(GatewayError::Unknown(_))),
            "{transport}: {result:?}"
        );
    }
}

#[tokio::test]
async fn get_reads_the_connection_info_and_delete_maps_gone() {
    for transport in TRANSPORTS {
        let (gateway, log) = serve(transport).await;

        let info = gateway
            .get(&ConnectionId::parse("ok").expect("valid"))
            .await
            .unwrap_or_else(|error| panic!("{transport}: {error:?}"));
        let missing = gateway
            .get(&ConnectionId::parse("nope").expect("valid"))
            .await;
        let deleted = gateway
            .delete(&ConnectionId::parse("gone").expect("valid"))
            .await;
        let closed = gateway
            .delete(&ConnectionId::parse("ok").expect("valid"))
            .await;

        assert_eq!(
            info.source_ip.as_deref(),
            Some("203.0.113.7"),
            "{transport}"
        );
        assert_eq!(
            info.user_agent.as_deref(),
            Some("test-agent"),
            "{transport}"
        );
        assert_eq!(
            info.last_active_at.unix_millis() - info.connected_at.unix_millis(),
            300_000,
            "{transport}"
        );
        assert!(
            matches!(missing, Err(GatewayError::Gone)),
            "{transport}: {missing:?}"
        );
        assert!(
            matches!(deleted, Err(GatewayError::Gone)),
            "{transport}: {deleted:?}"
        );
        assert!(closed.is_ok(), "{transport}: {closed:?}");
        let methods: Vec<Method> = log.all().into_iter().map(|seen| seen.method).collect();
        assert_eq!(
            methods,
            [Method::GET, Method::GET, Method::DELETE, Method::DELETE],
            "{transport}"
        );
        assert!(
            log.all().iter().all(|seen| seen.signature_valid.is_ok()),
            "{transport}: {:?}",
            log.all()
        );
    }
}

#[tokio::test]
async fn the_lean_transport_reuses_its_connections() {
    // Sequential posts on one keep-alive connection: the server sees one peer port.
    let ports = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let app = Router::new().route(
        "/prod/@connections/{id}",
        post({
            let ports = ports.clone();
            move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
                std::net::SocketAddr,
            >| {
                let ports = ports.clone();
                async move {
                    ports.lock().expect("lock").insert(peer.port());
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let config = ApiGatewayConfig::new(format!("http://{address}/prod"));
    let sdk = local_sdk_config("us-east-1", "AKIDLOCAL", "local-secret");
    let gateway = ApiGatewayGateway::new(&sdk, &config).expect("set up");

    for _ in 0..20 {
        post_to(&gateway, "ok").await.expect("delivered");
    }

    assert_eq!(ports.lock().expect("lock").len(), 1);
}
