//! Fan-out benchmark: the real pusher against the local gateway's `@connections` API with an
//! injected post latency, compared with the ideal `ceil(N / C) x L`.
//!
//! ```sh
//! cargo run --release -p wspush-bench --bin bench
//! cargo run --release -p wspush-bench --bin bench -- --sizes 1000,10000 --stores memory --runs 5
//! cargo run --release -p wspush-bench --bin bench -- memory --sizes 10000,100000
//! ```
//!
//! This process runs the local gateway (`wspush-local`, with `L` ms added to every post) and
//! registers the audience there as virtual connections, which count what they receive. Each
//! measured push runs in a fresh child process (`bench push`), so that its `getrusage` CPU
//! time and peak resident memory are that push's own: the child builds the pusher exactly as
//! the pusher Lambda does (`PushService` over `ApiGatewayGateway`: SigV4-signed HTTP posts,
//! `C` in flight, on the lean transport or the SDK's, `--transport sdk,lean` alternating) and reads the audience, one topic of `N` subscribers, from the in-memory
//! store (loaded in the child, so its memory counts) or from DynamoDB Local (its own process;
//! the table is loaded once per size). Like the pusher Lambda, the child runs a current-thread
//! Tokio runtime (`--multi-thread` to compare) with no post-rate ceiling (the default 8,000
//! posts/s would bind before `C / L`), and it first pushes to `C` other connections,
//! so that the measured push finds its HTTP connection pool open as in a warm Lambda
//! (`--cold-pool` to skip). After each push the gateway's tally must show every connection
//! reached exactly once, or the benchmark fails.
//!
//! Prints a Markdown table and draws wall time against `N` (with the ideal) to a PNG.

mod audience;
mod child;
mod memory;
mod output;
mod suite;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use wspush_adapters::Transport;

#[derive(Debug, Parser)]
#[command(about, args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) suite: Suite,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// One measured push (run by the suite in a fresh process).
    #[command(hide = true)]
    Push(PushArgs),
    /// What the in-memory store holds per connection (resident memory, fresh processes).
    Memory(memory::MemoryArgs),
}

/// The whole benchmark.
#[derive(Debug, Args)]
pub(crate) struct Suite {
    /// Audience sizes N.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub(crate) sizes: Vec<usize>,
    /// Latency L added by the gateway to every post, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub(crate) latency_ms: u64,
    /// Posts in flight C.
    #[arg(long, default_value_t = 256)]
    pub(crate) in_flight: usize,
    /// The `@connections` transports to push with (`sdk,lean` to compare them: each run
    /// pushes once on each, alternating, so that both see the same machine).
    #[arg(long, value_delimiter = ',', default_value = "lean")]
    pub(crate) transport: Vec<Transport>,
    /// Stores to read the audience from.
    #[arg(long, value_delimiter = ',', default_value = "memory,dynamodb")]
    pub(crate) stores: Vec<StoreKind>,
    /// Measured pushes per store and size (the table shows their median).
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
    /// Where to draw the plot.
    #[arg(long, default_value = "integration-tests/results/fanout.png")]
    pub(crate) plot: PathBuf,
    /// Run each push on a multi-thread Tokio runtime, not a current-thread one as the pusher
    /// Lambda does.
    #[arg(long)]
    pub(crate) multi_thread: bool,
    /// Skip the warm-up push: by default each child first pushes to C other connections, so
    /// that the measured push finds its HTTP connection pool open, as a warm Lambda does.
    #[arg(long)]
    pub(crate) cold_pool: bool,
    /// A ceiling on posts per second, as the pusher's `max_posts_per_second` (default: none,
    /// since the ideal has none; the pusher Lambda's default is 8,000).
    #[arg(long)]
    pub(crate) max_posts_per_second: Option<u32>,
    /// Keep history for the `room` namespace, so that each push is first appended to its
    /// topic's stream and sent as an envelope with its position (the audiences' topics are
    /// `room:*`).
    #[arg(long)]
    pub(crate) history: bool,
    /// Share of the connections (0 to 1) whose every post the gateway answers 429, as API
    /// Gateway answers a client that does not read: they are reported failed, the others
    /// must be delivered (compare with 0, under a post-rate ceiling).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) slow_connections: f64,
    /// The gateway's account throttle, posts per second (as `wspush-local
    /// --requests-per-second`): posts beyond it are answered 429, and the pusher must settle
    /// near it (the table's "posts/s" and "throttled" columns).
    #[arg(long)]
    pub(crate) requests_per_second: Option<u32>,
    /// A TrueType font for the plot's text.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    pub(crate) font: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub(crate) enum StoreKind {
    Memory,
    #[value(name = "dynamodb")]
    DynamoDb,
}

impl StoreKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::DynamoDb => "dynamodb",
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    #[arg(long)]
    pub(crate) store: StoreKind,
    #[arg(long)]
    pub(crate) connections: usize,
    #[arg(long)]
    pub(crate) in_flight: usize,
    #[arg(long)]
    pub(crate) transport: Transport,
    /// The `@connections` endpoint, such as `http://127.0.0.1:PORT/bench`.
    #[arg(long)]
    pub(crate) management_endpoint: String,
    #[arg(long)]
    pub(crate) dynamodb_endpoint: Option<String>,
    #[arg(long)]
    pub(crate) table: Option<String>,
    #[arg(long)]
    pub(crate) multi_thread: bool,
    #[arg(long)]
    pub(crate) warm_up: bool,
    #[arg(long)]
    pub(crate) max_posts_per_second: Option<u32>,
    #[arg(long)]
    pub(crate) history: bool,
    #[arg(long, default_value_t = 0.0)]
    pub(crate) slow_connections: f64,
    #[arg(long)]
    pub(crate) requests_per_second: Option<u32>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = match &cli.command {
        Some(Command::Push(args)) if !args.multi_thread => {
            tokio::runtime::Builder::new_current_thread()
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()?;
    match cli.command {
        Some(Command::Push(args)) => {
            let measurement = runtime.block_on(child::push_once(args))?;
            println!("{}", serde_json::to_string(&measurement)?);
            Ok(())
        }
        Some(Command::Memory(args)) => runtime.block_on(memory::memory(args)),
        None => runtime.block_on(suite::suite(cli.suite)),
    }
}
