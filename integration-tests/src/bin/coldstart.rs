//! Cold start of the four release Lambda binaries: the time from process start to the first
//! event handled, and each binary's size.
//!
//! ```sh
//! cargo lambda build --release -p wspush-connect -p wspush-disconnect -p wspush-subscribe -p wspush-pusher
//! cargo run --release -p wspush-integration-tests --bin coldstart -- --runs 20
//! ```
//!
//! Each run starts `target/lambda/<name>/bootstrap` as Lambda would, against a local stub of
//! the Lambda Runtime API that hands it one real event and times the answer. The functions
//! talk to a real DynamoDB Local (found or started as the integration tests do), and the
//! pusher posts to the same stub's `@connections` route. Prints a Markdown table.

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
use wspush_integration_tests::dynamodb_local::DynamoDbFixture;

const CONNECT: &str = include_str!("../../../lambdas/handlers/tests/fixtures/connect.json");
const SUBSCRIBE: &str = include_str!("../../../lambdas/handlers/tests/fixtures/subscribe.json");
const DISCONNECT: &str = include_str!("../../../lambdas/handlers/tests/fixtures/disconnect.json");
const PUSH: &str = r#"{"users":["u-1"],"data":{"hello":"world"}}"#;

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
    let mut lambda_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/lambda"));
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
    for (name, event) in [
        ("connect", CONNECT),
        ("subscribe", SUBSCRIBE),
        ("pusher", PUSH),
        ("disconnect", DISCONNECT),
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
                .env("WSPUSH_TABLE", dynamodb.store.table())
                // As deployed: the pusher builds its continuation queue's client at cold
                // start (it sends nothing unless a push is continued).
                .env("WSPUSH_QUEUE_URL", format!("http://{address}/queue"))
                .env(
                    "WSPUSH_MANAGEMENT_ENDPOINT",
                    format!("http://{address}/prod"),
                )
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            let outcome = tokio::time::timeout(Duration::from_secs(10), outcomes.recv()).await;
            let elapsed = started.elapsed();
            child.kill().await.ok();
            match outcome {
                Ok(Some(Ok(_))) => times.push(elapsed),
                Ok(Some(Err(error))) => bail!("{name} failed its event: {error}"),
                Ok(None) | Err(_) => bail!("{name} answered nothing within 10 s"),
            }
        }
        let (min, max) = (
            times.iter().min().copied().unwrap_or_default(),
            times.iter().max().copied().unwrap_or_default(),
        );
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
            size as f64 / 1_048_576.0,
            median(times).as_secs_f64() * 1000.0,
            min.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0
        );
    }
    dynamodb.finish().await;
    Ok(())
}
