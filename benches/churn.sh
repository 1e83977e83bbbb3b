#!/usr/bin/env bash
# Disk and memory under sustained churn: a separate `wharf serve` (sync), the bench queue's
# retention at 5 s, 8,000 jobs/s through the full cycle for DURATION seconds; every 30 s one
# line: seconds, `du` of the data directory (MB), wharf.redb's apparent size (MB), the
# server's RSS (MB), the queue's succeeded count. docs/benchmarks.md, "Performance, round 2".
#
#   bash benches/churn.sh                      # 600 s, default settings
#   DURATION=180 CONFIG=my.toml bash benches/churn.sh
#
# Leaves the data directory in $DIR for a look afterwards (removed at the next run).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/wharf"
DURATION=${DURATION:-600}
RATE=${RATE:-8000}
PORT=${PORT:-7075}
DIR=${DIR:-/tmp/wharf-churn}
[[ -x $BIN ]] || cargo build --release --manifest-path "$ROOT/Cargo.toml"
rm -rf "$DIR"
"$BIN" serve ${CONFIG:+--config "$CONFIG"} --data-dir "$DIR" --listen "127.0.0.1:$PORT" 2>/dev/null &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
until curl -sf "127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.1; done
curl -sf -X PATCH "127.0.0.1:$PORT/v1/queues/bench-0" -d '{"retention_ms":5000}' >/dev/null
"$BIN" bench --url "http://127.0.0.1:$PORT" --jobs 100000000 --duration "$DURATION" \
    --rate "$RATE" --quiet 2>/dev/null >"$DIR.bench.txt" &
bench=$!
start=$(date +%s)
echo "t_s du_MB redb_MB rss_MB succeeded"
while kill -0 "$bench" 2>/dev/null; do
    sleep 30
    succeeded=$(curl -sf "127.0.0.1:$PORT/v1/queues/bench-0" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["succeeded"])' || echo '?')
    echo "$(($(date +%s) - start)) $(du -sm "$DIR" | cut -f1)" \
        "$(($(stat -c %s "$DIR/wharf.redb") >> 20))" \
        "$(($(awk '/VmRSS/ {print $2}' "/proc/$server/status") >> 10))" "$succeeded"
done
grep -E 'cycles/s|errors' "$DIR.bench.txt"
