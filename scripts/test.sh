#!/usr/bin/env bash
# Runs the suites against the ASan build. The LAST line of output is always exactly
#   N passed, N failed, N skipped
# (totals; one such line per suite is printed in the summary above it). Exit 0 only when
# nothing failed.
#
# Suites: lint (scripts/lint.sh, one check), meta (the runner's own tests, tests/meta),
# unit (Criterion; every sanitizer report in its log is a failure too), integration /
# e2e (Chromium) / media (ffmpeg) (node:test, tests/<suite>/*.test.mjs), fuzz (each
# libFuzzer target for FUZZ_SECONDS from its seed corpus).
#
# What counts as a failure:
#   node:test   every `not ok` in the TAP report at any nesting depth (a failing hook,
#               a file that throws, a cancelled test), except a suite's own line when it
#               only repeats its failing subtests, and `# TODO` tests; node's `# fail` and
#               `# cancelled` counts if they are higher; a non-zero exit of node with no
#               failure counted counts as one.
#   unit        Criterion's Tested - Passing (failures and crashes), and a non-zero exit
#               of the runner with none counted counts as one.
#   fuzz        each target that exits non-zero, does not report its runs, or is missing.
#   any suite   that ran nothing: no test files, node / the Criterion binary / the
#               fuzzers missing, 0 tests reported.
# Skipped = skipped + todo tests (node), tests Criterion skipped (cr_skip_test).
#
# Usage: scripts/test.sh [suite...]       default: meta unit integration e2e media fuzz
#        scripts/test.sh --files PATH...  runs these node:test files as one suite, "files";
#                                         a directory stands for its *.test.mjs files
# Env:   FUZZ_SECONDS (20), TEST_CONCURRENCY (2), UNIT_TESTS_BIN (build/asan/unit_tests; the meta
#        suite points it at a throwaway binary), TEST_RESULTS_DIR (build/test-results,
#        emptied first only when it is the default).
set -uo pipefail

