#!/usr/bin/env bash
# Runs each cargo-fuzz target for SECONDS (default 600) with the nightly toolchain, one after
# the other, and prints libFuzzer's final statistics. Needs `cargo install cargo-fuzz`.
#   bash integration-tests/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-600}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(notification_request websocket_event route_body)
status=0
mkdir -p target
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  log="target/$target.log"
  echo "--- $target for ${seconds}s (log: integration-tests/fuzz/$log)"
  cargo +nightly fuzz run -O "$target" --fuzz-dir . "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 >"$log" 2>&1 || status=1
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|Done [0-9]+ runs|ERROR|panicked|SUMMARY|Test unit written' "$log" || true
done
exit "$status"
