//! How many messages per second one history stream takes: `A` appenders append to one
//! stream for a while, on the memory store and on DynamoDB Local, and every number given is
//! checked (1..n, no gap, no repeat).
//!
//! ```sh
//! cargo run --release -p wspush-bench --bin appends -- --appenders 1,8 --seconds 10
//! ```
//!
//! DynamoDB Local shows what the code does under contention (reads again after a lost race
//! on the head's condition), not the service's per-partition limit, which it does not
//! enforce.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::future::try_join_all;
use wspush_adapters::{MemoryStore, SystemClock};
use wspush_domain::{ExternalId, Retention};
use wspush_integration_tests::dynamodb_local::DynamoDbFixture;
use wspush_ports::{Clock, HistoryStore};

/// Appends to `stream` from `appenders` tasks for `seconds`; appends per second.
async fn run(
    history: Arc<dyn HistoryStore>,
    stream: &str,
    appenders: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let stream = ExternalId::parse(stream)?;
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks = (0..appenders).map(|task| {
        let history = Arc::clone(&history);
        let stream = stream.clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            while Instant::now() < until {
                let data = format!(r#"{{"task":{task},"n":{}}}"#, seqs.len());
                let appended = history
                    .append(
                        &stream,
                        None,
                        &data,
                        Retention::default(),
                        SystemClock.now(),
                    )
                    .await?;
                seqs.push(appended.position.seq);
            }
            anyhow::Ok(seqs)
        })
    });
    let mut seqs: Vec<u64> = Vec::new();
    for task in try_join_all(tasks).await? {
        seqs.extend(task?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    seqs.sort_unstable();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    ensure!(seqs == expected, "the numbers have a gap or a repeat");
    Ok(seqs.len() as f64 / elapsed)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut appenders = vec![1usize, 8];
    let mut seconds = 10u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--appenders" => {
                appenders = args
                    .next()
                    .context("--appenders needs a list")?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--seconds" => seconds = args.next().context("--seconds needs a number")?.parse()?,
            other => bail!("unknown argument {other}; expected --appenders A,B or --seconds S"),
        }
    }
    let dynamodb = DynamoDbFixture::new().await;
    println!("| store | appenders | appends per second, one stream |");
    println!("|---|---|---|");
    for &count in &appenders {
        let memory: Arc<dyn HistoryStore> = Arc::new(MemoryStore::new());
        let rate = run(memory, "room:memory", count, seconds).await?;
        println!("| memory | {count} | {rate:.0} |");
        let store: Arc<dyn HistoryStore> = Arc::new(dynamodb.store.clone());
        let rate = run(store, &format!("room:dynamodb-{count}"), count, seconds).await?;
        println!("| dynamodb (Local) | {count} | {rate:.0} |");
    }
    dynamodb.finish().await;
    Ok(())
}