files=()
if [ "${1:-}" = "--files" ]; then
  shift
  [ $# -gt 0 ] || { echo "usage: $0 --files PATH..." >&2; exit 2; }
  for p in "$@"; do
    if [ -d "$p" ]; then
      for f in "$p"/*.test.mjs; do [ -e "$f" ] && files+=("$(realpath "$f")"); done
    elif [ -e "$p" ]; then
      files+=("$(realpath "$p")")
    else
      echo "no such file: $p" >&2; exit 2
    fi
  done
  suites=(files)
else
  suites=("$@")
  [ ${#suites[@]} -eq 0 ] && suites=(lint meta unit integration e2e media fuzz)
  for s in "${suites[@]}"; do
    case "$s" in
      lint|meta|unit|integration|e2e|media|fuzz) ;;
      *) echo "unknown suite $s (meta unit integration e2e media fuzz, or --files PATH...)" >&2; exit 2 ;;
    esac
  done
fi

cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
OUT=${TEST_RESULTS_DIR:-build/test-results}
[ -z "${TEST_RESULTS_DIR:-}" ] && rm -rf "$OUT"
mkdir -p "$OUT"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
total_pass=0; total_fail=0; total_skip=0
declare -a summary

add() { # suite pass fail skip
  total_pass=$((total_pass + $2)); total_fail=$((total_fail + $3)); total_skip=$((total_skip + $4))
  summary+=("$(printf '%-12s %d passed, %d failed, %d skipped' "$1" "$2" "$3" "$4")")
}
num() { [[ "${1:-}" =~ ^[0-9]+$ ]] && echo "$1" || echo 0; }

run_lint() { # make lint: one check, passed or failed (its problems are listed)
  echo "== lint (scripts/lint.sh)"
  scripts/lint.sh > "$OUT/lint.log" 2>&1; local rc=$?
  if [ $rc -eq 0 ]; then tail -1 "$OUT/lint.log"; add lint 1 0 0
  else grep -v '^lint:' "$OUT/lint.log" | head -40; tail -1 "$OUT/lint.log"; add lint 0 1 0; fi
}

run_unit() {
  local bin=${UNIT_TESTS_BIN:-build/asan/unit_tests} log=$OUT/unit.log json=$OUT/unit.json
  echo "== unit (Criterion, ASan+UBSan)"
  if [ ! -x "$bin" ]; then echo "  FAIL: $bin is missing (make asan): the suite ran nothing"; add unit 0 1 0; return; fi
  "$bin" --jobs 2 --json="$json" > "$log" 2>&1; local rc=$?
  grep -E '^\[(FAIL|----)\]' "$log" | head -40
  local line; line=$(grep 'Synthesis:' "$log" | tail -1)
  echo "$line"
  local tested passing failing crashing skipped
  tested=$(sed -n 's/.*Tested: \([0-9]*\).*/\1/p' <<<"$line")
  passing=$(num "$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line")")
  failing=$(num "$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$line")")
  crashing=$(num "$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$line")")
  skipped=$(num "$(grep -m1 -o '"skipped": *[0-9]*' "$json" 2>/dev/null | grep -o '[0-9]*$')")
  if [ -z "$tested" ]; then
    echo "  FAIL: no Criterion synthesis (runner crashed? exit $rc), see $log"; add unit 0 1 "$skipped"; return
  fi
  local failed=$((tested - passing))
  [ "$failing" -gt "$failed" ] && failed=$failing
  [ "$crashing" -gt "$failed" ] && failed=$crashing
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then echo "  FAIL: unit_tests exited $rc with no failing test counted"; failed=1; fi
  if [ "$tested" -eq 0 ]; then echo "  FAIL: 0 tests ran"; failed=$((failed + 1)); fi
  # Criterion runs each test in a child whose sanitizer report does not fail the test: every
  # ASan/LSan/UBSan report in the log is a failure of its own.
  local san
  san=$(grep -cE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log")
  if [ "$san" -gt 0 ]; then
    echo "  FAIL: $san sanitizer report(s) in $log:"
    grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | head -10
    failed=$((failed + san)); passing=$((passing > san ? passing - san : 0))
  fi
  add unit "$passing" "$failed" "$skipped"
}

# Counts a node:test TAP report: prints "pass fail skipped todo cancelled tests notok summary".
tap_counts() {
  awk '
    BEGIN { pass = fail = skip = todo = canc = tests = notok = 0; summary = 0; yaml = 0; pending = 0 }
    /^[ \t]*---[ \t]*$/ { yaml = 1; next }
    /^[ \t]*\.\.\.[ \t]*$/ { yaml = 0; pending = 0; next }
    yaml { if (pending && $0 ~ /failureType: .subtestsFailed./) { notok--; pending = 0 } next }
    /^[ \t]*not ok [0-9]+/ { pending = 0; if ($0 !~ /# TODO/) { notok++; pending = 1 } next }
    /^[ \t]*ok [0-9]+/ { pending = 0; next }
    /^# tests [0-9]+/ { tests = $3; summary = 1 }
    /^# pass [0-9]+/ { pass = $3 }
    /^# fail [0-9]+/ { fail = $3 }
    /^# cancelled [0-9]+/ { canc = $3 }
    /^# skipped [0-9]+/ { skip = $3 }
    /^# todo [0-9]+/ { todo = $3 }
    END { print pass, fail, skip, todo, canc, tests, notok, summary }
  ' "$1" 2>/dev/null || echo "0 0 0 0 0 0 0 0"
}

run_node() { # suite file...
  local name=$1; shift
  echo "== $name (node:test)"
  if ! command -v node >/dev/null 2>&1; then echo "  FAIL: node not found: the suite ran nothing"; add "$name" 0 1 0; return; fi
  if [ $# -eq 0 ]; then echo "  FAIL: no test files: the suite ran nothing"; add "$name" 0 1 0; return; fi
  local tap=$OUT/$name.tap
  rm -f "$tap"
  timeout 1800 node --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout=300000 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" "$@" 2>&1 | tail -n 400
  local rc=${PIPESTATUS[0]}
  local pass fail skip todo canc tests notok summ
  read -r pass fail skip todo canc tests notok summ < <(tap_counts "$tap")
  local failed=$notok
  [ $((fail + canc)) -gt "$failed" ] && failed=$((fail + canc))
  if [ "$summ" -eq 0 ]; then
    echo "  FAIL: no TAP summary from node (exit $rc): the run did not finish"; [ "$failed" -eq 0 ] && failed=1
  fi
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "  FAIL: node exited $rc with no failing test counted"; failed=1
  fi
  if [ "$summ" -ne 0 ] && [ $((pass + fail + skip + todo + canc)) -eq 0 ]; then
    echo "  FAIL: 0 tests reported: the suite ran nothing"; failed=$((failed + 1))
  fi
  [ "$notok" -gt 0 ] && echo "  not ok lines (failures at any depth): $notok (node's # fail: $fail)"
  add "$name" "$pass" "$failed" $((skip + todo))
}

run_node_dir() { # suite dir
  local f list=()
  for f in tests/"$2"/*.test.mjs; do [ -e "$f" ] && list+=("$f"); done
  run_node "$1" "${list[@]}"
}

run_fuzz() {
  echo "== fuzz (libFuzzer, ${FUZZ_SECONDS}s each)"
  local bins=() src
  for src in fuzz/fuzz_*.c; do [ -e "$src" ] && bins+=("build/fuzz/bin/$(basename "$src" .c)"); done
  if [ ${#bins[@]} -eq 0 ]; then echo "  FAIL: no fuzz targets in fuzz/: the suite ran nothing"; add fuzz 0 1 0; return; fi
  local pass=0 fail=0 pids=() names=() b
  check() { # name rc
    local log=$OUT/fuzz-$1.log
    if [ "$2" -eq 0 ] && grep -qE '^Done [0-9]+ runs' "$log"; then
      pass=$((pass+1)); echo "  ok   $1 ($(grep -oE '^Done [0-9]+ runs' "$log" | tail -1))"
    else
      fail=$((fail+1)); echo "  FAIL $1 (exit $2; see $log)"; tail -20 "$log"
    fi
  }
  for b in "${bins[@]}"; do
    local name; name=$(basename "$b"); name=${name#fuzz_}
    if [ ! -x "$b" ]; then fail=$((fail+1)); echo "  FAIL $name: $b not built (make fuzz)"; continue; fi
    local seeds=fuzz/corpus/$name work=$OUT/fuzz-$name
    mkdir -p "$work" "$seeds"
    ( "$b" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
        -artifact_prefix="$OUT/crash-$name-" "$work" "$seeds" > "$OUT/fuzz-$name.log" 2>&1 ) &
    pids+=($!); names+=("$name")
    if [ ${#pids[@]} -ge 2 ]; then
      wait "${pids[0]}"; check "${names[0]}" $?
      pids=("${pids[@]:1}"); names=("${names[@]:1}")
    fi
  done
  local i
  for i in "${!pids[@]}"; do wait "${pids[$i]}"; check "${names[$i]}" $?; done
  add fuzz "$pass" "$fail" 0
}

for s in "${suites[@]}"; do
  case "$s" in
    lint) run_lint ;;
    unit) run_unit ;;
    meta|integration|e2e|media) run_node_dir "$s" "$s" ;;
    fuzz) run_fuzz ;;
    files) run_node files "${files[@]}" ;;
  esac
done
echo
echo "== summary"
for l in "${summary[@]}"; do echo "  $l"; done
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
