//! `wspush-local`: API Gateway WebSockets on a laptop.
//!
//! ```sh
//! cargo run -p wspush-local                 # in-memory store, port 8080
//! cargo run -p wspush-local -- --help
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use wspush_adapters::{HttpDocument, Transport};
use wspush_domain::{HistoryPolicy, PresencePolicy, SubscriptionPolicy};
use wspush_handlers::settings::{self, RemoteKeys, Settings};
use wspush_handlers::token::TokenVerifier;
use wspush_local::{Faults, FunctionsConfig, LocalConfig, SqsEndpoint, StoreChoice, start};
use wspush_ports::{PushConfig, RemoteDocument, RemoteError, RemoteProblem};

/// Runs wspush's WebSocket API, @connections API and pusher locally.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  wspush-local\n  wspush-local --port 9000 --allowed-namespaces room,ticker\n  wspush-local --jwt-hs256-secret \"$SECRET\" --jwt-issuer https://auth.example.com/ --jwt-audience wspush\n  wspush-local --dynamodb-endpoint http://127.0.0.1:8000 --table wspush\n  wspush-local --post-latency-ms 20 --throttle-rate 0.3 --lose-disconnects"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = settings::LOCAL_HOST)]
    host: std::net::IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080, env = settings::LOCAL_PORT)]
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
    #[arg(long, value_delimiter = ',', env = settings::ALLOWED_NAMESPACES)]
    allowed_namespaces: Vec<String>,
    /// The most subscriptions one connection may hold.
    #[arg(
        long,
        default_value_t = 100,
        env = settings::MAX_SUBSCRIPTIONS
    )]
    max_subscriptions_per_connection: usize,
    /// The most topics one subscribe message may name.
    #[arg(long, default_value_t = 20, env = settings::MAX_TOPICS_PER_MESSAGE)]
    max_topics_per_message: usize,
    /// Require an HS256 token at $connect, signed with this secret (at least 32 bytes).
    #[arg(long, env = settings::JWT_HS256_SECRET, hide_env_values = true)]
    jwt_hs256_secret: Option<String>,
    /// Require an RS256 / ES256 token at $connect, verified with this JWKS file's keys.
    #[arg(long, conflicts_with = "jwt_hs256_secret")]
    jwt_jwks_file: Option<std::path::PathBuf>,
    /// Require an RS256 / ES256 token at $connect, verified with the keys of the JWKS at
    /// this URL (read at start and again as they rotate, as the connect Lambda does).
    #[arg(long, conflicts_with_all = ["jwt_hs256_secret", "jwt_jwks_file"], env = settings::JWT_JWKS_URL)]
    jwt_jwks_url: Option<String>,
    /// The issuer (`iss`) tokens must have.
    #[arg(long, env = settings::JWT_ISSUER)]
    jwt_issuer: Option<String>,
    /// The audience tokens' `aud` must include.
    #[arg(long, env = settings::JWT_AUDIENCE)]
    jwt_audience: Option<String>,
    /// The claim listing the topics a token grants, or `off`.
    #[arg(long, default_value = "topics", env = settings::JWT_TOPICS_CLAIM)]
    jwt_topics_claim: String,
    /// Seconds of clock skew allowed on a token's `exp` and `nbf` (at most 300).
    #[arg(long, default_value_t = 30, env = settings::JWT_LEEWAY_SECONDS)]
    jwt_leeway_secs: u64,
    /// PostToConnection calls each push keeps in flight.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// How the in-process pusher calls @connections: `lean` (hyper and aws-sigv4) or `sdk`
    /// (the AWS SDK's client), as the pusher's WSPUSH_TRANSPORT.
    #[arg(long, default_value = "lean", env = settings::TRANSPORT)]
    transport: Transport,
    /// PostToConnection calls per second of the in-process pusher, all pushes together (cut
    /// on 429s), or `off`.
    #[arg(long, default_value = "8000", value_parser = posts_per_second)]
    max_posts_per_second: PostRate,
    /// Read a notification request whose `users`, `topics` and `connections` are all empty
    /// or null as a broadcast, as the Python pusher did (by default it reaches nobody).
    #[arg(long, env = settings::EMPTY_LISTS_MEAN_EVERYONE)]
    empty_lists_mean_everyone: bool,
    /// Topic namespaces whose streams keep history (comma-separated; `user` for users' own
    /// channels), so that a client resubscribing with `since` gets what it missed.
    #[arg(long, value_delimiter = ',', env = settings::HISTORY_NAMESPACES)]
    history_namespaces: Vec<String>,
    /// Seconds a stream's messages are kept.
    #[arg(long, default_value_t = 900, env = settings::HISTORY_TTL_SECONDS)]
    history_ttl_secs: u64,
    /// The most messages a stream keeps.
    #[arg(long, default_value_t = 100, env = settings::HISTORY_SIZE)]
    history_size: u32,
    /// Topic namespaces that keep presence (comma-separated): joins and leaves are pushed to
    /// their subscribers, and `{"action":"presence","topic":...}` answers who is there.
    #[arg(long, value_delimiter = ',', env = settings::PRESENCE_NAMESPACES)]
    presence_namespaces: Vec<String>,
    /// Share of connections (0 to 1) whose every POST @connections is answered 429, as API
    /// Gateway answers a client that does not read (a slow phone): unlike
    /// --requests-per-second, the account's throttle, they must slow nobody else.
    #[arg(long, default_value_t = 0.0)]
    slow_connections: f64,
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
    /// The subprotocols `$connect` may answer with (comma-separated); by default whichever
    /// the client offered first.
    #[arg(long, value_delimiter = ',', env = settings::SUBPROTOCOLS)]
    subprotocols: Vec<String>,
    /// Handle a socket's messages concurrently, as API Gateway does (each message is its own
    /// Lambda invocation); by default one after the other.
    #[arg(long)]
    concurrent_messages: bool,
    /// Page origins allowed to call the gateway besides its own (comma-separated, such as
    /// `http://localhost:3000`); requests from other origins are refused with 403.
    #[arg(long, value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Host names the gateway answers to besides IP addresses and `localhost` (a tunnel's,
    /// say; comma-separated); requests for other hosts are refused with 403.
    #[arg(long, value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// Run the deployable functions instead of the in-process handlers: their `bootstrap`
    /// binaries from this directory (`deploy/.aws-sam/build` after `sam build`, or
    /// `target/lambda` after `cargo lambda build`), under a Lambda Runtime API the gateway
    /// serves, with the template's environment. Needs --dynamodb-endpoint.
    #[arg(long, requires = "dynamodb_endpoint")]
    lambdas: Option<PathBuf>,
    /// The template the functions' environment comes from (default: the one `sam build`
    /// left in the --lambdas directory, else deploy/template.yaml).
    #[arg(long, requires = "lambdas")]
    template: Option<PathBuf>,
    /// With --lambdas: an SQS endpoint (moto's, say) where the template's notification queue
    /// is created and polled as the pusher's event source mapping would.
    #[arg(long, requires = "lambdas")]
    sqs_endpoint: Option<String>,
    /// The notification queue's name on --sqs-endpoint (its dead-letter queue: NAME-dlq).
    #[arg(
        long,
        default_value = "wspush-notifications",
        requires = "sqs_endpoint"
    )]
    queue_name: String,
}

