//! The results: a Markdown table and a plot of wall time against the ideal.

use anyhow::{Context, anyhow};

use wspush_adapters::Transport;

use crate::child::Measurement;
use crate::{StoreKind, Suite};

/// One row of the table: the runs of one store at one size.
pub(crate) struct Row {
    pub(crate) store: StoreKind,
    pub(crate) transport: Transport,
    pub(crate) connections: usize,
    pub(crate) runs: Vec<Measurement>,
}

impl Row {
    pub(crate) fn median(&self, value: impl Fn(&Measurement) -> f64) -> f64 {
        let mut values: Vec<f64> = self.runs.iter().map(value).collect();
        values.sort_by(f64::total_cmp);
        match values.len() {
            0 => f64::NAN,
            len if len % 2 == 1 => values[len / 2],
            len => (values[len / 2 - 1] + values[len / 2]) / 2.0,
        }
    }

    pub(crate) fn wall_ms(&self) -> f64 {
        self.median(|run| run.wall_us as f64 / 1000.0)
    }
}

pub(crate) fn print_table(suite: &Suite, rows: &[Row]) {
    println!(
        "| store | transport | N | ideal (ms) | wall, median (ms) | min-max (ms) | wall / ideal | CPU per message (us) | peak RSS (MB) | RSS before the push (MB) | deliveries/s | store calls | posts throttled |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let ideal = ideal_ms(row.connections, suite.in_flight, suite.latency_ms);
        let wall = row.wall_ms();
        let walls = row.runs.iter().map(|run| run.wall_us as f64 / 1000.0);
        let min = walls.clone().fold(f64::INFINITY, f64::min);
        let max = walls.fold(0.0, f64::max);
        println!(
            "| {} | {} | {} | {ideal:.0} | {wall:.1} | {min:.1}-{max:.1} | {:.3} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.1}% |",
            row.store.name(),
            row.transport,
            row.connections,
            wall / ideal,
            row.median(Measurement::cpu_us_per_message),
            row.median(|run| run.peak_rss_kb as f64) / 1024.0,
            row.median(|run| run.rss_before_kb as f64) / 1024.0,
            row.connections as f64 / (wall / 1000.0),
            row.median(|run| run.store_calls as f64),
            row.median(|run| 100.0 * run.throttled as f64 / run.posts.max(1) as f64),
        );
    }
    for store in &suite.stores {
        for transport in &suite.transport {
            let peak = |size: usize| {
                rows.iter()
                    .find(|row| {
                        row.store == *store
                            && row.transport == *transport
                            && row.connections == size
                    })
                    .map(|row| row.median(|run| run.peak_rss_kb as f64))
            };
            if let (Some(small), Some(large)) = (peak(10_000), peak(100_000)) {
                println!(
                    "\n{} ({transport}): peak RSS grows {:.2}x from N = 10,000 to N = 100,000",
                    store.name(),
                    large / small
                );
            }
        }
    }
}

pub(crate) fn plot(suite: &Suite, rows: &[Row]) -> anyhow::Result<()> {
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

    let series = [
        (StoreKind::Memory, Transport::Lean, BLUE),
        (StoreKind::DynamoDb, Transport::Lean, RED),
        (StoreKind::Memory, Transport::Sdk, CYAN),
        (StoreKind::DynamoDb, Transport::Sdk, MAGENTA),
    ];
    for (store, transport, color) in series {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|row| row.store == store && row.transport == transport)
            .map(|row| (row.connections as f64, row.wall_ms()))
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(drawing)?
            .label(format!(
                "{} store, {transport} transport, median",
                store.name()
            ))
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

pub(crate) fn drawing(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the plot: {error}")
}

/// The wall time of a fan-out with nothing but the latency: `ceil(N / C) x L`.
fn ideal_ms(connections: usize, in_flight: usize, latency_ms: u64) -> f64 {
    (connections.div_ceil(in_flight) as u64 * latency_ms) as f64
}
