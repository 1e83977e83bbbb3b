#!/usr/bin/env bash
# Mirror benchmarks (docs/benchmarks.md#mirrors): a `wharf serve` with and without mirrors,
# driven by `wharf bench --url`, against the machine's Postgres and Redis. Uses its own schema
# (wharf_bench) and key prefix (wharf_bench:), removed at the end.
#
#   cargo build --release && bash benches/mirrors/run.sh [throughput|apply|lag|snapshot]...
#
# throughput: sync, batch 64, 1P+1C, 100k jobs; no mirror against both, alternating, 3 pairs.
# apply:      a fresh mirror replays a log of ~300k events: events/s, per sink.
# lag:        both mirrors while wharf bench holds 5,000 jobs/s; lag sampled every 10 ms.
# snapshot:   1M jobs, a log of 10k events, then both mirrors attached: time to follow.
set -euo pipefail

WHARF=${WHARF:-./target/release/wharf}
PG_URL=${WHARF_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS_URL=${WHARF_TEST_REDIS_URL:-redis://127.0.0.1:6379}
SCHEMA=wharf_bench
PREFIX=wharf_bench:
PORT=7390
WORK=$(mktemp -d)
SERVER=

clear_mirrors() {
    psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" 2>/dev/null || true
    redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" | xargs -r -n 1000 redis-cli -u "$REDIS_URL" unlink >/dev/null
}

stop() {
    if [[ -n $SERVER ]]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
        SERVER=
    fi
}

finish() {
    stop
    clear_mirrors
    rm -rf "$WORK"
}
trap finish EXIT

# serve DIR MIRRORS [extra toml]: starts wharf serve on DIR with MIRRORS (none|pg|redis|both).
serve() {
    local dir=$1 mirrors=$2 extra=${3:-}
    mkdir -p "$dir"
    {
        echo "$extra"
        if [[ $mirrors == pg || $mirrors == both ]]; then
            printf '[[mirror]]\nname = "pg"\nkind = "postgres"\nurl = "%s"\nschema = "%s"\n' "$PG_URL" "$SCHEMA"
        fi
        if [[ $mirrors == redis || $mirrors == both ]]; then
            printf '[[mirror]]\nname = "redis"\nkind = "redis"\nurl = "%s"\nprefix = "%s"\n' "$REDIS_URL" "$PREFIX"
        fi
    } >"$dir/wharf.toml"
    WHARF_LOG=warn "$WHARF" serve --config "$dir/wharf.toml" --data-dir "$dir/data" \
        --listen "127.0.0.1:$PORT" &
    SERVER=$!
    for _ in $(seq 600); do
        curl -sf "localhost:$PORT/readyz" >/dev/null && return
        sleep 0.05
    done
    echo "wharf did not become ready" >&2
    exit 1
}

head_seq() {
    curl -s "localhost:$PORT/v1/events?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["head"])'
}

# Seconds until every mirror follows with no lag (polled every 10 ms).
until_caught_up() {
    python3 - "$PORT" <<'EOF'
import json, sys, time, urllib.request
port = sys.argv[1]
start = time.monotonic()
while True:
    mirrors = json.load(urllib.request.urlopen(f"http://localhost:{port}/v1/mirrors"))["mirrors"]
    if all(m["state"] == "following" and m["lag_events"] == 0 for m in mirrors):
        print(f"{time.monotonic() - start:.2f}")
        break
    if time.monotonic() - start > 1800:
        sys.exit("mirrors did not catch up in 30 min: " + json.dumps(mirrors))
    time.sleep(0.01)
EOF
}

bench() {
    "$WHARF" bench --url "http://127.0.0.1:$PORT" --quiet --json "$WORK/report.json" "$@" >/dev/null
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(round(r["cycles_per_sec"]), round(r["enqueued_per_sec"]))' "$WORK/report.json"
}

throughput() {
    echo "== throughput: sync, 1P+1C, batch 64, poll 64, ack batch 64, 100k jobs, 256-byte payloads"
    for pair in $(seq "${PAIRS:-3}"); do
        for mirrors in ${MODES:-none both}; do
            clear_mirrors
            rm -rf "$WORK/t"
            serve "$WORK/t" "$mirrors"
            read -r cycles enqueued < <(bench --jobs 100000)
            local catch_up=-
            [[ $mirrors == both ]] && catch_up=$(until_caught_up)
            echo "pair $pair mirrors=$mirrors cycles/s=$cycles enqueued/s=$enqueued events=$(head_seq) mirrors caught up ${catch_up}s after the run"
            stop
        done
    done
}

apply() {
    echo "== apply: a fresh mirror replays the whole log (100k jobs through the full cycle)"
    rm -rf "$WORK/a"
    serve "$WORK/a" none
    bench --jobs 100000 >/dev/null
    local events
    events=$(head_seq)
    stop
    for sink in pg redis; do
        clear_mirrors
        serve "$WORK/a" "$sink"
        local seconds
        seconds=$(until_caught_up)
        echo "sink=$sink events=$events seconds=$seconds events/s=$(python3 -c "print(round($events / $seconds))")"
        stop
    done
}

lag() {
    echo "== lag: both mirrors, wharf bench --rate 5000 --jobs 100000 (batch 64), lag_ms sampled every 10 ms"
    clear_mirrors
    rm -rf "$WORK/l"
    serve "$WORK/l" both
    python3 - "$PORT" "$WORK/lag.json" <<'EOF' &
import json, sys, time, urllib.request
port, out = sys.argv[1], sys.argv[2]
samples = {}
deadline = time.monotonic() + 120
stop_file = out + ".stop"
import os
while not os.path.exists(stop_file) and time.monotonic() < deadline:
    for m in json.load(urllib.request.urlopen(f"http://localhost:{port}/v1/mirrors"))["mirrors"]:
        samples.setdefault(m["name"], []).append(m["lag_ms"])
    time.sleep(0.01)
json.dump(samples, open(out, "w"))
EOF
    local sampler=$!
    read -r cycles enqueued < <(bench --jobs 100000 --rate 5000)
    touch "$WORK/lag.json.stop"
    wait "$sampler"
    echo "cycles/s=$cycles enqueued/s=$enqueued"
    python3 - "$WORK/lag.json" <<'EOF'
import json, sys
for name, lags in json.load(open(sys.argv[1])).items():
    lags.sort()
    pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    print(f"mirror={name} samples={len(lags)} lag_ms p50={pick(0.5)} p99={pick(0.99)} max={lags[-1]}")
EOF
    stop
}

snapshot() {
    echo "== snapshot: 1M jobs enqueued (batch 500), log kept to 10k events, then both mirrors attached"
    clear_mirrors
    rm -rf "$WORK/s"
    serve "$WORK/s" none "events_max_entries = 10000"
    bench --jobs 1000000 --consumers 0 --batch 500 >/dev/null
    stop
    serve "$WORK/s" both "events_max_entries = 10000"
    echo "both mirrors snapshotted 1M jobs and follow after $(until_caught_up)s"
    psql -Atq "$PG_URL" -c "SELECT 'postgres rows: ' || count(*) FROM $SCHEMA.jobs"
    echo "redis keys: $(redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}job:*" | wc -l)"
    stop
}

for part in "${@:-throughput apply lag snapshot}"; do
    for p in $part; do "$p"; done
done