/// The template parameters the gateway's options stand for, as `sam deploy
/// --parameter-overrides` would set them, so that the functions read what the in-process
/// handlers are given.
fn template_parameters(args: &Args, jwks: Option<&str>) -> BTreeMap<String, String> {
    let list = |values: &[String]| values.join(",");
    let mut parameters: BTreeMap<String, String> = [
        ("AllowedTopicNamespaces", list(&args.allowed_namespaces)),
        (
            "MaxSubscriptionsPerConnection",
            args.max_subscriptions_per_connection.to_string(),
        ),
        (
            "MaxTopicsPerMessage",
            args.max_topics_per_message.to_string(),
        ),
        ("JwtTopicsClaim", args.jwt_topics_claim.clone()),
        ("HistoryNamespaces", list(&args.history_namespaces)),
        ("HistoryTtlSeconds", args.history_ttl_secs.to_string()),
        ("HistorySize", args.history_size.to_string()),
        ("PresenceNamespaces", list(&args.presence_namespaces)),
        ("Subprotocols", list(&args.subprotocols)),
        ("PusherMaxInFlight", args.max_in_flight.to_string()),
        (
            "PusherMaxPostsPerSecond",
            args.max_posts_per_second
                .0
                .map_or_else(|| "off".to_owned(), |rate| rate.to_string()),
        ),
        ("Transport", args.transport.as_str().to_owned()),
        (
            "EmptyListsMeanEveryone",
            args.empty_lists_mean_everyone.to_string(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    for (name, value) in [
        ("JwtHs256Secret", args.jwt_hs256_secret.as_deref()),
        ("JwtJwks", jwks),
        ("JwtJwksUrl", args.jwt_jwks_url.as_deref()),
        ("JwtIssuer", args.jwt_issuer.as_deref()),
        ("JwtAudience", args.jwt_audience.as_deref()),
    ] {
        if let Some(value) = value {
            parameters.insert(name.to_owned(), value.to_owned());
        }
    }
    parameters
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

/// The token verifier the `--jwt-*` arguments describe, read by the same settings code as
/// the connect Lambda's `WSPUSH_JWT_*` variables, so both accept and refuse alike.
async fn token_verifier(
    args: &Args,
    jwks: Option<&str>,
) -> anyhow::Result<Option<Arc<TokenVerifier>>> {
    let jwks = jwks.map(str::to_owned);
    let lookup = |key: &str| match key {
        settings::JWT_HS256_SECRET => args.jwt_hs256_secret.clone(),
        settings::JWT_JWKS => jwks.clone(),
        settings::JWT_JWKS_URL => args.jwt_jwks_url.clone(),
        settings::JWT_ISSUER => args.jwt_issuer.clone(),
        settings::JWT_AUDIENCE => args.jwt_audience.clone(),
        settings::JWT_TOPICS_CLAIM => Some(args.jwt_topics_claim.clone()),
        settings::JWT_LEEWAY_SECONDS => Some(args.jwt_leeway_secs.to_string()),
        _ => None,
    };
    let identity = Settings::from_lookup(lookup)
        .identity_plan()
        .context("the token arguments (--jwt-*)")?
        .resolve(|keys| match keys {
            RemoteKeys::JwksUrl { url, .. } => {
                Ok(Arc::new(HttpDocument::new(url)?) as Arc<dyn RemoteDocument>)
            }
            RemoteKeys::SecretArn(arn) => Err(RemoteError::new(
                arn,
                RemoteProblem::Unusable(
                    "the local gateway takes the secret itself (--jwt-hs256-secret)",
                ),
            )),
        })
        .await
        .context("the token arguments (--jwt-*)")?;
    Ok(identity.token)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    anyhow::ensure!(
        args.max_subscriptions_per_connection > 0 && args.max_topics_per_message > 0,
        "--max-subscriptions-per-connection and --max-topics-per-message must be at least 1"
    );
    anyhow::ensure!(
        args.max_topics_per_message <= settings::MAX_TOPICS_PER_MESSAGE_LIMIT,
        "--max-topics-per-message must be at most {}: a message's topics are written in one DynamoDB transaction",
        settings::MAX_TOPICS_PER_MESSAGE_LIMIT
    );
    let mut policy = SubscriptionPolicy::default()
        .with_max_subscriptions_per_connection(args.max_subscriptions_per_connection)
        .with_max_topics_per_message(args.max_topics_per_message);
    if !args.allowed_namespaces.is_empty() {
        policy = policy.with_allowed_namespaces(args.allowed_namespaces.clone());
    }
    let history = HistoryPolicy::new(
        args.history_namespaces
            .iter()
            .map(|namespace| namespace.trim())
            .filter(|namespace| !namespace.is_empty()),
        Duration::from_secs(args.history_ttl_secs),
        args.history_size,
    )
    .context("the history arguments (--history-*)")?;
    let presence = PresencePolicy::new(
        args.presence_namespaces
            .iter()
            .map(|namespace| namespace.trim())
            .filter(|namespace| !namespace.is_empty()),
    )
    .context("the argument --presence-namespaces")?;
    let jwks = match &args.jwt_jwks_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading --jwt-jwks-file {}", path.display()))?,
        ),
        None => None,
    };
    let token = token_verifier(&args, jwks.as_deref()).await?;
    let tokens_required = token.is_some();
    let config = LocalConfig {
        address: SocketAddr::new(args.host, args.port),
        stage: args.stage.clone(),
        identity_param: args.identity_param.clone(),
        token,
        store: match (args.dynamodb_endpoint.clone(), args.table.clone()) {
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
        transport: args.transport,
        empty_lists_mean_everyone: args.empty_lists_mean_everyone,
        history,
        presence,
        faults: Faults {
            latency: Duration::from_millis(args.post_latency_ms),
            jitter: Duration::from_millis(args.post_jitter_ms),
            throttle_rate: rate("throttle-rate", args.throttle_rate)?,
            error_rate: rate("error-rate", args.error_rate)?,
            requests_per_second: args.requests_per_second,
            lose_disconnects: args.lose_disconnects,
            slow_connections: rate("slow-connections", args.slow_connections)?,
        },
        subprotocols: (!args.subprotocols.is_empty()).then(|| args.subprotocols.clone()),
        concurrent_messages: args.concurrent_messages,
        allowed_origins: args.allowed_origins.clone(),
        allowed_hosts: args.allowed_hosts.clone(),
        functions: match &args.lambdas {
            Some(dir) => Some(FunctionsConfig {
                dir: dir.clone(),
                template: args.template.clone().unwrap_or_else(|| {
                    let built = dir.join("template.yaml");
                    match built.is_file() {
                        true => built,
                        false => PathBuf::from("deploy/template.yaml"),
                    }
                }),
                parameters: template_parameters(&args, jwks.as_deref()),
                sqs: args.sqs_endpoint.clone().map(|endpoint| SqsEndpoint {
                    endpoint,
                    queue_name: args.queue_name.clone(),
                }),
            }),
            None => None,
        },
    };
    let handlers = match &config.functions {
        Some(functions) => format!("the functions in {}", functions.dir.display()),
        None => "in-process handlers".to_owned(),
    };
    let store = match &config.store {
        StoreChoice::Memory => "in-memory".to_owned(),
        StoreChoice::DynamoDb { endpoint, table } => {
            format!("DynamoDB table {table} at {endpoint}")
        }
    };
    let gateway = start(config).await.context("starting the local gateway")?;
    let param = &args.identity_param;
    println!("wspush local gateway ({store} store, {handlers})");
    println!("  demo page:       {}", gateway.demo_url());
    if tokens_required {
        println!(
            "  WebSocket:       {}?token=<JWT> (or the JWT as a Sec-WebSocket-Protocol value)",
            gateway.websocket_url()
        );
    } else {
        println!(
            "  WebSocket:       {}?{param}=<user id>",
            gateway.websocket_url()
        );
    }
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
