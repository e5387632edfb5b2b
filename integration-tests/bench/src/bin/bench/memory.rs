//! What the in-memory store holds per connection: the fan-out benchmark's audience (`N`
//! connections, each its own user's, each subscribed to one topic) loaded into a
//! `MemoryStore`, and the process's resident memory before and after.
//!
//! ```sh
//! cargo run --release -p wspush-bench --bin bench -- memory --sizes 10000,100000 --runs 3
//! ```
//!
//! Each measurement runs in a fresh child process, so that no earlier load's freed memory is
//! reused. Resident memory is read from `/proc/self/status` (`VmRSS`) after the load, with
//! every temporary of the load dropped: what the store holds, with the allocator's own
//! overhead and fragmentation, which is what a host pays. After the load the child reads
//! the audience back page by page and checks it is all there, so the store measured is a
//! working one.

use std::process::Command;

use anyhow::ensure;
use clap::Args;
use wspush_adapters::{MemoryStore, SystemClock};
use wspush_domain::{ExternalId, Source};
use wspush_ports::{Clock, ConnectionStore};

use crate::audience::MEASURED;
use crate::child::resident_kb;

#[derive(Debug, Args)]
pub(crate) struct MemoryArgs {
    /// Audience sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Measurements per size (the table shows their median).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Internal: measure one load of this size in this process and print its kB.
    #[arg(long, hide = true)]
    child: Option<usize>,
}

/// Prints the table, or with `--child` one measurement.
pub(crate) async fn memory(args: MemoryArgs) -> anyhow::Result<()> {
    if let Some(size) = args.child {
        let (before, after) = measure(size).await?;
        println!("{before} {after}");
        return Ok(());
    }
    println!(
        "| N | RSS before the load (MB) | RSS after (MB) | bytes per connection, median | min-max |"
    );
    println!("|---|---|---|---|---|");
    for &size in &args.sizes {
        let mut runs = Vec::new();
        for _ in 0..args.runs.max(1) {
            runs.push(run_child(size)?);
        }
        let per_connection = |(before, after): (u64, u64)| {
            (after.saturating_sub(before) * 1024) as f64 / size.max(1) as f64
        };
        // The median run, so that its RSS columns and its bytes per connection agree.
        runs.sort_by(|a, b| per_connection(*a).total_cmp(&per_connection(*b)));
        let (before, after) = runs[runs.len() / 2];
        println!(
            "| {size} | {:.1} | {:.1} | {:.0} | {:.0}-{:.0} |",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            per_connection((before, after)),
            per_connection(runs[0]),
            per_connection(runs[runs.len() - 1]),
        );
    }
    Ok(())
}

/// Runs one measurement in a child: its resident kB before and after the load.
fn run_child(size: usize) -> anyhow::Result<(u64, u64)> {
    let output = Command::new(std::env::current_exe()?)
        .args(["memory", "--child", &size.to_string()])
        .output()?;
    ensure!(
        output.status.success(),
        "the measurement of {size} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout)?;
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next()) {
        (Some(before), Some(after)) => Ok((before?, after?)),
        _ => anyhow::bail!("the child printed {text:?}"),
    }
}

async fn measure(size: usize) -> anyhow::Result<(u64, u64)> {
    let before = resident_kb("VmRSS")?;
    let store = MemoryStore::new();
    MEASURED.load(&store, size, 64).await?;
    let after = resident_kb("VmRSS")?;

    let topic = ExternalId::parse(MEASURED.topic())?;
    let source = Source::Topic(topic);
    let (mut cursor, mut read) = (None, 0);
    loop {
        let page = store.page(&source, cursor, 500, SystemClock.now()).await?;
        read += page.connections.len();
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    ensure!(read == size, "read back {read} of {size} connections");
    Ok((before, after))
}
