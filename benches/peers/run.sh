#!/usr/bin/env bash
# Peer comparison: wharf vs Redis, beanstalkd, PostgreSQL, NATS JetStream and RabbitMQ, same
# workload, same machine, in pairs that alternate wharf and each peer.
#
#   bash benches/peers/run.sh                     # 100000 jobs per run, 3 pairs (30-40 minutes)
#   JOBS=5000 PAIRS=1 bash benches/peers/run.sh   # quick check
#   SYSTEMS="wharf nats rabbitmq" bash benches/peers/run.sh
#
# Starts its own throwaway instances on loopback (Redis :6390, beanstalkd :11400, PostgreSQL
# :5440, nats-server :4250) in a temp dir, stops them and removes the dir at the end; RabbitMQ
# is the machine's service on :5672, in queues of the run's own that are deleted afterwards. It
# never touches the machine's shared Redis (:6379), PostgreSQL (:5432) or nats-server (:4222).
# Prints three tables (median jobs/s per system, median wharf/peer ratio per pair, the targets)
# and writes them to benches/peers/results.md. See benches/peers/README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

JOBS="${JOBS:-100000}"
PAIRS="${PAIRS:-3}"
PAYLOAD_BYTES=256
RUN_TIMEOUT="${RUN_TIMEOUT:-120}"          # seconds per run, enforced inside the clients
SYSTEMS="${SYSTEMS:-wharf redis beanstalkd postgres nats rabbitmq}"
REDIS_PORT=6390
BEANSTALKD_PORT=11400
PG_PORT=5440
NATS_PORT=4250                              # never 4222: that is the machine's shared nats-server
RABBITMQ_PORT=5672                          # the machine's RabbitMQ service (guest/guest)
# Scenario (a): 1 producer + 1 consumer, 64 jobs per round trip.
# Scenario (b): 8 producers + 8 consumers, one job per request/command.
declare -A SC_P=([a]=1 [b]=8) SC_C=([a]=1 [b]=8) SC_B=([a]=64 [b]=1)

log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 1; }
want() { [[ " $SYSTEMS " == *" $1 "* ]]; }

