//! Tokens and the subscription policy through real sockets on the local gateway: a token
//! opens a socket (from the query or a subprotocol, echoed back), a bad one is a 401, and
//! each policy denial comes back to the socket as an error reply with nothing written.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use wspush_adapters::SystemClock;
use wspush_domain::{ConnectionId, SubscriptionPolicy};
use wspush_handlers::token::{DEFAULT_MAX_TOKEN_LIFETIME, TokenRules, TokenVerifier};
use wspush_local::LocalConfig;
use wspush_ports::Clock;

use crate::helpers::{Setup, http};

const SECRET: &[u8] = b"e2e-secret-e2e-secret-e2e-secret!!";

fn token(claims: Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let mut all = json!({"iss": "e2e", "aud": "wspush", "exp": now + 600});
    for (key, value) in claims.as_object().expect("object") {
        all[key] = value.clone();
    }
    encode(
        &Header::new(Algorithm::HS256),
        &all,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("sign")
}

/// A gateway that requires HS256 tokens and restricts namespaces and counts.
async fn gateway() -> Setup {
    let rules = TokenRules {
        issuer: "e2e".into(),
        audience: "wspush".into(),
        topics_claim: Some("topics".into()),
        leeway: Duration::from_secs(5),
        max_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
    };
    Setup::memory_with(LocalConfig {
        token: Some(Arc::new(TokenVerifier::hs256(SECRET, rules).expect("key"))),
        policy: SubscriptionPolicy::default()
            .with_allowed_namespaces(["room", "ticker"])
            .with_max_subscriptions_per_connection(3)
            .with_max_topics_per_message(2),
        ..LocalConfig::default()
    })
    .await
}

async fn refused_status(url: String) -> u16 {
    match connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_opens_a_socket_and_every_bad_one_is_refused_with_401() {
    let setup = gateway().await;
    let url = setup.gateway.websocket_url();

    let client = setup
        .open(format!("{url}?token={}", token(json!({"sub": "u-1"}))))
        .await;
    let stored = setup
        .gateway
        .store()
        .get(
            &ConnectionId::parse(client.id.as_str()).expect("id"),
            SystemClock.now(),
        )
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.user().as_str(), "u-1");

    let expired = token(json!({"sub": "u-1", "exp": 1_000}));
    let other_audience = token(json!({"sub": "u-1", "aud": "someone-else"}));
    for (case, query) in [
        ("no token, user named in the query", "user=u-1".to_owned()),
        ("expired", format!("token={expired}")),
        ("other audience", format!("token={other_audience}")),
        ("not a JWT", "token=hello".to_owned()),
    ] {
        assert_eq!(
            refused_status(format!("{url}?{query}")).await,
            401,
            "{case}"
        );
    }
    assert_eq!(
        setup.gateway.open_connections(),
        std::slice::from_ref(&client.id)
    );
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_offered_as_a_subprotocol_opens_the_socket_and_the_protocol_is_echoed() {
    let setup = gateway().await;
    let mut request = setup
        .gateway
        .websocket_url()
        .into_client_request()
        .expect("request");
    let offered = format!("wspush, {}", token(json!({"sub": "u-2"})));
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&offered).expect("header"),
    );

    let (_socket, response) = connect_async(request).await.expect("the socket opens");

    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|value| value.to_str().expect("ascii")),
        Some("wspush")
    );
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_policy_denial_reaches_the_socket_as_an_error_and_writes_nothing() {
    let setup = gateway().await;
    let claims = json!({"sub": "u-1", "topics": ["room:*", "ticker:AAPL"]});
    let url = format!("{}?token={}", setup.gateway.websocket_url(), token(claims));
    let mut client = setup.open(url).await;
    let connection = ConnectionId::parse(client.id.as_str()).expect("id");

    let mut reply = async |topics: &[&str]| {
        let body = json!({"action": "subscribe", "topics": topics});
        client.send(&body.to_string()).await;
        client.next_json().await
    };
    let namespace = reply(&["admin:1"]).await;
    let other_user = reply(&["user:u-2"]).await;
    let not_granted = reply(&["ticker:MSFT"]).await;
    let too_many_topics = reply(&["room:1", "room:2", "room:3"]).await;
    let held = reply(&["room:1", "room:2"]).await;
    let too_many_subscriptions = reply(&["ticker:AAPL", "user:u-1"]).await;
    let own_channel = reply(&["user:u-1"]).await;

    for (denial, expected) in [
        (
            &namespace,
            "topic `admin:1` is not in an allowed namespace (room, ticker)",
        ),
        (
            &other_user,
            "topic `user:u-2` is another user's own channel",
        ),
        (
            &not_granted,
            "topic `ticker:MSFT` is not granted to the connection (by its token or authorizer)",
        ),
        (
            &too_many_topics,
            "a message may name at most 2 topics, got 3",
        ),
        (
            &too_many_subscriptions,
            "a connection may hold at most 3 subscriptions; it has 2 and asked for 2 more",
        ),
    ] {
        assert_eq!(denial["ok"], false, "{denial}");
        assert_eq!(denial["error"], expected, "{denial}");
    }
    assert_eq!(held["topics"], json!(["room:1", "room:2"]));
    assert_eq!(
        own_channel["topics"],
        json!(["room:1", "room:2", "user:u-1"])
    );
    let subscriptions = setup
        .gateway
        .store()
        .subscriptions(&connection)
        .await
        .expect("read");
    assert_eq!(subscriptions.len(), 3);
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_body_that_is_not_utf8_or_too_large_is_refused_clearly() {
    let setup = Setup::memory().await;
    let address = setup.gateway.address();

    let (not_utf8, body) = http(address, "POST", "/notifications", b"{\"data\": \"\xff\"}").await;
    let huge = format!(r#"{{"data": "{}"}}"#, "x".repeat(3 * 1024 * 1024));
    let (too_large, _) = http(address, "POST", "/notifications", huge.as_bytes()).await;

    assert_eq!(not_utf8, 400);
    let error: Value = serde_json::from_str(&body).expect("a JSON error");
    assert!(
        error["error"]
            .as_str()
            .expect("error")
            .contains("request is not UTF-8: invalid byte at offset 10"),
        "{error}"
    );
    assert_eq!(too_large, 413);
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_query_parameters_and_protocol_lines_reach_connect_as_on_aws() {
    let setup = gateway().await;
    let url = setup.gateway.websocket_url();
    let (first, second) = (token(json!({"sub": "u-1"})), token(json!({"sub": "u-2"})));

    let two_tokens = refused_status(format!("{url}?token={first}&token={second}")).await;
    // Two Sec-WebSocket-Protocol lines, written by hand: tungstenite's client checks the
    // answer against its first line only.
    let handshake = raw_handshake(
        &setup,
        &[
            ("Sec-WebSocket-Protocol", &first),
            ("Sec-WebSocket-Protocol", "wspush"),
        ],
    )
    .await;

    assert_eq!(two_tokens, 401);
    assert!(handshake.starts_with("HTTP/1.1 101"), "{handshake}");
    assert!(
        handshake
            .to_ascii_lowercase()
            .contains("\r\nsec-websocket-protocol: wspush\r\n"),
        "{handshake}"
    );
    setup.finish().await;
}

/// A WebSocket upgrade request with `extra` header lines; returns the answer's head.
async fn raw_handshake(setup: &Setup, extra: &[(&str, &str)]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let address = setup.gateway.address();
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let mut request = format!(
        "GET /local HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("an answer within 5 s")
            .expect("read");
        if read == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// API Gateway invokes the subscribe function once per message, with nothing ordering a
/// socket's messages. 8 subscribe messages of 10 new topics each, sent at once on one socket
/// that may hold 35, run concurrently (`concurrent_messages`): exactly 3 are admitted, 5 are
/// denied with the limit, and the store holds 30, on both stores.
async fn concurrent_subscribe_messages_never_exceed_the_limit(setup: Setup) {
    let mut ana = setup.connect("ana").await;
    for message in 0..8 {
        let topics: Vec<String> = (0..10).map(|i| format!("room:{message}-{i}")).collect();
        ana.send(&json!({"action": "subscribe", "topics": topics}).to_string())
            .await;
    }
    let mut replies = Vec::new();
    for _ in 0..8 {
        replies.push(ana.next_json().await);
    }

    let admitted = replies.iter().filter(|reply| reply["ok"] == true).count();
    let denied: Vec<&Value> = replies
        .iter()
        .filter(|reply| reply["ok"] == false)
        .collect();
    assert_eq!(admitted, 3, "{replies:?}");
    assert_eq!(denied.len(), 5, "{replies:?}");
    for reply in denied {
        let error = reply["error"].as_str().expect("an error");
        assert!(
            error.starts_with("a connection may hold at most 35 subscriptions"),
            "{reply}"
        );
    }
    let held = setup
        .gateway
        .store()
        .subscriptions(&ConnectionId::parse(ana.id.as_str()).expect("id"))
        .await
        .expect("read");
    assert_eq!(held.len(), 30);
    setup.finish().await;
}

fn concurrent_limits() -> LocalConfig {
    LocalConfig {
        concurrent_messages: true,
        policy: SubscriptionPolicy::default()
            .with_max_subscriptions_per_connection(35)
            .with_max_topics_per_message(10),
        ..LocalConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_subscribe_messages_never_exceed_the_limit_in_memory() {
    concurrent_subscribe_messages_never_exceed_the_limit(
        Setup::memory_with(concurrent_limits()).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_subscribe_messages_never_exceed_the_limit_on_dynamodb() {
    concurrent_subscribe_messages_never_exceed_the_limit(
        Setup::dynamodb_with_config(concurrent_limits()).await,
    )
    .await;
}
