//! The suite: for each size and store, fresh child processes, checked against the gateway's
//! tally.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use wspush_integration_tests::dynamodb_local::DynamoDbFixture;
use wspush_local::{Faults, LocalConfig, RunningGateway, start};

use crate::audience::{MEASURED, WARM_UP};
use crate::child::Measurement;
use crate::output::{Row, plot, print_table};
use crate::{StoreKind, Suite};

pub(crate) async fn suite(suite: Suite) -> anyhow::Result<()> {
    ensure!(
        suite.runs > 0 && suite.in_flight > 0,
        "--runs and --in-flight must be at least 1"
    );
    let executable = std::env::current_exe()?;
    let gateway = start(LocalConfig {
        stage: "bench".to_owned(),
        faults: Faults {
            latency: Duration::from_millis(suite.latency_ms),
            slow_connections: suite.slow_connections,
            requests_per_second: suite.requests_per_second,
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
            let mut size_rows: Vec<Row> = suite
                .transport
                .iter()
                .map(|&transport| Row {
                    store,
                    transport,
                    connections,
                    runs: Vec::new(),
                })
                .collect();
            for run in 1..=suite.runs {
                // The transports alternate within each run, so that both see the same
                // machine at about the same time.
                for row in &mut size_rows {
                    let measurement =
                        push_in_child(&suite, &gateway, &executable, row, fixture.as_ref()).await?;
                    eprintln!(
                        "{} {} N={connections} run {run}: {:.1} ms, {:.1} us CPU/message, peak RSS {:.1} MB",
                        store.name(),
                        row.transport,
                        measurement.wall_us as f64 / 1000.0,
                        measurement.cpu_us_per_message(),
                        measurement.peak_rss_kb as f64 / 1024.0
                    );
                    row.runs.push(measurement);
                }
            }
            if let Some(fixture) = fixture {
                fixture.finish().await;
            }
            rows.extend(size_rows);
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

/// One measured push in a fresh child process, checked against the gateway's tally.
async fn push_in_child(
    suite: &Suite,
    gateway: &RunningGateway,
    executable: &std::path::Path,
    row: &Row,
    fixture: Option<&DynamoDbFixture>,
) -> anyhow::Result<Measurement> {
    let warm_up = if suite.cold_pool { 0 } else { suite.in_flight };
    gateway.set_virtual_connections(
        (0..row.connections)
            .map(|index| MEASURED.id(index))
            .chain((0..warm_up).map(|index| WARM_UP.id(index))),
    );
    let mut command = tokio::process::Command::new(executable);
    command
        .args(["push", "--store", row.store.name()])
        .args(["--transport", row.transport.as_str()])
        .args(["--connections", &row.connections.to_string()])
        .args(["--in-flight", &suite.in_flight.to_string()])
        .args(["--management-endpoint", &gateway.management_endpoint()]);
    if suite.multi_thread {
        command.arg("--multi-thread");
    }
    if !suite.cold_pool {
        command.arg("--warm-up");
    }
    if suite.history {
        command.arg("--history");
    }
    if suite.slow_connections > 0.0 {
        command.args(["--slow-connections", &suite.slow_connections.to_string()]);
    }
    if let Some(rate) = suite.requests_per_second {
        command.args(["--requests-per-second", &rate.to_string()]);
    }
    if let Some(rate) = suite.max_posts_per_second {
        command.args(["--max-posts-per-second", &rate.to_string()]);
    }
    if let Some(fixture) = fixture {
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
    let measurement: Measurement =
        serde_json::from_slice(&output.stdout).context("reading the push child's measurement")?;
    let tally = gateway.virtual_tally();
    let slow = Faults {
        slow_connections: suite.slow_connections,
        ..Faults::default()
    };
    let reached = (0..row.connections)
        .map(|index| MEASURED.id(index))
        .chain((0..warm_up).map(|index| WARM_UP.id(index)))
        .filter(|id| !slow.is_slow(id))
        .count();
    // Under the account throttle, a connection still throttled after its retries is
    // reported failed (to be re-enqueued); none is reached twice, every other is reached.
    let reached = if suite.requests_per_second.is_some() {
        reached - measurement.failed - measurement.warm_up_failed
    } else {
        reached
    };
    ensure!(
        tally.exactly_once == reached && tally.messages == reached as u64,
        "the gateway did not see every connection reached exactly once: {tally:?}"
    );
    Ok(measurement)
}
