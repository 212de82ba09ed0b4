#!/usr/bin/env bash
# Runs every suite against the ASan build and prints one final line:
#   N passed, N failed
# Suites: unit (Criterion), integration / e2e (Chromium) / media (ffmpeg) (node:test),
# fuzz (each libFuzzer target for FUZZ_SECONDS from its seed corpus).
# Usage: scripts/test.sh [suite...]   (default: all). Exit 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
OUT=build/test-results
rm -rf "$OUT"; mkdir -p "$OUT"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
suites=("$@"); [ ${#suites[@]} -eq 0 ] && suites=(unit integration e2e media fuzz)
total_pass=0; total_fail=0
declare -a summary

add() { # suite pass fail
  total_pass=$((total_pass + $2)); total_fail=$((total_fail + $3))
  summary+=("$(printf '%-12s %5d passed, %d failed' "$1" "$2" "$3")")
}

run_unit() {
  local log=$OUT/unit.log
  echo "== unit (Criterion, ASan+UBSan)"
  build/asan/unit_tests --jobs 2 > "$log" 2>&1; local rc=$?
  grep -E '^\[(FAIL|----)\]' "$log" | head -40
  local line; line=$(grep 'Synthesis:' "$log" | tail -1)
  echo "$line"
  local tested passing
  tested=$(sed -n 's/.*Tested: \([0-9]*\).*/\1/p' <<<"$line"); passing=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line")
  if [ -z "$tested" ]; then add unit 0 1; return; fi
  local failed=$((tested - passing))
  [ $rc -ne 0 ] && [ $failed -eq 0 ] && failed=1
  add unit "$passing" "$failed"
}

run_node() { # suite dir
  local dir=tests/$2
  if ! ls "$dir"/*.test.mjs >/dev/null 2>&1; then return; fi
  echo "== $1 (node:test)"
  local tap=$OUT/$1.tap
  timeout 1800 node --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout=300000 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" "$dir"/*.test.mjs 2>&1 | tail -n 400
  local pass fail
  pass=$(grep -E '^# pass [0-9]+' "$tap" | tail -1 | awk '{print $3}')
  fail=$(grep -E '^# fail [0-9]+' "$tap" | tail -1 | awk '{print $3}')
  add "$1" "${pass:-0}" "${fail:-1}"
}

run_fuzz() {
  local bins=(build/fuzz/bin/fuzz_*)
  [ -e "${bins[0]}" ] || return
  echo "== fuzz (libFuzzer, ${FUZZ_SECONDS}s each)"
  local pass=0 fail=0 pids=() names=()
  for b in "${bins[@]}"; do
    local name; name=$(basename "$b"); name=${name#fuzz_}
    local seeds=fuzz/corpus/$name work=$OUT/fuzz-$name
    mkdir -p "$work" "$seeds"
    ( "$b" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
        -artifact_prefix="$OUT/crash-$name-" "$work" "$seeds" > "$OUT/fuzz-$name.log" 2>&1 ) &
    pids+=($!); names+=("$name")
    if [ ${#pids[@]} -ge 2 ]; then
      wait "${pids[0]}"; local rc=$?
      if [ $rc -eq 0 ]; then pass=$((pass+1)); echo "  ok   ${names[0]}"; else fail=$((fail+1)); echo "  FAIL ${names[0]} (see $OUT/fuzz-${names[0]}.log)"; tail -20 "$OUT/fuzz-${names[0]}.log"; fi
      pids=("${pids[@]:1}"); names=("${names[@]:1}")
    fi
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"; local rc=$?
    if [ $rc -eq 0 ]; then pass=$((pass+1)); echo "  ok   ${names[$i]}"; else fail=$((fail+1)); echo "  FAIL ${names[$i]}"; tail -20 "$OUT/fuzz-${names[$i]}.log"; fi
  done
  add fuzz "$pass" "$fail"
}

for s in "${suites[@]}"; do
  case "$s" in
    unit) run_unit ;;
    integration) run_node integration integration ;;
    e2e) run_node e2e e2e ;;
    media) run_node media media ;;
    fuzz) run_fuzz ;;
    *) echo "unknown suite $s"; exit 2 ;;
  esac
done
echo
echo "== summary"
for l in "${summary[@]}"; do echo "  $l"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
