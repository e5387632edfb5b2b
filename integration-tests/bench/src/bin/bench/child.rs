//! The child process: one measured push, with its own CPU time and memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::{TimeVal, TimeValLike};
use serde::{Deserialize, Serialize};
use wspush_adapters::aws::local_sdk_config;
use wspush_adapters::{
    ApiGatewayConfig, ApiGatewayGateway, DynamoDbStore, MemoryStore, SystemClock,
};
use wspush_domain::HistoryPolicy;
use wspush_integration_tests::dynamodb_local::{CallCounter, client};
use wspush_local::Faults;
use wspush_ports::{ConnectionStore, HistoryStore, PushConfig, PushService};

use crate::audience::{MEASURED, WARM_UP};
use crate::{PushArgs, StoreKind};

/// What one push measured, as the child prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Measurement {
    pub(crate) wall_us: u64,
    pub(crate) user_us: u64,
    pub(crate) system_us: u64,
    pub(crate) rss_before_kb: u64,
    pub(crate) peak_rss_kb: u64,
    pub(crate) delivered: usize,
    pub(crate) store_calls: usize,
    /// Posts answered 429 (first posts and retries).
    pub(crate) throttled: usize,
    /// Posts made: deliveries, 429s and other failed attempts.
    pub(crate) posts: usize,
    /// Connections reported failed (throttled after their retries), in the measured push
    /// and in the warm-up.
    pub(crate) failed: usize,
    pub(crate) warm_up_failed: usize,
}

impl Measurement {
    pub(crate) fn cpu_us_per_message(&self) -> f64 {
        (self.user_us + self.system_us) as f64 / self.delivered.max(1) as f64
    }
}

/// The child: builds the store and the pusher, then measures one push.
pub(crate) async fn push_once(args: PushArgs) -> anyhow::Result<Measurement> {
    let calls = CallCounter::default();
    let (store, history): (Arc<dyn ConnectionStore>, Arc<dyn HistoryStore>) = match args.store {
        StoreKind::Memory => {
            let store = MemoryStore::new();
            MEASURED.load(&store, args.connections, 1).await?;
            if args.warm_up {
                WARM_UP.load(&store, args.in_flight, 1).await?;
            }
            let store = Arc::new(store);
            (store.clone(), store)
        }
        StoreKind::DynamoDb => {
            let endpoint = args.dynamodb_endpoint.context("--dynamodb-endpoint")?;
            let table = args.table.context("--table")?;
            let store = Arc::new(DynamoDbStore::new(client(&endpoint, calls.clone()), table));
            (store.clone(), store)
        }
    };
    let history_policy = match args.history {
        true => HistoryPolicy::new(["room"], Duration::from_secs(900), 100)?,
        false => HistoryPolicy::default(),
    };
    let sdk = local_sdk_config("us-east-1", "bench", "bench");
    let mut management_api =
        ApiGatewayConfig::new(args.management_endpoint).with_transport(args.transport);
    management_api.pool_size = args.in_flight;
    let gateway = ApiGatewayGateway::new(&sdk, &management_api)?;
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
    )?
    .with_history(history, history_policy);
    let request = MEASURED.request()?;
    let slow = Faults {
        slow_connections: args.slow_connections,
        ..Faults::default()
    };
    let slow_among = |audience: crate::audience::Audience, size: usize| {
        (0..size)
            .filter(|index| slow.is_slow(&audience.id(*index)))
            .count()
    };
    // Under the account throttle (`--requests-per-second`), connections may be reported
    // failed, throttled after their retries, as long as every one is accounted for.
    let throttled_ok = |report: &wspush_ports::PushReport, connections: usize, slow: usize| {
        let all_throttled = report
            .failed
            .iter()
            .all(|failure| failure.reason == wspush_ports::FailureReason::Throttled);
        if args.requests_per_second.is_some() {
            all_throttled && report.delivered + report.failed.len() == connections
        } else {
            all_throttled && report.delivered == connections - slow && report.failed.len() == slow
        }
    };
    let mut warm_up_failed = 0;
    if args.warm_up {
        let report = pusher.push(&WARM_UP.request()?).await;
        ensure!(
            throttled_ok(&report, args.in_flight, slow_among(WARM_UP, args.in_flight)),
            "the warm-up push was not complete: {report:?}"
        );
        warm_up_failed = report.failed.len();
        calls.reset();
    }

    let rss_before_kb = resident_kb("VmRSS")?;
    let before = getrusage(UsageWho::RUSAGE_SELF)?;
    let started = Instant::now();
    let report = pusher.push(&request).await;
    let wall = started.elapsed();
    let after = getrusage(UsageWho::RUSAGE_SELF)?;

    ensure!(
        report.history_appends == usize::from(args.history),
        "expected {} history appends, got {}",
        usize::from(args.history),
        report.history_appends
    );
    let slow_ones = slow_among(MEASURED, args.connections);
    ensure!(
        throttled_ok(&report, args.connections, slow_ones),
        "the push did not reach every connection but the {slow_ones} slow ones: {report:?}"
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
        throttled: report.throttled,
        posts: report.delivered + report.retries + report.failed.len(),
        failed: report.failed.len(),
        warm_up_failed,
    })
}

pub(crate) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

pub(crate) fn cpu_us(time: TimeVal) -> u64 {
    u64::try_from(time.num_microseconds()).unwrap_or(0)
}

/// A `kB` line of `/proc/self/status`, such as `VmRSS`.
pub(crate) fn resident_kb(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}
