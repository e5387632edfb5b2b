//! Cold start of the four release Lambda binaries: the time from process start to the first
//! event handled, and each binary's size.
//!
//! ```sh
//! cargo lambda build --release -p wspush-connect -p wspush-disconnect -p wspush-subscribe -p wspush-pusher
//! cargo run --release -p wspush-bench --bin coldstart -- --runs 20
//! ```
//!
//! Each run starts `target/lambda/<name>/bootstrap` as Lambda would, against a local stub of
//! the Lambda Runtime API that hands it one real event and times the answer. The functions
//! talk to a real DynamoDB Local (found or started as the integration tests do), and the
//! pusher posts to the same stub's `@connections` route. Prints a Markdown table. The row
//! `connect (RS256 token)` is the connect binary verifying a token against a JWKS (the
//! test-only RSA key of the handler tests), the key parsed at cold start; it must answer 200.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::mpsc;
use wspush_handlers::settings::names;
use wspush_integration_tests::dynamodb_local::DynamoDbFixture;

const CONNECT: &str = include_str!("../../../../lambdas/handlers/tests/fixtures/connect.json");
const SUBSCRIBE: &str = include_str!("../../../../lambdas/handlers/tests/fixtures/subscribe.json");
const DISCONNECT: &str =
    include_str!("../../../../lambdas/handlers/tests/fixtures/disconnect.json");
const CONNECT_WITHOUT_IDENTITY: &str =
    include_str!("../../../../lambdas/handlers/tests/fixtures/connect-without-identity.json");
const PUSH: &str = r#"{"users":["u-1"],"data":{"hello":"world"}}"#;
const TEST_RSA_KEY: &[u8] =
    include_bytes!("../../../../lambdas/handlers/tests/fixtures/keys/rsa-test-only.der");

/// A JWKS of the test RSA key, and a `$connect` event carrying a valid RS256 token from it.
fn rs256_connect() -> anyhow::Result<(String, String)> {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    let key = EncodingKey::from_rsa_der(TEST_RSA_KEY);
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
    jwk.common.key_id = Some("coldstart".into());
    let jwks = serde_json::to_string(&JwkSet { keys: vec![jwk] })?;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 3600;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("coldstart".into());
    let claims = serde_json::json!({"sub": "u-1", "iss": "coldstart", "aud": "wspush", "exp": exp, "topics": ["room:*"]});
    let token = encode(&header, &claims, &key)?;
    let mut event: serde_json::Value = serde_json::from_str(CONNECT_WITHOUT_IDENTITY)?;
    event["queryStringParameters"] = serde_json::json!({"token": token});
    event["multiValueQueryStringParameters"] = serde_json::json!({"token": [token]});
    Ok((jwks, event.to_string()))
}

#[derive(Clone)]
struct Stub {
    next_event: Arc<Mutex<Option<String>>>,
    outcomes: mpsc::UnboundedSender<Result<String, String>>,
}

async fn next_invocation(State(stub): State<Stub>) -> Response {
    let event = stub.next_event.lock().ok().and_then(|mut slot| slot.take());
    let Some(event) = event else {
        // The function has answered its one event: keep it waiting until it is killed.
        std::future::pending::<()>().await;
        return StatusCode::NO_CONTENT.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|now| now.as_millis() + 30_000)
        .unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", "coldstart-1".to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:coldstart".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (StatusCode::OK, headers, event).into_response()
}

async fn invocation_response(State(stub): State<Stub>, body: String) -> StatusCode {
    let _ = stub.outcomes.send(Ok(body));
    StatusCode::ACCEPTED
}

async fn invocation_error(State(stub): State<Stub>, body: String) -> StatusCode {
    let _ = stub.outcomes.send(Err(body));
    StatusCode::ACCEPTED
}

async fn init_error(State(stub): State<Stub>, body: String) -> StatusCode {
    let _ = stub.outcomes.send(Err(format!("init error: {body}")));
    StatusCode::ACCEPTED
}

