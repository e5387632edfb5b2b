//! Fan-out benchmark: the real pusher against the local gateway's `@connections` API with an
//! injected post latency, compared with the ideal `ceil(N / C) x L`.
//!
//! ```sh
//! cargo run --release -p wspush-integration-tests --bin bench
//! cargo run --release -p wspush-integration-tests --bin bench -- --sizes 1000,10000 --stores memory --runs 5
//! ```
//!
//! This process runs the local gateway (`wspush-local`, with `L` ms added to every post) and
//! registers the audience there as virtual connections, which count what they receive. Each
//! measured push runs in a fresh child process (`bench push`), so that its `getrusage` CPU
//! time and peak resident memory are that push's own: the child builds the pusher exactly as
//! the pusher Lambda does (`PushService` over `ApiGatewayGateway`: SigV4-signed HTTP posts,
//! `C` in flight) and reads the audience, one topic of `N` subscribers, from the in-memory
//! store (loaded in the child, so its memory counts) or from DynamoDB Local (its own process;
//! the table is loaded once per size). Like the pusher Lambda, the child runs a current-thread
//! Tokio runtime (`--multi-thread` to compare) with no post-rate ceiling (the default 8,000
//! posts/s would bind before `C / L`), and it first pushes to `C` other connections,
//! so that the measured push finds its HTTP connection pool open as in a warm Lambda
//! (`--cold-pool` to skip). After each push the gateway's tally must show every connection
//! reached exactly once, or the benchmark fails.
//!
//! Prints a Markdown table and draws wall time against `N` (with the ideal) to a PNG.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::{StreamExt, TryStreamExt, stream};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::{TimeVal, TimeValLike};
use serde::{Deserialize, Serialize};
use wspush_adapters::aws::local_sdk_config;
use wspush_adapters::{
    ApiGatewayConfig, ApiGatewayGateway, DynamoDbStore, MemoryStore, SystemClock,
};
use wspush_domain::{Connection, ConnectionId, ExternalId, NotificationRequest, UserId};
use wspush_integration_tests::dynamodb_local::{CallCounter, DynamoDbFixture, client};
use wspush_local::{Faults, LocalConfig, start};
use wspush_ports::{Clock, ConnectionStore, PushConfig, PushService};

/// The measured audience: `N` connections subscribed to one topic.
const MEASURED: Audience = Audience {
    topic: "room:bench",
    prefix: "bench",
};
/// The warm-up audience: `C` connections on another topic, pushed to first so that the
/// measured push starts with the HTTP connection pool open, as in a warm Lambda.
const WARM_UP: Audience = Audience {
    topic: "room:warm-up",
    prefix: "warm",
};

/// Connections subscribed to one topic, with IDs `{prefix}{index:07}`.
#[derive(Debug, Clone, Copy)]
struct Audience {
    topic: &'static str,
    prefix: &'static str,
}

impl Audience {
    fn id(self, index: usize) -> String {
        format!("{}{index:07}", self.prefix)
    }

    /// Saves `count` connections, each subscribed to the topic, `concurrency` at a time.
    async fn load(
        self,
        store: &dyn ConnectionStore,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        let now = SystemClock.now();
        let topic = ExternalId::parse(self.topic)?;
        stream::iter(0..count)
            .map(|index| {
                let topic = topic.clone();
                async move {
                    let connection = Connection::open(
                        ConnectionId::parse(self.id(index))?,
                        UserId::parse(format!("{}-user-{index}", self.prefix))?,
                        now,
                    );
                    store.save(&connection).await?;
                    store.subscribe(&connection, &[topic], now).await?;
                    anyhow::Ok(())
                }
            })
            .buffer_unordered(concurrency)
            .try_collect::<()>()
            .await
            .with_context(|| format!("loading {count} connections"))
    }

    /// The notification pushed to the audience: about 200 bytes, like a live update.
    fn request(self) -> anyhow::Result<NotificationRequest> {
        let json = format!(
            r#"{{"topics":["{}"],"data":{{"type":"quote","symbol":"ACME","price":101.25,"change":-0.42,"sequence":18446744,"at":"2026-11-23T12:00:00.000Z","note":"benchmark payload of a realistic size for a live update"}}}}"#,
            self.topic
        );
        Ok(NotificationRequest::parse(&json)?)
    }
}

#[derive(Debug, Parser)]
#[command(about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    suite: Suite,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One measured push (run by the suite in a fresh process).
    #[command(hide = true)]
    Push(PushArgs),
}

