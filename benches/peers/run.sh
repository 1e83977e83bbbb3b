#!/usr/bin/env bash
# Peer comparison: wharf vs Redis, beanstalkd and PostgreSQL, same workload, same machine.
#
#   bash benches/peers/run.sh                 # 100000 jobs per run
#   JOBS=5000 bash benches/peers/run.sh       # quick check
#   SYSTEMS="wharf redis" bash benches/peers/run.sh
#
# Starts its own throwaway instances on loopback (Redis :6390, beanstalkd :11400,
# PostgreSQL :5440) in a temp dir, stops them and removes the dir at the end. It never touches
# the machine's shared Redis (:6379) or PostgreSQL (:5432). Prints a table and writes it to
# benches/peers/results.md. See benches/peers/README.md.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT" || exit 1

JOBS="${JOBS:-100000}"
PAYLOAD_BYTES=256
RUN_TIMEOUT="${RUN_TIMEOUT:-120}"          # seconds per run, enforced inside the clients
SYSTEMS="${SYSTEMS:-wharf redis beanstalkd postgres}"
REDIS_PORT=6390
BEANSTALKD_PORT=11400
PG_PORT=5440
# Scenario (a): 1 producer + 1 consumer, 64 jobs per round trip.
# Scenario (b): 8 producers + 8 consumers, one job per request/command.
declare -A SC_P=([a]=1 [b]=8) SC_C=([a]=1 [b]=8) SC_B=([a]=64 [b]=1)

log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 1; }
want() { [[ " $SYSTEMS " == *" $1 "* ]]; }