async fn post_to_connection(Path(_): Path<String>) -> StatusCode {
    StatusCode::OK
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut runs = 10usize;
    let mut lambda_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/lambda"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().context("--runs needs a number")?.parse()?,
            "--lambda-dir" => lambda_dir = args.next().context("--lambda-dir needs a path")?.into(),
            other => bail!("unknown argument {other}; expected --runs N or --lambda-dir PATH"),
        }
    }
    anyhow::ensure!(runs > 0, "--runs must be at least 1");

    let dynamodb = DynamoDbFixture::new().await;
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let stub = Stub {
        next_event: Arc::default(),
        outcomes: outcomes_tx,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(invocation_response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .route("/prod/@connections/{id}", post(post_to_connection))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    println!("| binary | size (MB) | cold start, median of {runs} (ms) | min (ms) | max (ms) |");
    println!("|---|---|---|---|---|");
    let (jwks, token_event) = rs256_connect()?;
    let token_env = [
        (names::JWT_JWKS, jwks.as_str()),
        (names::JWT_ISSUER, "coldstart"),
        (names::JWT_AUDIENCE, "wspush"),
    ];
    // The pusher's default is the lean transport; the same binary on the SDK's, to compare.
    let sdk_transport = [(names::TRANSPORT, "sdk")];
    for (label, name, event, extra_env) in [
        ("connect", "connect", CONNECT, &[][..]),
        (
            "connect (RS256 token)",
            "connect",
            token_event.as_str(),
            &token_env[..],
        ),
        ("subscribe", "subscribe", SUBSCRIBE, &[][..]),
        ("pusher", "pusher", PUSH, &[][..]),
        ("pusher (sdk transport)", "pusher", PUSH, &sdk_transport[..]),
        ("disconnect", "disconnect", DISCONNECT, &[][..]),
    ] {
        let binary = lambda_dir.join(name).join("bootstrap");
        let size = std::fs::metadata(&binary)
            .with_context(|| {
                format!(
                    "{}: build the Lambdas first (cargo lambda build --release)",
                    binary.display()
                )
            })?
            .len();
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            if let Ok(mut slot) = stub.next_event.lock() {
                *slot = Some(event.to_owned());
            }
            let started = Instant::now();
            let mut child = tokio::process::Command::new(&binary)
                .env_clear()
                .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/coldstart")
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "wspushtests")
                .env("AWS_SECRET_ACCESS_KEY", "wspushtests")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb.endpoint)
                .env(names::TABLE, dynamodb.store.table())
                // As deployed: the pusher builds its continuation queue's client at cold
                // start (it sends nothing unless a push is continued).
                .env(names::QUEUE_URL, format!("http://{address}/queue"))
                .env(
                    "WSPUSH_MANAGEMENT_ENDPOINT",
                    format!("http://{address}/prod"),
                )
                .envs(extra_env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            let outcome = tokio::time::timeout(Duration::from_secs(10), outcomes.recv()).await;
            let elapsed = started.elapsed();
            child.kill().await.ok();
            match outcome {
                Ok(Some(Ok(answer)))
                    if name != "connect" || answer.contains("\"statusCode\":200") =>
                {
                    times.push(elapsed);
                }
                Ok(Some(Ok(answer))) => bail!("{label} refused its event: {answer}"),
                Ok(Some(Err(error))) => bail!("{name} failed its event: {error}"),
                Ok(None) | Err(_) => bail!("{name} answered nothing within 10 s"),
            }
        }
        let (min, max) = (
            times.iter().min().copied().unwrap_or_default(),
            times.iter().max().copied().unwrap_or_default(),
        );
        println!(
            "| {label} | {:.1} | {:.1} | {:.1} | {:.1} |",
            size as f64 / 1_048_576.0,
            median(times).as_secs_f64() * 1000.0,
            min.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0
        );
    }
    dynamodb.finish().await;
    Ok(())
}
