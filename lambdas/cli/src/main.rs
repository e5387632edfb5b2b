//! `wspush`: send notification requests and inspect the connection store from a shell.
//!
//! Exit codes: 0 success; 1 a failure the command could not get past (a publish or push
//! failed, the store or gateway failed); 2 invalid input (arguments, IDs, data).

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wspush_adapters::aws::load_sdk_config;
use wspush_adapters::{
    ApiGatewayConfig, ApiGatewayGateway, DynamoDbStore, SnsPublisher, SqsPublisher, SystemClock,
};
use wspush_domain::{
    ConnectionId, ExternalId, NotificationRequest, Segment, Source, TopicGrants, UserId,
};
use wspush_ports::{
    Clock, ConnectionGateway, ConnectionStore, GatewayError, NotificationPublisher, stream_source,
};

const EXAMPLES: &str = "Examples:
  # to two users' connections, through the local gateway
  wspush notify --users u-1,u-2 --data '{\"text\":\"hi\"}'
  # to a topic except the sender's connection, through SQS
  wspush notify --via sqs --queue-url \"$QUEUE_URL\" --topics room:42 \\
      --exclude-connections L0SM9cOFvHcCIhw= --data '{\"type\":\"typing\"}'
  # to everyone but one user, through SNS
  wspush notify --via sns --topic-arn \"$TOPIC_ARN\" --broadcast --exclude-users u-1 --data '\"maintenance\"'
  # a request written as JSON, from a file or stdin
  echo '{\"users\":[\"u-1\"],\"data\":1}' | wspush notify --request -
  # the connection store (DynamoDB: WSPUSH_TABLE, AWS_ENDPOINT_URL_DYNAMODB)
  wspush connections count --table wspush-ConnectionsTable-ABC
  wspush connections list --json
  wspush connections prune --management-endpoint https://abc.execute-api.eu-west-1.amazonaws.com/prod
  # a development token for a local gateway started with the same WSPUSH_JWT_* variables
  wspush token --sub u-1 --topics 'room:*,ticker:AAPL'";