/// The whole benchmark.
#[derive(Debug, Args)]
struct Suite {
    /// Audience sizes N.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    /// Latency L added by the gateway to every post, in milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Posts in flight C.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Stores to read the audience from.
    #[arg(long, value_delimiter = ',', default_value = "memory,dynamodb")]
    stores: Vec<StoreKind>,
    /// Measured pushes per store and size (the table shows their median).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where to draw the plot.
    #[arg(long, default_value = "integration-tests/results/fanout.png")]
    plot: PathBuf,
    /// Run each push on a multi-thread Tokio runtime, not a current-thread one as the pusher
    /// Lambda does.
    #[arg(long)]
    multi_thread: bool,
    /// Skip the warm-up push: by default each child first pushes to C other connections, so
    /// that the measured push finds its HTTP connection pool open, as a warm Lambda does.
    #[arg(long)]
    cold_pool: bool,
    /// A ceiling on posts per second, as the pusher's `max_posts_per_second` (default: none,
    /// since the ideal has none; the pusher Lambda's default is 8,000).
    #[arg(long)]
    max_posts_per_second: Option<u32>,
    /// A TrueType font for the plot's text.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    font: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
enum StoreKind {
    Memory,
    #[value(name = "dynamodb")]
    DynamoDb,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::DynamoDb => "dynamodb",
        }
    }
}

#[derive(Debug, Args)]
struct PushArgs {
    #[arg(long)]
    store: StoreKind,
    #[arg(long)]
    connections: usize,
    #[arg(long)]
    in_flight: usize,
    /// The `@connections` endpoint, such as `http://127.0.0.1:PORT/bench`.
    #[arg(long)]
    management_endpoint: String,
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    #[arg(long)]
    table: Option<String>,
    #[arg(long)]
    multi_thread: bool,
    #[arg(long)]
    warm_up: bool,
    #[arg(long)]
    max_posts_per_second: Option<u32>,
}

/// What one push measured, as the child prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Measurement {
    wall_us: u64,
    user_us: u64,
    system_us: u64,
    rss_before_kb: u64,
    peak_rss_kb: u64,
    delivered: usize,
    store_calls: usize,
}

impl Measurement {
    fn cpu_us_per_message(&self) -> f64 {
        (self.user_us + self.system_us) as f64 / self.delivered.max(1) as f64
    }
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
            let measurement = runtime.block_on(push_once(args))?;
            println!("{}", serde_json::to_string(&measurement)?);
            Ok(())
        }
        None => runtime.block_on(suite(cli.suite)),
    }
}

