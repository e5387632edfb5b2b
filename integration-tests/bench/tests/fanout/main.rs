//! The fan-out benchmark, run small: it must keep working (and keep checking that every
//! connection got the message exactly once), even though its full run is not part of CI.

use std::process::Command;

#[test]
fn the_benchmark_runs_small_against_both_stores_on_both_transports_and_draws_its_plot() {
    let plot = std::env::temp_dir().join(format!("wspush-bench-{}.png", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "--sizes",
            "100,300",
            "--stores",
            "memory,dynamodb",
            "--runs",
            "2",
            "--transport",
            "sdk,lean",
        ])
        .args(["--latency-ms", "2", "--in-flight", "16"])
        .arg("--plot")
        .arg(&plot)
        .output()
        .expect("the benchmark starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    let rows: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("| memory |") || line.starts_with("| dynamodb |"))
        .collect();
    assert_eq!(
        rows.len(),
        8,
        "two stores, two sizes, two transports: {stdout}"
    );
    for row in &rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(cells[2] == "sdk" || cells[2] == "lean", "{row}");
        let ideal: f64 = cells[4].parse().expect("an ideal");
        let wall: f64 = cells[5].parse().expect("a wall time");
        // 100 or 300 posts, 16 at a time, 2 ms each: the ideal is 14 or 38 ms.
        assert!(ideal == 14.0 || ideal == 38.0, "{row}");
        assert!(wall >= ideal, "no push beats the ideal: {row}");
    }
    let png = std::fs::read(&plot).expect("the plot was written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let _ = std::fs::remove_file(plot);
}