/// Send notification requests to wspush and inspect its connection store.
#[derive(Debug, Parser)]
#[command(name = "wspush", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send a notification request (to SQS, SNS or a local gateway).
    Notify(NotifyArgs),
    /// Print an HS256 token for development (a local gateway run with the same secret).
    Token(TokenArgs),
    /// List, count or prune the connections in the store.
    Connections {
        #[command(subcommand)]
        action: ConnectionsAction,
        /// The DynamoDB table (the endpoint follows AWS_ENDPOINT_URL_DYNAMODB).
        #[arg(long, env = "WSPUSH_TABLE", global = true)]
        table: Option<String>,
        /// A local gateway instead of DynamoDB (list and count only).
        #[arg(long, env = "WSPUSH_LOCAL_URL", global = true)]
        local_url: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Via {
    Sqs,
    Sns,
    Local,
}

#[derive(Debug, clap::Args)]
struct NotifyArgs {
    /// Users whose connections receive it (comma-separated).
    #[arg(long, value_delimiter = ',')]
    users: Vec<String>,
    /// Topics (external IDs) whose subscribers receive it.
    #[arg(long, value_delimiter = ',')]
    topics: Vec<String>,
    /// Connections that receive it.
    #[arg(long, value_delimiter = ',')]
    connections: Vec<String>,
    /// Send to every connection.
    #[arg(long, conflicts_with_all = ["users", "topics", "connections"])]
    broadcast: bool,
    /// Users who never receive it.
    #[arg(long, value_delimiter = ',')]
    exclude_users: Vec<String>,
    /// Connections that never receive it.
    #[arg(long, value_delimiter = ',')]
    exclude_connections: Vec<String>,
    /// The payload, as JSON.
    #[arg(long, required_unless_present = "request")]
    data: Option<String>,
    /// A whole request in wspush's JSON format, from a file or - for stdin.
    #[arg(long, conflicts_with_all = ["users", "topics", "connections", "broadcast", "exclude_users", "exclude_connections", "data"])]
    request: Option<String>,
    /// Where to send it.
    #[arg(long, value_enum, default_value = "local")]
    via: Via,
    /// The SQS queue URL (--via sqs).
    #[arg(long, env = "WSPUSH_QUEUE_URL")]
    queue_url: Option<String>,
    /// The SNS topic ARN (--via sns).
    #[arg(long, env = "WSPUSH_TOPIC_ARN")]
    topic_arn: Option<String>,
    /// The local gateway (--via local).
    #[arg(
        long,
        env = "WSPUSH_LOCAL_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    local_url: String,
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The user (`sub`).
    #[arg(long)]
    sub: String,
    /// Topics the token grants: exact topics, `namespace:*` or `*` (comma-separated).
    #[arg(long, value_delimiter = ',')]
    topics: Vec<String>,
    /// Seconds until it expires.
    #[arg(long, default_value_t = 3600)]
    ttl_secs: u64,
    /// The HS256 secret (at least 32 bytes).
    #[arg(long, env = "WSPUSH_JWT_HS256_SECRET", hide_env_values = true)]
    secret: String,
    /// The issuer (`iss`).
    #[arg(long, env = "WSPUSH_JWT_ISSUER")]
    issuer: String,
    /// The audience (`aud`).
    #[arg(long, env = "WSPUSH_JWT_AUDIENCE")]
    audience: String,
    /// The claim the topics go in.
    #[arg(long, env = "WSPUSH_JWT_TOPICS_CLAIM", default_value = "topics")]
    topics_claim: String,
}

#[derive(Debug, Subcommand)]
enum ConnectionsAction {
    /// Print every live connection.
    List,
    /// Print how many live connections there are.
    Count,
    /// Ask API Gateway about each connection and delete the ones it no longer has.
    Prune {
        /// The @connections endpoint (https://{api}.execute-api.{region}.amazonaws.com/{stage}).
        #[arg(long, env = "WSPUSH_MANAGEMENT_ENDPOINT")]
        management_endpoint: String,
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Invalid input: exit code 2.
#[derive(Debug)]
struct Invalid(String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

fn invalid(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Invalid(message.into()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = if error.downcast_ref::<Invalid>().is_some() {
                2
            } else {
                1
            };
            if json {
                eprintln!("{}", json!({"error": format!("{error:#}")}));
            } else {
                eprintln!("error: {error:#}");
            }
            ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Notify(args) => notify(args, cli.json).await,
        Command::Token(args) => token(&args),
        Command::Connections {
            action,
            table,
            local_url,
        } => connections(action, table, local_url, cli.json).await,
    }
}

/// Prints a signed development token.
fn token(args: &TokenArgs) -> anyhow::Result<()> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    UserId::parse(args.sub.as_str()).map_err(|error| invalid(format!("--sub: {error}")))?;
    TopicGrants::parse(args.topics.iter().map(String::as_str))
        .map_err(|error| invalid(format!("--topics: {error}")))?;
    if args.secret.len() < 32 {
        return Err(invalid("--secret must be at least 32 bytes"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let mut claims = json!({
        "sub": args.sub, "iss": args.issuer, "aud": args.audience,
        "iat": now, "exp": now.saturating_add(args.ttl_secs),
    });
    if args.topics_claim != "off" {
        claims[&args.topics_claim] = json!(args.topics);
    }
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(args.secret.as_bytes()),
    )
    .context("signing the token")?;
    println!("{token}");
    Ok(())
}

fn ids<T>(
    field: &str,
    values: &[String],
    parse: fn(String) -> Result<T, wspush_domain::IdError>,
) -> anyhow::Result<Vec<T>> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            parse(value.clone()).map_err(|error| invalid(format!("--{field}[{index}]: {error}")))
        })
        .collect()
}

fn build_request(args: &NotifyArgs) -> anyhow::Result<NotificationRequest> {
    if let Some(source) = &args.request {
        let mut text = String::new();
        if source == "-" {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the request from stdin")?;
        } else {
            text = std::fs::read_to_string(source).with_context(|| format!("reading {source}"))?;
        }
        return NotificationRequest::parse(&text)
            .map_err(|error| invalid(format!("--request: {error}")));
    }
    let data = args.data.as_deref().unwrap_or_default();
    let data: Value = serde_json::from_str(data).map_err(|error| {
        invalid(format!(
            "--data is not JSON ({error}); quote a string as '\"text\"'"
        ))
    })?;
    let mut builder = NotificationRequest::builder()
        .to_users(ids("users", &args.users, UserId::parse)?)
        .to_topics(ids("topics", &args.topics, ExternalId::parse)?)
        .to_connections(ids("connections", &args.connections, ConnectionId::parse)?)
        .except_users(ids("exclude-users", &args.exclude_users, UserId::parse)?)
        .except_connections(ids(
            "exclude-connections",
            &args.exclude_connections,
            ConnectionId::parse,
        )?)
        .data(&data);
    if args.broadcast {
        builder = builder.broadcast();
    }
    builder.build().map_err(|error| {
        invalid(format!(
            "{error} (name --users, --topics or --connections, or pass --broadcast)"
        ))
    })
}

async fn notify(args: NotifyArgs, json_output: bool) -> anyhow::Result<()> {
    let request = build_request(&args)?;
    let answer = match args.via {
        Via::Local => {
            let (status, body) =
                post_local(&args.local_url, "/notifications", &request.to_json()).await?;
            let report: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
            if json_output {
                println!("{report}");
            } else {
                println!(
                    "delivered {}, pruned {}, failed {}, excluded {}",
                    report["delivered"],
                    report["pruned"],
                    report["failed"].as_array().map_or(0, Vec::len),
                    report["excluded"]
                );
            }
            return match status {
                200 => Ok(()),
                400 => Err(invalid(format!(
                    "the local gateway refused the request: {}",
                    report["error"]
                ))),
                _ => Err(anyhow!(
                    "the push did not reach every connection (HTTP {status})"
                )),
            };
        }
        Via::Sqs => {
            let queue_url = args
                .queue_url
                .ok_or_else(|| invalid("--via sqs needs --queue-url or WSPUSH_QUEUE_URL"))?;
            SqsPublisher::new(&load_sdk_config().await, queue_url)
                .publish(&request)
                .await
        }
        Via::Sns => {
            let topic_arn = args
                .topic_arn
                .ok_or_else(|| invalid("--via sns needs --topic-arn or WSPUSH_TOPIC_ARN"))?;
            SnsPublisher::new(&load_sdk_config().await, topic_arn)
                .publish(&request)
                .await
        }
    };
    let message_id = answer.context("publishing the request")?;
    if json_output {
        println!("{}", json!({"message_id": message_id}));
    } else {
        println!("published: {message_id}");
    }
    Ok(())
}

/// A plain HTTP/1.1 POST to a local gateway (http only: it listens on loopback).
async fn post_local(base: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let authority = base
        .strip_prefix("http://")
        .ok_or_else(|| invalid(format!("--local-url must start with http://, got {base}")))?
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to the local gateway at {base} (is `cargo run -p wspush-local` running?)"))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("the local gateway answered something that is not HTTP"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    Ok((status, body))
}

async fn connections(
    action: ConnectionsAction,
    table: Option<String>,
    local_url: Option<String>,
    json_output: bool,
) -> anyhow::Result<()> {
    let Some(table) = table else {
        if local_url.is_some() {
            bail!(invalid(
                "the local gateway keeps its connections in its own process; use --table with `wspush-local --dynamodb-endpoint ... --table ...`"
            ));
        }
        return Err(invalid("name the store: --table or WSPUSH_TABLE"));
    };
    let sdk = load_sdk_config().await;
    let store = Arc::new(DynamoDbStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
    ));
    let now = SystemClock.now();
    let gateway = match &action {
        ConnectionsAction::Prune {
            management_endpoint,
            ..
        } => Some(ApiGatewayGateway::new(
            &sdk,
            &ApiGatewayConfig::new(management_endpoint),
        )),
        _ => None,
    };
    let (mut count, mut pruned) = (0usize, 0usize);
    for segment in Segment::all(4).map_err(|error| anyhow!(error))? {
        let mut pages = Box::pin(stream_source(
            Arc::clone(&store),
            Source::All(segment),
            500,
            now,
        ));
        while let Some(page) = pages.next().await {
            for connection in page.context("reading the store")? {
                count += 1;
                match (&action, &gateway) {
                    (ConnectionsAction::List, _) => {
                        if json_output {
                            println!("{}", json!(connection));
                        } else {
                            println!(
                                "{}\t{}\texpires {}",
                                connection.id(),
                                connection.user(),
                                connection.expires_at()
                            );
                        }
                    }
                    (ConnectionsAction::Prune { dry_run, .. }, Some(gateway)) => {
                        match gateway.get(connection.id()).await {
                            Err(GatewayError::Gone) => {
                                pruned += 1;
                                if !dry_run {
                                    store
                                        .delete(connection.id())
                                        .await
                                        .context("deleting a gone connection")?;
                                }
                                if !json_output {
                                    println!("gone: {}", connection.id());
                                }
                            }
                            Ok(_) => {}
                            Err(error) => {
                                return Err(anyhow!(error).context(format!(
                                    "asking API Gateway about {}",
                                    connection.id()
                                )));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    match action {
        ConnectionsAction::List => {}
        ConnectionsAction::Count => {
            if json_output {
                println!("{}", json!({"count": count}));
            } else {
                println!("{count}");
            }
        }
        ConnectionsAction::Prune { dry_run, .. } => {
            if json_output {
                println!(
                    "{}",
                    json!({"checked": count, "gone": pruned, "deleted": !dry_run})
                );
            } else {
                println!(
                    "checked {count}, gone {pruned}{}",
                    if dry_run {
                        " (dry run: nothing deleted)"
                    } else {
                        ", deleted"
                    }
                );
            }
        }
    }
    Ok(())
}
