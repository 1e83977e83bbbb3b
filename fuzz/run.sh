#!/usr/bin/env bash
# Builds every fuzz target, runs each for SECONDS (default 20) from its committed seed corpus, and
# runs every saved crash input of fuzz/regressions/<target>/ through its target. Exits non-zero
# if any target crashes. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and works on
# stable Rust: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_PER_TARGET=${1:-20}
TARGETS=(journal records cron http_bodies event_query broker_model)
# The default build is release with debug assertions and overflow checks. No sanitizer: wharf
# forbids unsafe code, and AddressSanitizer made every redb commit ~30x slower here.
BUILD=(cargo fuzz build --sanitizer none)
BIN=target/x86_64-unknown-linux-gnu/release

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

echo "== fuzz: build"
"${BUILD[@]}"

failed=()
bad=0
for target in "${TARGETS[@]}"; do
  before=${#failed[@]}
  regressions=(regressions/"$target"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "== fuzz: $target: ${#regressions[@]} regression input(s)"
    if ! "$BIN/$target" "${regressions[@]}" > "regressions-$target.log" 2>&1; then
      tail -n 40 "regressions-$target.log"
      failed+=("$target (regressions)")
    fi
    rm -f "regressions-$target.log"
  fi

  echo "== fuzz: $target for ${SECONDS_PER_TARGET}s"
  # A scratch corpus, so that CI starts from the seeds alone and leaves nothing behind.
  scratch=$(mktemp -d)
  mkdir -p artifacts/"$target"
  if ! "$BIN/$target" "$scratch" corpus/"$target" \
      -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -print_final_stats=1 \
      -artifact_prefix=artifacts/"$target"/ > "run-$target.log" 2>&1; then
    tail -n 60 "run-$target.log"
    failed+=("$target")
  else
    grep -E "stat::number_of_executed_units|DONE" "run-$target.log" || true
  fi
  rm -rf "$scratch" "run-$target.log"
  [ ${#failed[@]} -gt "$before" ] && bad=$((bad + 1))
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "== fuzz: FAILED: ${failed[*]} (crash inputs are in fuzz/artifacts/<target>/)"
  echo "fuzz: $((${#TARGETS[@]} - bad)) passed, $bad failed"
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} passed, 0 failed"