[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive integer (got '$JOBS')"
[[ "$RUN_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "RUN_TIMEOUT must be a positive integer of seconds"
command -v jq >/dev/null || die "jq is needed (apt-get install -y jq)"
command -v cargo >/dev/null || die "cargo is needed"

WORK="$(mktemp -d /tmp/wharf-peers.XXXXXX)" || die "mktemp failed"
chmod 755 "$WORK"                          # the postgres user must reach its data dir inside
RAW="$WORK/raw.jsonl"
: >"$RAW"

# ---------------------------------------------------------------------------------------------
# Processes this script started (by pid), and cleanup.

SERVER_PID=""
CHILD_PID=""
PG_DATA=""
PG_RUNNING=0

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=""
    fi
}

as_pg() {
    if [[ $EUID -eq 0 ]]; then (cd "$WORK" && runuser -u postgres -- "$@"); else "$@"; fi
}

stop_pg() {
    if [[ $PG_RUNNING -eq 1 ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >>"$WORK/pg/ctl.log" 2>&1
        PG_RUNNING=0
    fi
}

# Runs a command in the background and waits for it, so that a signal to this script is acted
# on at once (bash defers traps while a foreground child runs); cleanup stops the child.
bg_wait() {
    "$@" &
    CHILD_PID=$!
    wait "$CHILD_PID"
    local rc=$?
    CHILD_PID=""
    return $rc
}

cleanup() {
    if [[ -n "$CHILD_PID" ]]; then
        kill "$CHILD_PID" 2>/dev/null
        wait "$CHILD_PID" 2>/dev/null
    fi
    stop_server
    stop_pg
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() {
    if command -v ss >/dev/null; then
        ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

wait_port() {  # wait up to 15 s for something to accept on 127.0.0.1:$1
    for _ in $(seq 1 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# Results: RES[system|mode|scenario] = jobs/s, or n/a / fail.

declare -A RES
declare -A DURABILITY
ROWS=()        # "system|mode" in print order

add_row() { ROWS+=("$1|$2"); DURABILITY["$1|$2"]="$3"; }

fmt_rate() { # number -> integer jobs/s; anything else as is
    if [[ "$1" =~ ^[0-9.]+$ ]]; then printf '%.0f' "$1"; else printf '%s' "$1"; fi
}

PEER_BENCH="$HERE/client/target/release/peer-bench"

peer_run() {  # system addr mode scenario
    local system=$1 addr=$2 mode=$3 sc=$4 out
    log "  $system $mode scenario $sc (P=${SC_P[$sc]} C=${SC_C[$sc]} batch=${SC_B[$sc]}, $JOBS jobs)"
    bg_wait timeout $((RUN_TIMEOUT + 30)) "$PEER_BENCH" --system "$system" --addr "$addr" \
        --producers "${SC_P[$sc]}" --consumers "${SC_C[$sc]}" --jobs "$JOBS" \
        --payload-bytes "$PAYLOAD_BYTES" --batch "${SC_B[$sc]}" \
        --timeout-sec "$RUN_TIMEOUT" --label "$mode" >"$WORK/peer-bench.out" 2>>"$WORK/peer-bench.err"
    out="$(tail -n 1 "$WORK/peer-bench.out")"
    if [[ -n "$out" ]] && jq -e . >/dev/null 2>&1 <<<"$out"; then
        echo "$out" | jq -c --arg sc "$sc" '. + {scenario: $sc}' >>"$RAW"
    fi
    if [[ -n "$out" ]] && jq -e '.complete == true' >/dev/null 2>&1 <<<"$out"; then
        RES["$system|$mode|$sc"]="$(jq -r .jobs_per_sec <<<"$out")"
        log "    -> $(fmt_rate "${RES["$system|$mode|$sc"]}") jobs/s"
    else
        RES["$system|$mode|$sc"]="fail"
        log "    -> FAILED: ${out:-no output} $(tail -n 3 "$WORK/peer-bench.err" 2>/dev/null)"
    fi
}

# ---------------------------------------------------------------------------------------------
# Machine facts.

dsync_rate() {  # extra dd flags... -> "writes/s|seconds" for 1000 synchronous 4 KiB writes
    local secs
    secs="$(dd if=/dev/zero of="$WORK/fsync-probe" bs=4k count=1000 oflag=dsync "$@" 2>&1 \
        | sed -n 's/.*copied, \([0-9.e-]*\) s,.*/\1/p')"
    if [[ -n "$secs" ]]; then
        awk -v s="$secs" 'BEGIN { printf "%.0f|%s", 1000 / s, s }'
    else
        printf '?|?'
    fi
}

facts() {
    local mem cpu fresh over
    mem="$(free -h 2>/dev/null | awk '/^Mem:/ {print $2}')"
    cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)"
    rm -f "$WORK/fsync-probe"
    fresh="$(dsync_rate)"                  # appending: every write also commits file metadata
    over="$(dsync_rate conv=notrunc)"      # overwriting the same 4 MB in place: data only
    rm -f "$WORK/fsync-probe"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- wharf commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
    echo "- nproc: $(nproc)"
    echo "- cpu: ${cpu:-?}"
    echo "- memory: ${mem:-?}"
    echo "- disk fsync rate: ${fresh%%|*} writes/s (dd if=/dev/zero bs=4k count=1000 oflag=dsync to a new file in $(dirname "$WORK"): ${fresh#*|} s); overwriting that file in place (conv=notrunc): ${over%%|*} writes/s"
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- jobs per run: $JOBS, payload: $PAYLOAD_BYTES bytes, per-run timeout: ${RUN_TIMEOUT} s"
}

# ---------------------------------------------------------------------------------------------
# wharf: `wharf bench` (in-process broker + clients), JSON report.

declare -A WHARF_LAT
run_wharf() {
    add_row wharf sync "fsync before every reply"
    add_row wharf async "fsync every interval"
    log "== wharf"
    if ! cargo build --release --quiet >"$WORK/wharf-build.log" 2>&1; then
        log "  cargo build --release failed (see below); wharf is n/a"
        tail -n 20 "$WORK/wharf-build.log" >&2
        return
    fi
    if ! cargo run --release --quiet -- bench --help >/dev/null 2>&1; then
        log "  'wharf bench' does not exist yet; wharf is n/a"
        for m in sync async; do for sc in a b; do RES["wharf|$m|$sc"]="n/a"; done; done
        return
    fi
    local mode sc json
    for mode in sync async; do
        for sc in a b; do
            json="$WORK/wharf-$mode-$sc.json"
            mkdir -p "$WORK/wharf-tmp"
            log "  wharf $mode scenario $sc (P=${SC_P[$sc]} C=${SC_C[$sc]} batch=${SC_B[$sc]}, $JOBS jobs)"
            bg_wait env TMPDIR="$WORK/wharf-tmp" timeout $((RUN_TIMEOUT + 60)) \
                cargo run --release --quiet -- bench \
                --producers "${SC_P[$sc]}" --consumers "${SC_C[$sc]}" --jobs "$JOBS" \
                --payload-bytes "$PAYLOAD_BYTES" --batch "${SC_B[$sc]}" \
                --poll-max "${SC_B[$sc]}" --ack-batch "${SC_B[$sc]}" \
                --durability "$mode" --duration "$RUN_TIMEOUT" --json "$json" >"$WORK/wharf-$mode-$sc.out" 2>&1
            rm -rf "$WORK/wharf-tmp"
            if [[ -s "$json" ]] && jq -e --argjson n "$JOBS" '(.cycles_per_sec | numbers) and (.completed >= $n)' \
                >/dev/null 2>&1 <"$json"; then
                RES["wharf|$mode|$sc"]="$(jq -r .cycles_per_sec <"$json")"
                WHARF_LAT["$mode|$sc"]="$(jq -r '[.latency_ms // {} | to_entries[] |
                    "\(.key) \(.value.p50 // "?")/\(.value.p99 // "?")"] | join(", ")' <"$json" 2>/dev/null)"
                jq -c --arg sc "$sc" --arg mode "$mode" '{system: "wharf", label: $mode, scenario: $sc} + .' <"$json" >>"$RAW" 2>/dev/null
                log "    -> $(fmt_rate "${RES["wharf|$mode|$sc"]}") jobs/s"
            else
                RES["wharf|$mode|$sc"]="fail"
                log "    -> FAILED (incomplete or no report):"
                [[ -s "$json" ]] && jq -c '{completed, enqueued, elapsed_sec, errors}' <"$json" >&2 2>/dev/null
                tail -n 5 "$WORK/wharf-$mode-$sc.out" >&2
            fi
        done
    done
}

# ---------------------------------------------------------------------------------------------
# Redis on :6390.

run_redis() {
    add_row redis aof-always "AOF fsync before replies"
    add_row redis no-persist "none (memory only)"
    log "== redis"
    if ! command -v redis-server >/dev/null; then
        log "  redis-server not found; redis is n/a"; return
    fi
    local mode dir sc
    for mode in aof-always no-persist; do
        if port_busy "$REDIS_PORT"; then
            log "  port $REDIS_PORT is already in use; not starting redis ($mode)"; continue
        fi
        dir="$WORK/redis-$mode"; mkdir -p "$dir"
        local extra=(--save "" --appendonly no)
        [[ $mode == aof-always ]] && extra=(--save "" --appendonly yes --appendfsync always)
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --daemonize no \
            --logfile "$dir/redis.log" "${extra[@]}" &
        SERVER_PID=$!
        if ! wait_port "$REDIS_PORT"; then
            log "  redis ($mode) did not start"; tail -n 5 "$dir/redis.log" >&2; stop_server; continue
        fi
        for sc in a b; do peer_run redis "127.0.0.1:$REDIS_PORT" "$mode" "$sc"; done
        stop_server
        rm -rf "$dir"
    done
}

# ---------------------------------------------------------------------------------------------
# beanstalkd on :11400.

run_beanstalkd() {
    add_row beanstalkd binlog-fsync "binlog, fsync every write (-f 0)"
    add_row beanstalkd no-binlog "none (memory only)"
    log "== beanstalkd"
    if ! command -v beanstalkd >/dev/null; then
        log "  installing beanstalkd"
        apt-get install -y beanstalkd >"$WORK/apt.log" 2>&1 \
            || { apt-get update >>"$WORK/apt.log" 2>&1 && apt-get install -y beanstalkd >>"$WORK/apt.log" 2>&1; }
    fi
    if ! command -v beanstalkd >/dev/null; then
        log "  beanstalkd is not installed and could not be; beanstalkd is n/a"
        tail -n 5 "$WORK/apt.log" >&2 2>/dev/null; return
    fi
    local mode dir sc
    for mode in binlog-fsync no-binlog; do
        if port_busy "$BEANSTALKD_PORT"; then
            log "  port $BEANSTALKD_PORT is already in use; not starting beanstalkd ($mode)"; continue
        fi
        dir="$WORK/beanstalkd-$mode"; mkdir -p "$dir"
        local extra=()
        [[ $mode == binlog-fsync ]] && extra=(-b "$dir" -f 0)
        beanstalkd -l 127.0.0.1 -p "$BEANSTALKD_PORT" "${extra[@]}" >"$WORK/beanstalkd-$mode.log" 2>&1 &
        SERVER_PID=$!
        if ! wait_port "$BEANSTALKD_PORT"; then
            log "  beanstalkd ($mode) did not start"; stop_server; continue
        fi
        for sc in a b; do peer_run beanstalkd "127.0.0.1:$BEANSTALKD_PORT" "$mode" "$sc"; done
        stop_server
        rm -rf "$dir"
    done
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster on :5440.

PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"

run_postgres() {
    add_row postgres sync-commit-on "WAL flush before commit returns"
    add_row postgres sync-commit-off "WAL fsync in background (fsync=on)"
    log "== postgres"
    if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
        log "  no initdb under /usr/lib/postgresql/*/bin; postgres is n/a"; return
    fi
    if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        log "  running as root but there is no postgres user; postgres is n/a"; return
    fi
    mkdir -p "$WORK/pg"
    [[ $EUID -eq 0 ]] && chown postgres: "$WORK/pg"
    PG_DATA="$WORK/pg/data"
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 \
        >"$WORK/pg-initdb.log" 2>&1; then
        log "  initdb failed; postgres is n/a"; tail -n 5 "$WORK/pg-initdb.log" >&2; return
    fi
    local mode commit sc
    for mode in sync-commit-on sync-commit-off; do
        if port_busy "$PG_PORT"; then
            log "  port $PG_PORT is already in use; not starting postgres ($mode)"; continue
        fi
        commit="on"; [[ $mode == sync-commit-off ]] && commit="off"
        if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pg/server.log" -w -t 60 \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$WORK/pg -c fsync=on -c synchronous_commit=$commit" \
            start >>"$WORK/pg/ctl.log" 2>&1; then
            log "  postgres ($mode) did not start"; tail -n 5 "$WORK/pg/server.log" >&2; continue
        fi
        PG_RUNNING=1
        for sc in a b; do peer_run postgres "127.0.0.1:$PG_PORT" "$mode" "$sc"; done
        stop_pg
    done
}

# ---------------------------------------------------------------------------------------------
# Main.

log "== building peer-bench"
cargo build --release --quiet --manifest-path "$HERE/client/Cargo.toml" \
    --target-dir "$HERE/client/target" || die "peer-bench did not build"

FACTS="$(facts)"
log "$FACTS"

want wharf && run_wharf
want redis && run_redis
want beanstalkd && run_beanstalkd
want postgres && run_postgres

ratio() {  # wharf-sync / peer, for one scenario
    local w="${RES["wharf|sync|$2"]:-}" p="${RES["$1|$2"]:-}"
    if [[ "$w" =~ ^[0-9.]+$ && "$p" =~ ^[0-9.]+$ ]] && awk -v p="$p" 'BEGIN { exit !(p > 0) }'; then
        awk -v w="$w" -v p="$p" 'BEGIN { printf "%.2f", w / p }'
    else
        printf 'n/a'
    fi
}

report() {
    echo "# wharf peer comparison"
    echo
    echo "$FACTS"
    echo
    echo "Scenario (a): 1 producer + 1 consumer, 64 jobs per round trip."
    echo "Scenario (b): 8 producers + 8 consumers, one job per request/command."
    echo "jobs/s = jobs produced, consumed and acknowledged / wall time from the first produce to the last ack."
    echo "ratio = wharf (sync) jobs/s / this row's jobs/s, same scenario (> 1: wharf sync is faster)."
    echo
    echo "| system | mode | durability | (a) 1P+1C batch 64, jobs/s | (b) 8P+8C unbatched, jobs/s | wharf-sync / this (a) | wharf-sync / this (b) |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
    local row
    for row in "${ROWS[@]}"; do
        echo "| ${row%%|*} | ${row#*|} | ${DURABILITY[$row]} | $(fmt_rate "${RES["$row|a"]:-n/a}") | $(fmt_rate "${RES["$row|b"]:-n/a}") | $(ratio "$row" a) | $(ratio "$row" b) |"
    done
    if [[ -n "${WHARF_LAT[*]:-}" ]]; then
        echo
        echo "wharf latency, ms p50/p99 (from \`wharf bench --json\`):"
        echo
        local key
        for key in sync\|a sync\|b async\|a async\|b; do
            [[ -n "${WHARF_LAT[$key]:-}" ]] && echo "- ${key%%|*} (${key#*|}): ${WHARF_LAT[$key]}"
        done
    fi
    echo
    echo "<details><summary>raw results (one JSON line per run)</summary>"
    echo
    echo '```'
    cat "$RAW"
    echo '```'
    echo
    echo "</details>"
}

REPORT="$(report)"
echo
echo "$REPORT"
echo "$REPORT" >"$HERE/results.md"
log ""
log "written to $HERE/results.md"
