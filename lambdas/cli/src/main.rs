//! `wspush`: send notification requests and inspect the connection store from a shell.
//!
//! Exit codes: 0 success; 1 a failure the command could not get past (a publish or push
//! failed, the store or gateway failed); 2 invalid input (arguments, IDs, data).
//!
//! What belongs here: parsing the arguments, calling a publisher or a service, printing the
//! answer; one file per command (`notify`, `connections`, `token`). What must not: a use case
//! of its own (pruning is `ConnectionService::prune_gone`).

mod connections;
mod control;
mod notify;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use wspush_domain::ControlAction;
use wspush_handlers::settings::names;

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
  # a backend's control of its users' connections (through the same queue), and a topic's occupancy
  wspush disconnect --users u-1 --via sqs --queue-url \"$QUEUE_URL\"
  wspush subscribe --users u-1,u-2 --topics room:42
  wspush occupancy --topic room:42 --table wspush-ConnectionsTable-ABC
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
    /// Close every connection of the given users or connections (logout, ban).
    Disconnect(ControlArgs),
    /// Subscribe every live connection of the given users to topics (the client policy does
    /// not apply).
    Subscribe(ControlArgs),
    /// Unsubscribe every live connection of the given users from topics.
    Unsubscribe(ControlArgs),
    /// How many live connections, and distinct users, a topic has.
    Occupancy(OccupancyArgs),
    /// List, count or prune the connections in the store.
    Connections {
        #[command(subcommand)]
        action: ConnectionsAction,
        /// The DynamoDB table (the endpoint follows AWS_ENDPOINT_URL_DYNAMODB).
        #[arg(long, env = names::TABLE, global = true)]
        table: Option<String>,
        /// A local gateway instead of DynamoDB (list and count only).
        #[arg(long, env = names::LOCAL_URL, global = true)]
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
    #[arg(long, env = names::QUEUE_URL)]
    queue_url: Option<String>,
    /// The SNS topic ARN (--via sns).
    #[arg(long, env = names::TOPIC_ARN)]
    topic_arn: Option<String>,
    /// The local gateway (--via local).
    #[arg(
        long,
        env = names::LOCAL_URL,
        default_value = "http://127.0.0.1:8080"
    )]
    local_url: String,
}

#[derive(Debug, clap::Args)]
struct ControlArgs {
    /// Users whose live connections are acted on (comma-separated).
    #[arg(long, value_delimiter = ',')]
    users: Vec<String>,
    /// Connections acted on.
    #[arg(long, value_delimiter = ',')]
    connections: Vec<String>,
    /// The topics (subscribe and unsubscribe).
    #[arg(long, value_delimiter = ',')]
    topics: Vec<String>,
    /// Where to send it.
    #[arg(long, value_enum, default_value = "local")]
    via: Via,
    /// The SQS queue URL (--via sqs).
    #[arg(long, env = names::QUEUE_URL)]
    queue_url: Option<String>,
    /// The SNS topic ARN (--via sns).
    #[arg(long, env = names::TOPIC_ARN)]
    topic_arn: Option<String>,
    /// The local gateway (--via local).
    #[arg(
        long,
        env = names::LOCAL_URL,
        default_value = "http://127.0.0.1:8080"
    )]
    local_url: String,
}

#[derive(Debug, clap::Args)]
struct OccupancyArgs {
    /// The topic.
    #[arg(long)]
    topic: String,
    /// The DynamoDB table (the endpoint follows AWS_ENDPOINT_URL_DYNAMODB).
    #[arg(long, env = names::TABLE)]
    table: Option<String>,
    /// A local gateway instead of DynamoDB.
    #[arg(long, env = names::LOCAL_URL)]
    local_url: Option<String>,
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
    #[arg(long, env = names::JWT_HS256_SECRET, hide_env_values = true)]
    secret: String,
    /// The issuer (`iss`).
    #[arg(long, env = names::JWT_ISSUER)]
    issuer: String,
    /// The audience (`aud`).
    #[arg(long, env = names::JWT_AUDIENCE)]
    audience: String,
    /// The claim the topics go in.
    #[arg(long, env = names::JWT_TOPICS_CLAIM, default_value = "topics")]
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
        #[arg(long, env = names::MANAGEMENT_ENDPOINT)]
        management_endpoint: String,
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// The namespaces that keep presence, as the functions' setting: the leaves of the
        /// pruned connections are enqueued to --queue-url.
        #[arg(long, value_delimiter = ',', env = names::PRESENCE_NAMESPACES)]
        presence_namespaces: Vec<String>,
        /// The notification queue the leaves go to (with --presence-namespaces).
        #[arg(long, env = names::QUEUE_URL)]
        queue_url: Option<String>,
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
        Command::Notify(args) => notify::notify(args, cli.json).await,
        Command::Token(args) => token::token(&args),
        Command::Disconnect(args) => {
            control::control(ControlAction::Disconnect, args, cli.json).await
        }
        Command::Subscribe(args) => {
            control::control(ControlAction::Subscribe, args, cli.json).await
        }
        Command::Unsubscribe(args) => {
            control::control(ControlAction::Unsubscribe, args, cli.json).await
        }
        Command::Occupancy(args) => control::occupancy(args, cli.json).await,
        Command::Connections {
            action,
            table,
            local_url,
        } => connections::connections(action, table, local_url, cli.json).await,
    }
}
