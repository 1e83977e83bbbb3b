#!/usr/bin/env bash
# A bounded soak: a release `wharf serve` under steady churn (enqueue, poll, ack, with retention
# deleting finished jobs), sampled every 10 s for RSS, open file descriptors and disk use.
#
#   bash scripts/soak.sh [MINUTES] [JOBS_PER_SECOND] [OUT_DIR]    # defaults: 30 1500 docs/soak
#
# Writes OUT_DIR/soak.csv (elapsed_s, rss_kib, fds, data_dir_bytes, redb_bytes, journal_bytes,
# jobs_done), then OUT_DIR/soak.png if python3 has matplotlib (scripts/plot_soak.py). The server
# runs on 127.0.0.1, a free port, in a temporary data dir, and is stopped at the end, on error
# and on Ctrl-C. CI runs none of this.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-30}
rate=${2:-1500}
out=${3:-docs/soak}
interval=10
mkdir -p "$out"

cargo build --release --locked --quiet
bin=target/release/wharf
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/wharf.toml" <<TOML
durability = "sync"
[queue_defaults]
retention_ms = 10000          # finished jobs are deleted 10 s after their ack: churn, not growth
TOML

server=""
load=""
cleanup() {
  [ -n "$load" ] && kill "$load" 2>/dev/null || true
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

"$bin" serve --config "$work/wharf.toml" --data-dir "$work/data" --listen "127.0.0.1:$port" \
  2> "$work/server.log" &
server=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break
  sleep 0.1
done

seconds=$((minutes * 60))
# Far more jobs than the time allows: the duration ends the run.
nice -n 10 "$bin" bench --url "http://127.0.0.1:$port" --jobs 1000000000 --duration "$seconds" \
  --rate "$rate" --producers 2 --consumers 2 --batch 16 --poll-max 16 --ack-batch 16 \
  --json "$work/bench.json" --quiet > "$work/bench.txt" 2>&1 &
load=$!

jobs_done() {
  curl -sf "http://127.0.0.1:$port/metrics" \
    | awk '/^wharf_jobs_acked_total/ { sum += $2 } END { print sum + 0 }'
}

csv="$out/soak.csv"
echo "elapsed_s,rss_kib,fds,data_dir_bytes,redb_bytes,journal_bytes,jobs_done" > "$csv"
start=$(date +%s)
while kill -0 "$load" 2>/dev/null; do
  now=$(($(date +%s) - start))
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$server/status")
  fds=$(ls "/proc/$server/fd" | wc -l)
  disk=$(du -sb "$work/data" | cut -f1)
  redb=$(stat -c %s "$work/data/wharf.redb")
  journal=$(stat -c %s "$work/data/wharf.journal")
  echo "$now,$rss,$fds,$disk,$redb,$journal,$(jobs_done)" >> "$csv"
  [ "$now" -ge $((seconds + 30)) ] && break
  sleep "$interval"
done
wait "$load" || true
cat "$work/bench.txt"
echo "samples: $csv"
if python3 -c 'import matplotlib' 2> /dev/null; then
  python3 scripts/plot_soak.py "$csv" "$out/soak.png"
else
  echo "no matplotlib: pip install matplotlib, then python3 scripts/plot_soak.py $csv $out/soak.png"
fi
