#!/usr/bin/env bash
# Memory of a large backlog: JOBS jobs enqueued into a separate `wharf serve` (sync, batches of
# 64, no consumers); the server's RSS 15 s after the last enqueue, then a restart: the time
# until /readyz answers and the RSS 10 s later. docs/benchmarks.md, "Performance, round 2".
#
#   bash benches/backlog.sh                    # 1M jobs
#   JOBS=10000000 bash benches/backlog.sh      # 10M jobs: ~4 GB of disk in $DIR
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/wharf"
JOBS=${JOBS:-1000000}
PORT=${PORT:-7076}
DIR=${DIR:-/tmp/wharf-backlog}
[[ -x $BIN ]] || cargo build --release --manifest-path "$ROOT/Cargo.toml"
rss() { awk '/VmRSS|VmHWM/ {printf "%s %d MB  ", $1, $2 / 1024}' "/proc/$1/status"; echo; }
serve() {
    "$BIN" serve --data-dir "$DIR" --listen "127.0.0.1:$PORT" 2>/dev/null &
    server=$!
}
rm -rf "$DIR"
serve
trap 'kill "$server" 2>/dev/null || true' EXIT
until curl -sf "127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.1; done
"$BIN" bench --url "http://127.0.0.1:$PORT" --jobs "$JOBS" --consumers 0 --quiet 2>/dev/null | head -2
sleep 15
echo "enqueuing process: $(rss "$server")"
kill -TERM "$server"; wait "$server" || true
began=$(date +%s.%N)
serve
until curl -sf "127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.02; done
echo "restart: ready after $(echo "$(date +%s.%N) - $began" | bc) s"
sleep 10
echo "after the restart: $(rss "$server")"
echo "data directory: $(du -sh "$DIR" | cut -f1)"