/// The child: builds the store and the pusher, then measures one push.
async fn push_once(args: PushArgs) -> anyhow::Result<Measurement> {
    let calls = CallCounter::default();
    let store: Arc<dyn ConnectionStore> = match args.store {
        StoreKind::Memory => {
            let store = MemoryStore::new();
            MEASURED.load(&store, args.connections, 1).await?;
            if args.warm_up {
                WARM_UP.load(&store, args.in_flight, 1).await?;
            }
            Arc::new(store)
        }
        StoreKind::DynamoDb => {
            let endpoint = args.dynamodb_endpoint.context("--dynamodb-endpoint")?;
            let table = args.table.context("--table")?;
            Arc::new(DynamoDbStore::new(client(&endpoint, calls.clone()), table))
        }
    };
    let sdk = local_sdk_config("us-east-1", "bench", "bench");
    let gateway = ApiGatewayGateway::new(&sdk, &ApiGatewayConfig::new(args.management_endpoint));
    let pusher = PushService::new(
        store,
        Arc::new(gateway),
        Arc::new(SystemClock),
        PushConfig {
            max_in_flight: args.in_flight,
            // None by default: the ideal `ceil(N / C) x L` has no rate ceiling. (At C / L =
            // 12,800 posts/s, the Lambda's default of 8,000/s would bind instead.)
            max_posts_per_second: args.max_posts_per_second,
            ..PushConfig::default()
        },
    )?;
    let request = MEASURED.request()?;
    if args.warm_up {
        let report = pusher.push(&WARM_UP.request()?).await;
        ensure!(
            report.is_complete(),
            "the warm-up push was not complete: {report:?}"
        );
        calls.reset();
    }

    let rss_before_kb = resident_kb("VmRSS")?;
    let before = getrusage(UsageWho::RUSAGE_SELF)?;
    let started = Instant::now();
    let report = pusher.push(&request).await;
    let wall = started.elapsed();
    let after = getrusage(UsageWho::RUSAGE_SELF)?;

    ensure!(
        report.is_complete() && report.delivered == args.connections,
        "the push was not complete: {report:?}"
    );
    Ok(Measurement {
        wall_us: micros(wall),
        user_us: cpu_us(after.user_time()).saturating_sub(cpu_us(before.user_time())),
        system_us: cpu_us(after.system_time()).saturating_sub(cpu_us(before.system_time())),
        rss_before_kb,
        // Linux reports `ru_maxrss` in kilobytes.
        peak_rss_kb: u64::try_from(after.max_rss())?,
        delivered: report.delivered,
        store_calls: calls.total(),
    })
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn cpu_us(time: TimeVal) -> u64 {
    u64::try_from(time.num_microseconds()).unwrap_or(0)
}

/// A `kB` line of `/proc/self/status`, such as `VmRSS`.
fn resident_kb(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

/// One row of the table: the runs of one store at one size.
struct Row {
    store: StoreKind,
    connections: usize,
    runs: Vec<Measurement>,
}

impl Row {
    fn median(&self, value: impl Fn(&Measurement) -> f64) -> f64 {
        let mut values: Vec<f64> = self.runs.iter().map(value).collect();
        values.sort_by(f64::total_cmp);
        match values.len() {
            0 => f64::NAN,
            len if len % 2 == 1 => values[len / 2],
            len => (values[len / 2 - 1] + values[len / 2]) / 2.0,
        }
    }

    fn wall_ms(&self) -> f64 {
        self.median(|run| run.wall_us as f64 / 1000.0)
    }
}

fn ideal_ms(connections: usize, in_flight: usize, latency_ms: u64) -> f64 {
    (connections.div_ceil(in_flight) as u64 * latency_ms) as f64
}

async fn suite(suite: Suite) -> anyhow::Result<()> {
    ensure!(
        suite.runs > 0 && suite.in_flight > 0,
        "--runs and --in-flight must be at least 1"
    );
    let executable = std::env::current_exe()?;
    let gateway = start(LocalConfig {
        stage: "bench".to_owned(),
        faults: Faults {
            latency: Duration::from_millis(suite.latency_ms),
            ..Faults::default()
        },
        ..LocalConfig::default()
    })
    .await?;
    eprintln!(
        "gateway at {} with {} ms per post; {} posts in flight",
        gateway.management_endpoint(),
        suite.latency_ms,
        suite.in_flight
    );

    let mut rows = Vec::new();
    for &store in &suite.stores {
        for &connections in &suite.sizes {
            let fixture = match store {
                StoreKind::Memory => None,
                StoreKind::DynamoDb => {
                    let fixture = DynamoDbFixture::new().await;
                    let started = Instant::now();
                    MEASURED.load(&fixture.store, connections, 32).await?;
                    if !suite.cold_pool {
                        WARM_UP.load(&fixture.store, suite.in_flight, 32).await?;
                    }
                    eprintln!(
                        "loaded {connections} connections into DynamoDB Local in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                    Some(fixture)
                }
            };
            let mut row = Row {
                store,
                connections,
                runs: Vec::new(),
            };
            for run in 1..=suite.runs {
                let warm_up = if suite.cold_pool { 0 } else { suite.in_flight };
                gateway.set_virtual_connections(
                    (0..connections)
                        .map(|index| MEASURED.id(index))
                        .chain((0..warm_up).map(|index| WARM_UP.id(index))),
                );
                let mut command = tokio::process::Command::new(&executable);
                command
                    .args(["push", "--store", store.name()])
                    .args(["--connections", &connections.to_string()])
                    .args(["--in-flight", &suite.in_flight.to_string()])
                    .args(["--management-endpoint", &gateway.management_endpoint()]);
                if suite.multi_thread {
                    command.arg("--multi-thread");
                }
                if !suite.cold_pool {
                    command.arg("--warm-up");
                }
                if let Some(rate) = suite.max_posts_per_second {
                    command.args(["--max-posts-per-second", &rate.to_string()]);
                }
                if let Some(fixture) = &fixture {
                    command
                        .args(["--dynamodb-endpoint", &fixture.endpoint])
                        .args(["--table", fixture.store.table()]);
                }
                let output = command
                    .stderr(Stdio::inherit())
                    .kill_on_drop(true)
                    .output()
                    .await
                    .context("running a push")?;
                if !output.status.success() {
                    bail!("the push child failed: {}", output.status);
                }
                let measurement: Measurement = serde_json::from_slice(&output.stdout)
                    .context("reading the push child's measurement")?;
                let tally = gateway.virtual_tally();
                ensure!(
                    tally.exactly_once == connections + warm_up
                        && tally.messages == (connections + warm_up) as u64,
                    "the gateway did not see every connection reached exactly once: {tally:?}"
                );
                eprintln!(
                    "{} N={connections} run {run}: {:.1} ms, {:.1} us CPU/message, peak RSS {:.1} MB",
                    store.name(),
                    measurement.wall_us as f64 / 1000.0,
                    measurement.cpu_us_per_message(),
                    measurement.peak_rss_kb as f64 / 1024.0
                );
                row.runs.push(measurement);
            }
            if let Some(fixture) = fixture {
                fixture.finish().await;
            }
            rows.push(row);
        }
    }
    gateway.shutdown().await?;

    print_table(&suite, &rows);
    if let Some(parent) = suite.plot.parent() {
        std::fs::create_dir_all(parent)?;
    }
    plot(&suite, &rows)?;
    eprintln!("plot: {}", suite.plot.display());
    Ok(())
}

fn print_table(suite: &Suite, rows: &[Row]) {
    println!(
        "| store | N | ideal (ms) | wall, median (ms) | min-max (ms) | wall / ideal | CPU per message (us) | peak RSS (MB) | RSS before the push (MB) | deliveries/s | store calls |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let ideal = ideal_ms(row.connections, suite.in_flight, suite.latency_ms);
        let wall = row.wall_ms();
        let walls = row.runs.iter().map(|run| run.wall_us as f64 / 1000.0);
        let min = walls.clone().fold(f64::INFINITY, f64::min);
        let max = walls.fold(0.0, f64::max);
        println!(
            "| {} | {} | {ideal:.0} | {wall:.1} | {min:.1}-{max:.1} | {:.3} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} |",
            row.store.name(),
            row.connections,
            wall / ideal,
            row.median(Measurement::cpu_us_per_message),
            row.median(|run| run.peak_rss_kb as f64) / 1024.0,
            row.median(|run| run.rss_before_kb as f64) / 1024.0,
            row.connections as f64 / (wall / 1000.0),
            row.median(|run| run.store_calls as f64),
        );
    }
    for store in &suite.stores {
        let peak = |size: usize| {
            rows.iter()
                .find(|row| row.store == *store && row.connections == size)
                .map(|row| row.median(|run| run.peak_rss_kb as f64))
        };
        if let (Some(small), Some(large)) = (peak(10_000), peak(100_000)) {
            println!(
                "\n{}: peak RSS grows {:.2}x from N = 10,000 to N = 100,000",
                store.name(),
                large / small
            );
        }
    }
}

fn plot(suite: &Suite, rows: &[Row]) -> anyhow::Result<()> {
    use plotters::prelude::*;

    let font: &'static [u8] = Box::leak(
        std::fs::read(&suite.font)
            .with_context(|| {
                format!(
                    "reading the plot font {} (Debian: apt-get install fonts-dejavu-core, or pass --font)",
                    suite.font.display()
                )
            })?
            .into_boxed_slice(),
    );
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| anyhow!("{} is not a TrueType font", suite.font.display()))?;

    let smallest = suite.sizes.iter().copied().min().unwrap_or(1_000).max(1) as f64;
    let largest = suite.sizes.iter().copied().max().unwrap_or(100_000).max(2) as f64;
    let ideal = |n: f64| ideal_ms(n.round() as usize, suite.in_flight, suite.latency_ms);
    let highest = rows.iter().map(Row::wall_ms).fold(ideal(largest), f64::max);

    let root = BitMapBackend::new(&suite.plot, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "wspush fan-out: wall time vs audience (L = {} ms, C = {})",
                suite.latency_ms, suite.in_flight
            ),
            ("sans-serif", 24),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (smallest / 1.5..largest * 1.5).log_scale(),
            (ideal(smallest) / 1.5..highest * 1.5).log_scale(),
        )
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_desc("connections N (log)")
        .y_desc("wall time, ms (log)")
        .x_label_formatter(&|n| {
            // Powers of ten only: the log axis puts its labels too close for the rest.
            let exponent = n.log10().round();
            if (n - 10f64.powf(exponent)).abs() < 0.5 {
                format!("{n:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|ms| format!("{ms:.0}"))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(drawing)?;

    let steps = 200;
    let ideal_line: Vec<(f64, f64)> = (0..=steps)
        .map(|step| {
            let n = smallest * (largest / smallest).powf(f64::from(step) / f64::from(steps));
            (n, ideal(n))
        })
        .collect();
    chart
        .draw_series(LineSeries::new(ideal_line, BLACK.stroke_width(2)))
        .map_err(drawing)?
        .label("ideal: ceil(N / C) x L")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(2)));

    for (store, color) in [(StoreKind::Memory, BLUE), (StoreKind::DynamoDb, RED)] {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|row| row.store == store)
            .map(|row| (row.connections as f64, row.wall_ms()))
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(drawing)?
            .label(format!("{} store, median", store.name()))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|point| Circle::new(point, 5, color.filled())),
            )
            .map_err(drawing)?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(drawing)?;
    root.present().map_err(drawing)?;
    Ok(())
}

fn drawing(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the plot: {error}")
}
