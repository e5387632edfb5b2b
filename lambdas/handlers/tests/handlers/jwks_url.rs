//! A JWKS read from its URL: at cold start, again when a token names a key it does not hold
//! (the provider rotated its keys), again after its TTL, never more often than the minimum
//! interval, against a local JWKS server (plain HTTP on 127.0.0.1) through the real
//! `HttpDocument` adapter.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wspush_adapters::HttpDocument;
use wspush_handlers::connect::TOKEN_QUERY_PARAM;
use wspush_handlers::token::{KeyError, TokenVerifier};
use wspush_handlers::{IdentitySource, JwksRefresh, handle_connect};
use wspush_ports::{ConnectionService, ConnectionStore};

use crate::helpers::*;
use crate::tokens::*;

const CONNECT_WITHOUT_IDENTITY: &str = include_str!("../fixtures/connect-without-identity.json");
const RSA_DER: &[u8] = include_bytes!("../fixtures/keys/rsa-test-only.der");

/// A JWKS server: answers every request with the current document (or status), and counts.
struct JwksServer {
    url: String,
    answer: Arc<Mutex<(u16, String)>>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn serving(document: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("address")
        );
        let answer = Arc::new(Mutex::new((200, document)));
        let requests = Arc::new(AtomicUsize::new(0));
        let (shared, counter) = (Arc::clone(&answer), Arc::clone(&requests));
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (status, body) = shared.lock().expect("lock").clone();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = vec![0; 4096];
                    let _ = stream.read(&mut request).await;
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                });
            }
        });
        Self {
            url,
            answer,
            requests,
            task,
        }
    }

    fn serve(&self, status: u16, document: String) {
        *self.answer.lock().expect("lock") = (status, document);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A JWKS of the test RSA key under `kid`.
fn jwks_with_kid(kid: &str) -> String {
    let mut rsa = Jwk::from_encoding_key(&EncodingKey::from_rsa_der(RSA_DER), Algorithm::RS256)
        .expect("rsa jwk");
    rsa.common.key_id = Some(kid.into());
    serde_json::to_string(&JwkSet { keys: vec![rsa] }).expect("jwks")
}

fn rs256(kid: &str, sub: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    encode(
        &header,
        &claims(json!({"sub": sub})),
        &EncodingKey::from_rsa_der(RSA_DER),
    )
    .expect("sign")
}

fn with_token(token: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut event = websocket_event(CONNECT_WITHOUT_IDENTITY);
    let query = format!("{TOKEN_QUERY_PARAM}={token}");
    event.query_string_parameters = query.parse().expect("query");
    event.multi_value_query_string_parameters = query.parse().expect("query");
    event
}

async fn identity(server: &JwksServer, refresh: JwksRefresh) -> IdentitySource {
    let source = Arc::new(HttpDocument::new(&server.url).expect("a URL"));
    let verifier = TokenVerifier::jwks_from(source, rules(), refresh)
        .await
        .expect("the JWKS is read at cold start");
    IdentitySource {
        token: Some(Arc::new(verifier)),
        ..IdentitySource::default()
    }
}

/// Connects with `token`; the status and the user saved.
async fn connect(identity: &IdentitySource, token: &str) -> (i64, Option<String>) {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());
    let response = handle_connect(&with_token(token), &service, identity).await;
    let saved = store.get(&id(CONNECTION), NOW).await.expect("get");
    (
        response.status_code,
        saved.map(|connection| connection.user().to_string()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_read_again_from_the_url_and_accepted() {
    let server = JwksServer::serving(jwks_with_kid("2026-11")).await;
    let identity = identity(
        &server,
        JwksRefresh {
            ttl: Duration::from_secs(3600),
            min_interval: Duration::ZERO,
        },
    )
    .await;
    assert_eq!(server.requests(), 1, "read once at cold start");
    assert_eq!(
        connect(&identity, &rs256("2026-11", "ana")).await,
        (200, Some("ana".into()))
    );

    // The provider rotates: the key now has a new kid, the old one is gone.
    server.serve(200, jwks_with_kid("2026-12"));
    let rotated = connect(&identity, &rs256("2026-12", "bob")).await;
    let retired = connect(&identity, &rs256("2026-11", "cy")).await;

    assert_eq!(rotated, (200, Some("bob".into())));
    assert_eq!(
        server.requests(),
        3,
        "read again for the new kid, and for the retired one"
    );
    assert_eq!(retired, (401, None), "a retired key is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_read_the_url_at_most_once_per_interval() {
    let server = JwksServer::serving(jwks_with_kid("k1")).await;
    let identity = Arc::new(
        identity(
            &server,
            JwksRefresh {
                ttl: Duration::from_secs(3600),
                min_interval: Duration::from_millis(2000),
            },
        )
        .await,
    );

    // Within the interval of the cold-start read: refused, not read again.
    assert_eq!(connect(&identity, &rs256("forged", "x")).await, (401, None));
    assert_eq!(server.requests(), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // 20 tokens with unknown kids at once (well within the 2 s interval): one read.
    let attempts = (0..20).map(|i| {
        let identity = Arc::clone(&identity);
        tokio::spawn(async move { connect(&identity, &rs256(&format!("forged-{i}"), "x")).await })
    });
    for attempt in futures_join(attempts).await {
        assert_eq!(attempt, (401, None));
    }

    assert_eq!(server.requests(), 2, "one read for the burst");
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.expect("the task ran"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_older_than_the_ttl_are_read_again_and_a_failed_read_keeps_them() {
    let server = JwksServer::serving(jwks_with_kid("k1")).await;
    let identity = identity(
        &server,
        JwksRefresh {
            ttl: Duration::from_millis(200),
            min_interval: Duration::ZERO,
        },
    )
    .await;

    tokio::time::sleep(Duration::from_millis(250)).await;
    server.serve(503, "unavailable".into());
    let during_outage = connect(&identity, &rs256("k1", "ana")).await;

    assert_eq!(server.requests(), 2, "read again after the TTL");
    assert_eq!(
        during_outage,
        (200, Some("ana".into())),
        "the keys held still verify while the provider is down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_url_that_cannot_be_read_fails_the_cold_start_naming_it() {
    let server = JwksServer::serving(String::new()).await;
    server.serve(500, "oops".into());
    let source = Arc::new(HttpDocument::new(&server.url).expect("a URL"));

    let error = TokenVerifier::jwks_from(source, rules(), JwksRefresh::default())
        .await
        .expect_err("a 500 is no JWKS");
    server.serve(200, r#"{"keys": "none"}"#.into());
    let source = Arc::new(HttpDocument::new(&server.url).expect("a URL"));
    let not_a_jwks = TokenVerifier::jwks_from(source, rules(), JwksRefresh::default())
        .await
        .expect_err("not a JWKS");

    let KeyError::Unreadable(reason) = &error else {
        panic!("expected an unreadable JWKS, got {error:?}");
    };
    assert!(
        reason.contains(&server.url) && reason.contains("answered 500"),
        "{reason}"
    );
    assert!(
        matches!(not_a_jwks, KeyError::NotAJwks(_)),
        "{not_a_jwks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_tokens_under_a_new_key_all_get_in_on_one_read() {
    let server = JwksServer::serving(jwks_with_kid("old")).await;
    let identity = Arc::new(
        identity(
            &server,
            JwksRefresh {
                ttl: Duration::from_secs(3600),
                min_interval: Duration::from_millis(300),
            },
        )
        .await,
    );
    server.serve(200, jwks_with_kid("new"));
    tokio::time::sleep(Duration::from_millis(350)).await;

    // 20 connects at once under the key the provider just added: the first reads the JWKS,
    // the others wait for that read and verify with its keys (not refused for coming
    // within the interval).
    let attempts = (0..20).map(|i| {
        let identity = Arc::clone(&identity);
        tokio::spawn(async move { connect(&identity, &rs256("new", &format!("u{i}"))).await })
    });
    let results = futures_join(attempts).await;

    assert!(
        results.iter().all(|(status, _)| *status == 200),
        "{results:?}"
    );
    assert_eq!(server.requests(), 2, "one read for all 20");
}
