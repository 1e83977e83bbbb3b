#!/usr/bin/env bash
# The broker against its own OpenAPI document: schemathesis generates requests for every
# operation of GET /v1/openapi.json (valid ones and broken ones), sends them to a live debug
# broker, and fails on any 5xx or any reply the document does not allow (status, content type,
# body schema).
#
#   bash scripts/schemathesis.sh [EXAMPLES_PER_OPERATION]      # default: 100 (about 75 s on 2 cores)
#
# Runs target/debug/wharf (built first, if needed) and schemathesis (tests/requirements.txt;
# PYTHON names the interpreter that has it, default python3). The broker runs on 127.0.0.1, a
# free port, in a temporary data dir, and is stopped at the end, on error and on Ctrl-C.
#
# The broker has one key, an operator key with every scope, and every request carries it: on a
# broker without keys a generated `POST /v1/keys` would create the first key, and every request
# after it would be a 401. So that this key is the one sent, schemathesis generates no
# Authorization headers of its own (--generation-with-security-parameters false), and
# scripts/schemathesis_hooks.py keeps the run from revoking it. Left out: `GET /v1/events/stream`,
# which never ends. Long polls are cut short by the hooks.
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${1:-100}
python=${PYTHON:-python3}
cargo build --locked --quiet --bin wharf
bin=target/debug/wharf

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

key=$("$bin" keys create --data-dir "$work/data" --tenant '*' --scope '*' --label schemathesis | tail -n 1)
key_id=${key#wk_}
key_id=${key_id%%_*}
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --data-dir "$work/data" --listen "127.0.0.1:$port" 2> "$work/server.log" &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do
  curl -sf "$base/readyz" > /dev/null && break
  sleep 0.1
done
curl -sf "$base/readyz" > /dev/null || { cat "$work/server.log" >&2; exit 1; }

status=0
# From the temporary directory, where schemathesis keeps its cache (.schemathesis/).
hooks="$PWD/scripts/schemathesis_hooks.py"
(cd "$work" && WHARF_KEY_ID=$key_id SCHEMATHESIS_HOOKS=$hooks "$python" -m schemathesis.cli run "$base/v1/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$examples" \
  --exclude-path /v1/events/stream \
  --header "Authorization: Bearer $key" \
  --request-timeout 10 \
  --generation-database none \
  --generation-with-security-parameters false \
  --no-color) \
  || status=$?

if ! kill -0 "$server" 2> /dev/null; then
  echo "the broker died during the run; its log:" >&2
  cat "$work/server.log" >&2
  status=1
fi
if grep -q "panicked" "$work/server.log"; then
  echo "the broker panicked during the run; its log:" >&2
  grep -B2 -A10 "panicked" "$work/server.log" >&2
  status=1
fi
exit "$status"