[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive integer (got '$JOBS')"
[[ "$PAIRS" =~ ^[1-9][0-9]*$ ]] || die "PAIRS must be a positive integer (got '$PAIRS')"
[[ "$RUN_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "RUN_TIMEOUT must be a positive integer of seconds"
for s in $SYSTEMS; do
    case "$s" in
        wharf | redis | beanstalkd | postgres | nats | rabbitmq) ;;
        *) die "unknown system '$s' in SYSTEMS (wharf redis beanstalkd postgres nats rabbitmq)" ;;
    esac
done
command -v jq >/dev/null || die "jq is needed (apt-get install -y jq)"
command -v cargo >/dev/null || die "cargo is needed"

WORK="$(mktemp -d /tmp/wharf-peers.XXXXXX)" || die "mktemp failed"
chmod 755 "$WORK"                          # the postgres user must reach its data dir inside
RAW="$WORK/raw.jsonl"                      # one JSON line per run
RUNS="$WORK/runs.tsv"                      # scenario, system|mode, jobs/s or fail
PAIRED="$WORK/pairs.tsv"                   # scenario, wharf mode, system|mode, wharf jobs/s / peer jobs/s
: >"$RAW"; : >"$RUNS"; : >"$PAIRED"

# ---------------------------------------------------------------------------------------------
# Processes this script started (by pid), and cleanup.

SERVER_PID=""                              # the Redis or beanstalkd of the current run
NATS_PID=""                                # the private nats-server, up for the whole script
CHILD_PID=""                               # the client of the current run
PG_DATA=""
PG_RUNNING=0

stop_pid() {  # pid: TERM, up to 10 s, then KILL
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then stop_pid "$SERVER_PID"; SERVER_PID=""; fi
}

as_pg() {
    if [[ $EUID -eq 0 ]]; then (cd "$WORK" && runuser -u postgres -- "$@"); else "$@"; fi
}

stop_pg() {
    if [[ $PG_RUNNING -eq 1 ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >>"$WORK/pg/ctl.log" 2>&1 || true
        PG_RUNNING=0
    fi
}

# Runs a command in the background and waits for it, so that a signal to this script is acted
# on at once (bash defers traps while a foreground child runs); cleanup stops the child.
bg_wait() {
    "$@" &
    CHILD_PID=$!
    local rc=0
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    return $rc
}

cleanup() {
    set +e
    if [[ -n "$CHILD_PID" ]]; then kill "$CHILD_PID" 2>/dev/null; wait "$CHILD_PID" 2>/dev/null; fi
    stop_server
    stop_pg
    if [[ -n "$NATS_PID" ]]; then stop_pid "$NATS_PID"; NATS_PID=""; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() {
    if command -v ss >/dev/null; then
        [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

wait_port() {  # wait up to 15 s for something to accept on 127.0.0.1:$1
    for _ in $(seq 1 150); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

is_rate() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; }

fmt_rate() { # number -> integer jobs/s; anything else as is
    if is_rate "$1"; then printf '%.0f' "$1"; else printf '%s' "$1"; fi
}

# ---------------------------------------------------------------------------------------------
# The rows: "system|mode", in print order, with what each promises on a crash.

declare -A DURABILITY
ROWS=()
add_row() { ROWS+=("$1"); DURABILITY["$1"]="$2"; }
add_row "wharf|sync" "fsync before every reply"
add_row "wharf|async" "fsync every interval (50 ms)"
add_row "redis|aof-always" "AOF fsync before replies"
add_row "redis|no-persist" "none (memory only)"
add_row "beanstalkd|binlog-fsync" "binlog, fsync every write (-f 0)"
add_row "beanstalkd|no-binlog" "none (memory only)"
add_row "postgres|sync-commit-on" "WAL flush before commit returns"
add_row "postgres|sync-commit-off" "WAL fsync in background (fsync=on)"
add_row "nats|file-store" "JetStream file store, not fsynced per write (2.9: fsync every 2 min)"
add_row "rabbitmq|quorum" "quorum queue: fsync before publisher confirms"
add_row "rabbitmq|transient" "classic non-durable queue, no confirms, auto-ack (memory only)"

declare -A AVAILABLE                       # system -> 1 once its server or binary is ready

# ---------------------------------------------------------------------------------------------
# Machine facts.

dsync_rate() {  # extra dd flags... -> "writes/s|seconds" for 1000 synchronous 4 KiB writes
    local secs
    secs="$(dd if=/dev/zero of="$WORK/fsync-probe" bs=4k count=1000 oflag=dsync "$@" 2>&1 \
        | sed -n 's/.*copied, \([0-9.e-]*\) s,.*/\1/p')" || true
    if [[ -n "$secs" ]]; then
        awk -v s="$secs" 'BEGIN { printf "%.0f|%s", 1000 / s, s }'
    else
        printf '?|?'
    fi
}

version_of() {  # debian package -> its version, or ?
    dpkg-query -W -f '${Version}' "$1" 2>/dev/null || printf '?'
}

facts() {
    local mem cpu fresh over dirty=""
    mem="$(free -h 2>/dev/null | awk '/^Mem:/ {print $2}')" || true
    cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)" || true
    rm -f "$WORK/fsync-probe"
    fresh="$(dsync_rate)"                  # appending: every write also commits file metadata
    over="$(dsync_rate conv=notrunc)"      # overwriting the same 4 MB in place: data only
    rm -f "$WORK/fsync-probe"
    git -C "$ROOT" diff --quiet HEAD 2>/dev/null || dirty=" (+ uncommitted changes)"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- wharf commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$dirty"
    echo "- nproc: $(nproc)"
    echo "- cpu: ${cpu:-?}"
    echo "- memory: ${mem:-?}"
    echo "- disk fsync rate: ${fresh%%|*} writes/s (dd if=/dev/zero bs=4k count=1000 oflag=dsync to a new file in $(dirname "$WORK"): ${fresh#*|} s); overwriting that file in place (conv=notrunc): ${over%%|*} writes/s"
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    local versions=()
    if want redis; then versions+=("redis-server $(version_of redis-server)"); fi
    if want beanstalkd; then versions+=("beanstalkd $(version_of beanstalkd)"); fi
    if want postgres; then versions+=("postgresql $(basename "$(dirname "${PG_BIN:-/?/?}")")"); fi
    if want nats; then versions+=("nats-server $(version_of nats-server)"); fi
    if want rabbitmq; then versions+=("rabbitmq-server $(version_of rabbitmq-server)"); fi
    if [[ ${#versions[@]} -gt 0 ]]; then
        local joined
        joined="$(printf '%s, ' "${versions[@]}")"
        echo "- packages: ${joined%, }"
    fi
    echo "- jobs per run: $JOBS, payload: $PAYLOAD_BYTES bytes, per-run timeout: ${RUN_TIMEOUT} s, pairs: $PAIRS"
}

# ---------------------------------------------------------------------------------------------
# Getting each system ready (once), and n/a when it cannot be.

WHARF_BIN=""
prepare_wharf() {
    log "== building wharf (cargo build --release)"
    if ! cargo build --release --quiet >"$WORK/wharf-build.log" 2>&1; then
        log "  cargo build --release failed (see below); wharf is n/a"
        tail -n 20 "$WORK/wharf-build.log" >&2
        return 0
    fi
    local target
    target="$(cargo metadata --no-deps --format-version 1 2>/dev/null | jq -r .target_directory)" || true
    WHARF_BIN="${target:-$ROOT/target}/release/wharf"
    if ! "$WHARF_BIN" bench --help >/dev/null 2>&1; then
        log "  'wharf bench' does not exist here; wharf is n/a"; return 0
    fi
    AVAILABLE[wharf]=1
}

prepare_redis() {
    if command -v redis-server >/dev/null; then AVAILABLE[redis]=1; else log "  redis-server not found; redis is n/a"; fi
}

prepare_beanstalkd() {
    if ! command -v beanstalkd >/dev/null; then
        log "  installing beanstalkd"
        apt-get install -y beanstalkd >"$WORK/apt.log" 2>&1 \
            || { apt-get update >>"$WORK/apt.log" 2>&1 && apt-get install -y beanstalkd >>"$WORK/apt.log" 2>&1; } \
            || true
    fi
    if command -v beanstalkd >/dev/null; then
        AVAILABLE[beanstalkd]=1
    else
        log "  beanstalkd is not installed and could not be; beanstalkd is n/a"
        tail -n 5 "$WORK/apt.log" >&2 2>/dev/null || true
    fi
}

PG_BIN="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

prepare_postgres() {
    if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
        log "  no initdb under /usr/lib/postgresql/*/bin; postgres is n/a"; return 0
    fi
    if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        log "  running as root but there is no postgres user; postgres is n/a"; return 0
    fi
    mkdir -p "$WORK/pg"
    if [[ $EUID -eq 0 ]]; then chown postgres: "$WORK/pg"; fi
    PG_DATA="$WORK/pg/data"
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 \
        >"$WORK/pg-initdb.log" 2>&1; then
        log "  initdb failed; postgres is n/a"; tail -n 5 "$WORK/pg-initdb.log" >&2; return 0
    fi
    AVAILABLE[postgres]=1
}

prepare_nats() {
    if ! command -v nats-server >/dev/null; then log "  nats-server not found; nats is n/a"; return 0; fi
    if port_busy "$NATS_PORT"; then
        log "  port $NATS_PORT is already in use; not starting nats-server; nats is n/a"; return 0
    fi
    mkdir -p "$WORK/nats"
    nats-server -js -sd "$WORK/nats" -a 127.0.0.1 -p "$NATS_PORT" -l "$WORK/nats/server.log" &
    NATS_PID=$!
    if ! wait_port "$NATS_PORT"; then
        log "  nats-server did not start; nats is n/a"; tail -n 5 "$WORK/nats/server.log" >&2 || true
        stop_pid "$NATS_PID"; NATS_PID=""; return 0
    fi
    AVAILABLE[nats]=1
}

prepare_rabbitmq() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$RABBITMQ_PORT") 2>/dev/null; then
        AVAILABLE[rabbitmq]=1
    else
        log "  nothing listens on 127.0.0.1:$RABBITMQ_PORT; rabbitmq is n/a"
    fi
}

# ---------------------------------------------------------------------------------------------
# One run of one row in one scenario. Sets RATE (jobs/s, or fail) and records the run.

RATE=""
SEQ=0
ROUND=0

record() {  # row scenario rate [json]
    local json="${4:-}"
    printf '%s\t%s\t%s\n' "$2" "$1" "$3" >>"$RUNS"
    if [[ -z "$json" ]] || ! jq -e 'type == "object"' >/dev/null 2>&1 <<<"$json"; then
        json='{"complete": false, "error": "no report"}'
    fi
    jq -c --arg sc "$2" --argjson seq "$SEQ" --argjson round "$ROUND" \
        --arg system "${1%%|*}" --arg mode "${1#*|}" \
        '{seq: $seq, round: $round, scenario: $sc, system: $system, mode: $mode} + .' <<<"$json" >>"$RAW"
    RATE="$3"
}

run_peer_bench() {  # row scenario addr extra-args... -> records the client's JSON line
    local row=$1 sc=$2 addr=$3 out rc=0
    shift 3
    bg_wait timeout $((RUN_TIMEOUT + 60)) "$HERE/client/target/release/peer-bench" \
        --system "${row%%|*}" --addr "$addr" \
        --producers "${SC_P[$sc]}" --consumers "${SC_C[$sc]}" --jobs "$JOBS" \
        --payload-bytes "$PAYLOAD_BYTES" --batch "${SC_B[$sc]}" \
        --timeout-sec "$RUN_TIMEOUT" --label "${row#*|}" "$@" \
        >"$WORK/peer-bench.out" 2>>"$WORK/peer-bench.err" || rc=$?
    out="$(tail -n 1 "$WORK/peer-bench.out")"
    if [[ -n "$out" ]] && jq -e '.cleanup_error' >/dev/null 2>&1 <<<"$out"; then
        log "    WARNING: $(jq -r .cleanup_error <<<"$out")"
    fi
    if [[ $rc -eq 0 && -n "$out" ]] && jq -e '.complete == true' >/dev/null 2>&1 <<<"$out"; then
        record "$row" "$sc" "$(jq -r .jobs_per_sec <<<"$out")" "$out"
    else
        record "$row" "$sc" fail "$out"
        log "    FAILED (exit $rc): ${out:-no output} $(tail -n 3 "$WORK/peer-bench.err" 2>/dev/null)"
    fi
}

run_wharf() {  # mode scenario
    local mode=$1 sc=$2 json="$WORK/wharf.json" rc=0
    rm -f "$json"; rm -rf "$WORK/wharf-tmp"; mkdir -p "$WORK/wharf-tmp"
    bg_wait env TMPDIR="$WORK/wharf-tmp" timeout $((RUN_TIMEOUT + 60)) "$WHARF_BIN" bench \
        --producers "${SC_P[$sc]}" --consumers "${SC_C[$sc]}" --jobs "$JOBS" \
        --payload-bytes "$PAYLOAD_BYTES" --batch "${SC_B[$sc]}" \
        --poll-max "${SC_B[$sc]}" --ack-batch "${SC_B[$sc]}" \
        --durability "$mode" --duration "$RUN_TIMEOUT" --json "$json" >"$WORK/wharf.out" 2>&1 || rc=$?
    rm -rf "$WORK/wharf-tmp"
    if [[ -s "$json" ]] && jq -e --argjson n "$JOBS" '(.cycles_per_sec | numbers) and (.completed >= $n)' \
        >/dev/null 2>&1 <"$json"; then
        record "wharf|$mode" "$sc" "$(jq -r .cycles_per_sec <"$json")" "$(jq -c . <"$json")"
    else
        local report=""
        if [[ -s "$json" ]]; then report="$(jq -c . 2>/dev/null <"$json" || true)"; fi
        record "wharf|$mode" "$sc" fail "$report"
        log "    FAILED (exit $rc, incomplete or no report):"
        if [[ -s "$json" ]]; then jq -c '{completed, enqueued, elapsed_sec, errors}' <"$json" >&2 || true; fi
        tail -n 5 "$WORK/wharf.out" >&2 || true
    fi
}

run_redis() {  # mode scenario: a fresh redis-server for this run
    local mode=$1 sc=$2 dir="$WORK/redis"
    if port_busy "$REDIS_PORT"; then
        log "    port $REDIS_PORT is already in use; not starting redis"; record "redis|$mode" "$sc" fail; return 0
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    local extra=(--save "" --appendonly no)
    if [[ $mode == aof-always ]]; then extra=(--save "" --appendonly yes --appendfsync always); fi
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --daemonize no \
        --logfile "$dir/redis.log" "${extra[@]}" &
    SERVER_PID=$!
    if wait_port "$REDIS_PORT"; then
        run_peer_bench "redis|$mode" "$sc" "127.0.0.1:$REDIS_PORT"
    else
        log "    redis ($mode) did not start"; tail -n 5 "$dir/redis.log" >&2 || true
        record "redis|$mode" "$sc" fail
    fi
    stop_server
    rm -rf "$dir"
}

run_beanstalkd() {  # mode scenario: a fresh beanstalkd for this run
    local mode=$1 sc=$2 dir="$WORK/beanstalkd"
    if port_busy "$BEANSTALKD_PORT"; then
        log "    port $BEANSTALKD_PORT is already in use; not starting beanstalkd"; record "beanstalkd|$mode" "$sc" fail; return 0
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    local extra=()
    if [[ $mode == binlog-fsync ]]; then extra=(-b "$dir" -f 0); fi
    beanstalkd -l 127.0.0.1 -p "$BEANSTALKD_PORT" "${extra[@]}" >"$WORK/beanstalkd.log" 2>&1 &
    SERVER_PID=$!
    if wait_port "$BEANSTALKD_PORT"; then
        run_peer_bench "beanstalkd|$mode" "$sc" "127.0.0.1:$BEANSTALKD_PORT"
    else
        log "    beanstalkd ($mode) did not start"; record "beanstalkd|$mode" "$sc" fail
    fi
    stop_server
    rm -rf "$dir"
}

run_postgres() {  # mode scenario: the throwaway cluster, started for this run in this mode
    local mode=$1 sc=$2 commit=on
    if [[ $mode == sync-commit-off ]]; then commit=off; fi
    if port_busy "$PG_PORT"; then
        log "    port $PG_PORT is already in use; not starting postgres"; record "postgres|$mode" "$sc" fail; return 0
    fi
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pg/server.log" -w -t 60 \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$WORK/pg -c fsync=on -c synchronous_commit=$commit" \
        start >>"$WORK/pg/ctl.log" 2>&1; then
        log "    postgres ($mode) did not start"; tail -n 5 "$WORK/pg/server.log" >&2 || true
        record "postgres|$mode" "$sc" fail; return 0
    fi
    PG_RUNNING=1
    run_peer_bench "postgres|$mode" "$sc" "127.0.0.1:$PG_PORT"
    stop_pg
}

run_nats() {  # mode scenario: the script's nats-server, a new stream per run
    if ! kill -0 "$NATS_PID" 2>/dev/null; then
        log "    the private nats-server has exited"; tail -n 5 "$WORK/nats/server.log" >&2 || true
        record "nats|$1" "$2" fail; return 0
    fi
    run_peer_bench "nats|$1" "$2" "127.0.0.1:$NATS_PORT"
}

run_rabbitmq() {  # mode scenario: the machine's RabbitMQ, a new queue per run
    run_peer_bench "rabbitmq|$1" "$2" "127.0.0.1:$RABBITMQ_PORT" --rabbitmq-queue "$1"
}

run_row() {  # row scenario
    local row=$1 sc=$2
    SEQ=$((SEQ + 1))
    log "  [$SEQ/$TOTAL_RUNS] pair round $ROUND/$PAIRS, ($sc) ${row%%|*} ${row#*|}"
    "run_${row%%|*}" "${row#*|}" "$sc"
    log "    -> $(fmt_rate "$RATE") jobs/s"
}

# ---------------------------------------------------------------------------------------------
# The schedule. Every pair is a wharf run immediately followed by one peer run, in the same
# scenario: "sync|ROW" compares wharf sync with ROW (wharf async is a row like the peers), and
# "async|redis|no-persist" serves the async target. A round runs every pair once in scenario
# (a), then every pair in (b); the script runs PAIRS rounds.

build_pairs() {
    PAIR_LIST=()
    local row
    for row in "${ROWS[@]}"; do
        [[ $row == "wharf|sync" ]] && continue
        [[ -n "${AVAILABLE[${row%%|*}]:-}" ]] || continue
        if [[ -n "${AVAILABLE[wharf]:-}" ]]; then
            PAIR_LIST+=("sync|$row")
            if [[ $row == "redis|no-persist" ]]; then PAIR_LIST+=("async|$row"); fi
        elif [[ $row != wharf\|* ]]; then
            PAIR_LIST+=("-|$row")      # no wharf: the peers alone, for their medians
        fi
    done
}

run_rounds() {
    local sc pair ref row wharf_rate
    for ROUND in $(seq 1 "$PAIRS"); do
        for sc in a b; do
            for pair in "${PAIR_LIST[@]}"; do
                ref="${pair%%|*}"; row="${pair#*|}"
                wharf_rate=""
                if [[ $ref != "-" ]]; then run_row "wharf|$ref" "$sc"; wharf_rate="$RATE"; fi
                run_row "$row" "$sc"
                if is_rate "$wharf_rate" && is_rate "$RATE"; then
                    awk -v sc="$sc" -v ref="$ref" -v row="$row" -v w="$wharf_rate" -v p="$RATE" \
                        'BEGIN { if (p > 0) printf "%s\t%s\t%s\t%.6f\n", sc, ref, row, w / p }' >>"$PAIRED"
                fi
            done
        done
    done
}

# ---------------------------------------------------------------------------------------------
# Medians.

stats() {  # numbers on stdin -> "median min max count" (count 0: "- - - 0")
    sort -g | awk 'BEGIN { OFMT = "%.6f" } { v[NR] = $1 }
        END {
            if (NR == 0) { print "- - - 0"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            print m, v[1], v[NR], NR
        }'
}

run_stats() {  # row scenario -> "median min max count fails"
    local s fails
    s="$(awk -F'\t' -v sc="$2" -v row="$1" '$1 == sc && $2 == row && $3 ~ /^[0-9.eE+-]+$/ { print $3 }' "$RUNS" | stats)"
    fails="$(awk -F'\t' -v sc="$2" -v row="$1" '$1 == sc && $2 == row && $3 == "fail"' "$RUNS" | wc -l)"
    echo "$s $fails"
}

pair_stats() {  # wharf-mode row scenario -> "median min max count"
    awk -F'\t' -v sc="$3" -v ref="$1" -v row="$2" '$1 == sc && $2 == ref && $3 == row { print $4 }' "$PAIRED" | stats
}

median_cell() {  # row scenario -> median jobs/s, or n/a / fail
    local median _min _max count fails
    read -r median _min _max count fails <<<"$(run_stats "$1" "$2")"
    if [[ $count -gt 0 ]]; then fmt_rate "$median"
    elif [[ $fails -gt 0 ]]; then printf 'fail'
    else printf 'n/a'; fi
}

runs_cell() {  # row scenario -> "3", or "2 + 1 fail"
    local _median _min _max count fails
    read -r _median _min _max count fails <<<"$(run_stats "$1" "$2")"
    if [[ $fails -gt 0 ]]; then printf '%s + %s fail' "$count" "$fails"; else printf '%s' "$count"; fi
}

ratio_cells() {  # wharf-mode row scenario -> "median | min–max | n"
    local median min max count
    read -r median min max count <<<"$(pair_stats "$1" "$2" "$3")"
    if [[ $count -eq 0 ]]; then printf 'n/a | | 0'; return 0; fi
    printf '%.2f | %.2f–%.2f | %s' "$median" "$min" "$max" "$count"
}

# The issue's targets: scenario, wharf mode, peer row, factor wharf must reach, words.
TARGETS=(
    "a|sync|redis|aof-always|2|batched 1P+1C: wharf sync ≥ 2× Redis appendfsync always, pipelined 64"
    "b|sync|redis|aof-always|2|unbatched 8P+8C: wharf sync ≥ 2× Redis appendfsync always"
    "b|sync|beanstalkd|binlog-fsync|5|unbatched 8P+8C: wharf sync ≥ 5× beanstalkd fsync every write"
    "a|async|redis|no-persist|1|batched 1P+1C: wharf async ≥ Redis without persistence"
    "a|sync|rabbitmq|quorum|2|batched 1P+1C: wharf sync ≥ 2× RabbitMQ quorum queue + publisher confirms"
    "b|sync|rabbitmq|quorum|2|unbatched 8P+8C: wharf sync ≥ 2× RabbitMQ quorum queue + publisher confirms"
    "a|sync|nats|file-store|1|batched 1P+1C: wharf sync ≥ NATS JetStream, default file store"
    "b|sync|nats|file-store|1|unbatched 8P+8C: wharf sync ≥ NATS JetStream, default file store"
)

target_line() {  # one TARGETS entry -> a table row
    local sc ref system mode factor words median min max count status
    IFS='|' read -r sc ref system mode factor words <<<"$1"
    read -r median min max count <<<"$(pair_stats "$ref" "$system|$mode" "$sc")"
    if [[ $count -eq 0 ]]; then
        status="n/a"; median="n/a"
    else
        if awk -v m="$median" -v f="$factor" 'BEGIN { exit !(m >= f) }'; then status="met"; else status="not met"; fi
        if [[ $count -lt 3 ]]; then status="$status (only $count pair$([[ $count -eq 1 ]] || echo s); the issue asks for ≥ 3)"; fi
        median="$(printf '%.2f' "$median")"
    fi
    echo "| $words | ${factor}× | $median | $count | $status |"
}

report() {
    local row ref label pair
    echo "# wharf peer comparison"
    echo
    echo "$FACTS"
    echo "- duration: $(( ($(date +%s) - STARTED) / 60 )) min $(( ($(date +%s) - STARTED) % 60 )) s, $SEQ runs"
    echo
    echo "Scenario (a): 1 producer + 1 consumer, 64 jobs per round trip (or window)."
    echo "Scenario (b): 8 producers + 8 consumers, one job per request/command."
    echo "jobs/s = jobs produced, consumed and acknowledged / wall time from the first produce to the last ack."
    echo "Every pair is a wharf run immediately followed by the peer's run, same scenario; $PAIRS round(s) of all pairs,"
    echo "alternating wharf and the peers. Medians over all runs of a row, and over the pairs' ratios."
    echo
    echo "## Jobs/s, median of the runs"
    echo
    echo "| system | mode | durability | (a) 1P+1C batch 64 | (b) 8P+8C unbatched | runs (a) | runs (b) |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
    for row in "${ROWS[@]}"; do
        want "${row%%|*}" || continue
        echo "| ${row%%|*} | ${row#*|} | ${DURABILITY[$row]} | $(median_cell "$row" a) | $(median_cell "$row" b) | $(runs_cell "$row" a) | $(runs_cell "$row" b) |"
    done
    echo
    echo "## wharf / peer, median of the pairs' ratios"
    echo
    echo "Each ratio is wharf's jobs/s over the peer's in one pair (> 1: wharf is faster)."
    echo
    echo "| wharf | / system | mode | (a) median | (a) range | (a) pairs | (b) median | (b) range | (b) pairs |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for pair in "${PAIR_LIST[@]}"; do
        ref="${pair%%|*}"; row="${pair#*|}"
        [[ $ref == "-" ]] && continue
        echo "| $ref | ${row%%|*} | ${row#*|} | $(ratio_cells "$ref" "$row" a) | $(ratio_cells "$ref" "$row" b) |"
    done
    echo
    echo "## Targets (issue 14)"
    echo
    echo "| target | needs | median ratio | pairs | status |"
    echo "| --- | ---: | ---: | ---: | --- |"
    for label in "${TARGETS[@]}"; do target_line "$label"; done
    if want wharf && [[ -s "$RAW" ]]; then
        echo
        echo "wharf latency, ms p50/p99, medians over the runs (from \`wharf bench --json\`):"
        echo
        local mode sc line
        for mode in sync async; do
            for sc in a b; do
                line="$(jq -s -r --arg m "$mode" --arg sc "$sc" '
                    def median: sort | if length == 0 then null
                        elif length % 2 == 1 then .[length / 2 | floor]
                        else (.[length / 2 - 1] + .[length / 2]) / 2 end
                        | if . == null then null else (. * 1000 | round) / 1000 end;
                    [.[] | select(.system == "wharf" and .mode == $m and .scenario == $sc and .latency_ms)]
                    | if length == 0 then empty else
                        . as $runs | ($runs | map(.latency_ms | keys[]) | unique)
                        | map(. as $k | "\($k) \($runs | map(.latency_ms[$k].p50 // empty) | median)/\($runs | map(.latency_ms[$k].p99 // empty) | median)")
                        | join(", ") end' <"$RAW" 2>/dev/null)" || line=""
                if [[ -n "$line" ]]; then echo "- $mode ($sc): $line"; fi
            done
        done
    fi
    echo
    echo "<details><summary>raw results (one JSON line per run, in run order)</summary>"
    echo
    echo '```'
    cat "$RAW"
    echo '```'
    echo
    echo "</details>"
}

# ---------------------------------------------------------------------------------------------
# Main.

STARTED="$(date +%s)"
log "== building peer-bench"
cargo build --release --quiet --manifest-path "$HERE/client/Cargo.toml" \
    --target-dir "$HERE/client/target" || die "peer-bench did not build"

log "== preparing: $SYSTEMS"
for s in $SYSTEMS; do "prepare_$s"; done
FACTS="$(facts)"
log "$FACTS"

build_pairs
TOTAL_RUNS=0
for pair in "${PAIR_LIST[@]}"; do
    if [[ ${pair%%|*} == "-" ]]; then TOTAL_RUNS=$((TOTAL_RUNS + 1)); else TOTAL_RUNS=$((TOTAL_RUNS + 2)); fi
done
TOTAL_RUNS=$((TOTAL_RUNS * 2 * PAIRS))
log "== $TOTAL_RUNS runs: $PAIRS round(s) x 2 scenarios x ${#PAIR_LIST[@]} pairs"
run_rounds

REPORT="$(report)"
echo
echo "$REPORT"
echo "$REPORT" >"$HERE/results.md"
log ""
log "written to $HERE/results.md"
