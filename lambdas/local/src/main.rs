//! `wspush-local`: API Gateway WebSockets on a laptop.
//!
//! ```sh
//! cargo run -p wspush-local                 # in-memory store, port 8080
//! cargo run -p wspush-local -- --help
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use wspush_domain::SubscriptionPolicy;
use wspush_local::{Faults, LocalConfig, StoreChoice, start};
use wspush_ports::PushConfig;

/// Runs wspush's WebSocket API, @connections API and pusher locally.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  wspush-local\n  wspush-local --port 9000 --allowed-namespaces room,ticker\n  wspush-local --dynamodb-endpoint http://127.0.0.1:8000 --table wspush\n  wspush-local --post-latency-ms 20 --throttle-rate 0.3 --lose-disconnects"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "WSPUSH_LOCAL_HOST")]
    host: std::net::IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080, env = "WSPUSH_LOCAL_PORT")]
    port: u16,
    /// The stage: sockets open at /<stage>, the management API is /<stage>/@connections.
    #[arg(long, default_value = "local")]
    stage: String,
    /// The query parameter that names the user at $connect (it plays the authorizer; local only).
    #[arg(long, default_value = "user")]
    identity_param: String,
    /// Use DynamoDB (Local) at this endpoint instead of the in-memory store.
    #[arg(long, requires = "table")]
    dynamodb_endpoint: Option<String>,
    /// The DynamoDB table (created if missing).
    #[arg(long, requires = "dynamodb_endpoint")]
    table: Option<String>,
    /// Close sockets idle for this many seconds (API Gateway: 600).
    #[arg(long, default_value_t = 600)]
    idle_timeout_secs: u64,
    /// Close every socket after this many seconds (API Gateway: 7200).
    #[arg(long, default_value_t = 7200)]
    max_duration_secs: u64,
    /// Comma-separated topic namespaces connections may subscribe to (default: any).
    #[arg(long, value_delimiter = ',')]
    allowed_namespaces: Vec<String>,
    /// PostToConnection calls each push keeps in flight.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// PostToConnection calls per second of the in-process pusher, all pushes together (cut
    /// on 429s), or `off`.
    #[arg(long, default_value = "8000", value_parser = posts_per_second)]
    max_posts_per_second: PostRate,
    /// Latency added to every POST @connections, in milliseconds.
    #[arg(long, default_value_t = 0)]
    post_latency_ms: u64,
    /// Random extra latency, uniform in [0, this), in milliseconds.
    #[arg(long, default_value_t = 0)]
    post_jitter_ms: u64,
    /// Share of posts answered 429, from 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// Share of posts answered 500, from 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Posts per second accepted; more are answered 429.
    #[arg(long)]
    requests_per_second: Option<u32>,
    /// Never fire $disconnect (API Gateway only promises best effort).
    #[arg(long)]
    lose_disconnects: bool,
}

/// `--max-posts-per-second`: a positive number, or `off`.
#[derive(Debug, Clone, Copy)]
struct PostRate(Option<u32>);

fn posts_per_second(value: &str) -> Result<PostRate, String> {
    if value == "off" {
        return Ok(PostRate(None));
    }
    match value.parse::<u32>() {
        Ok(rate) if rate > 0 => Ok(PostRate(Some(rate))),
        _ => Err(format!(
            "expected a positive number or `off`, got {value:?}"
        )),
    }
}

fn rate(name: &str, value: f64) -> anyhow::Result<f64> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&value),
        "--{name} must be between 0 and 1, got {value}"
    );
    Ok(value)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let policy = if args.allowed_namespaces.is_empty() {
        SubscriptionPolicy::default()
    } else {
        SubscriptionPolicy::default().with_allowed_namespaces(args.allowed_namespaces.clone())
    };
    let config = LocalConfig {
        address: SocketAddr::new(args.host, args.port),
        stage: args.stage.clone(),
        identity_param: args.identity_param.clone(),
        store: match (args.dynamodb_endpoint, args.table) {
            (Some(endpoint), Some(table)) => StoreChoice::DynamoDb { endpoint, table },
            _ => StoreChoice::Memory,
        },
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        max_duration: Duration::from_secs(args.max_duration_secs),
        policy,
        push: PushConfig {
            max_in_flight: args.max_in_flight,
            max_posts_per_second: args.max_posts_per_second.0,
            ..PushConfig::default()
        },
        faults: Faults {
            latency: Duration::from_millis(args.post_latency_ms),
            jitter: Duration::from_millis(args.post_jitter_ms),
            throttle_rate: rate("throttle-rate", args.throttle_rate)?,
            error_rate: rate("error-rate", args.error_rate)?,
            requests_per_second: args.requests_per_second,
            lose_disconnects: args.lose_disconnects,
        },
    };
    let store = match &config.store {
        StoreChoice::Memory => "in-memory".to_owned(),
        StoreChoice::DynamoDb { endpoint, table } => {
            format!("DynamoDB table {table} at {endpoint}")
        }
    };
    let gateway = start(config).await.context("starting the local gateway")?;
    let param = &args.identity_param;
    println!("wspush local gateway ({store} store)");
    println!("  demo page:       {}", gateway.demo_url());
    println!(
        "  WebSocket:       {}?{param}=<user id>",
        gateway.websocket_url()
    );
    println!(
        "  @connections:    {}/@connections/<connection id>",
        gateway.management_endpoint()
    );
    println!("  notifications:   POST {}", gateway.notifications_url());
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("stopping: closing every socket");
    gateway.shutdown().await
}
