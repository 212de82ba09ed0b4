#!/usr/bin/env bash
# make fuzz-long: every libFuzzer target (build/fuzz/bin/fuzz_*, ASan + UBSan) for FUZZ_SECONDS
# each (default 600), starting from fuzz/corpus/<target>/; then the old corpus and the new
# inputs are merged and minimised (-merge=1) and written back to fuzz/corpus/<target>/ (a seed
# whose content survives keeps its name; hand-written seeds, not named by SHA-1, always stay).
# A crash, leak, timeout or OOM leaves its reproducer in
# build/fuzz-long/artifacts/ and counts as a crash (a timeout only if its input, run again alone,
# still times out: a host pause fakes one). One summary line at the end; exit 1 on a crash.
# Env: FUZZ_SECONDS (600), FUZZ_TARGETS ("static_path config_env": a subset), FUZZ_RSS_MB (2048).
set -uo pipefail
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-600}
RSS=${FUZZ_RSS_MB:-2048}
WORK=build/fuzz-long
rm -rf "$WORK"
mkdir -p "$WORK/artifacts"
targets=()
if [ -n "${FUZZ_TARGETS:-}" ]; then
  for t in $FUZZ_TARGETS; do targets+=("build/fuzz/bin/fuzz_${t#fuzz_}"); done
else
  for b in build/fuzz/bin/fuzz_*; do targets+=("$b"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz-long: no fuzz targets built (make fuzz)"; exit 2; }
total_runs=0; crashes=0; unconfirmed=0; failed=(); before_all=0; after_all=0; t0=$(date +%s)
for bin in "${targets[@]}"; do
  [ -x "$bin" ] || { echo "fuzz-long: $bin missing" >&2; crashes=$((crashes + 1)); failed+=("$(basename "$bin"):missing"); continue; }
  name=$(basename "$bin"); short=${name#fuzz_}
  corpus=fuzz/corpus/$short
  mkdir -p "$corpus" "$WORK/new/$short" "$WORK/merged/$short"
  before=$(find "$corpus" -type f | wc -l)
  log=$WORK/$short.log
  nice -n 19 "$bin" -max_total_time="$SECS" -timeout=25 -rss_limit_mb="$RSS" -print_final_stats=1 \
    -artifact_prefix="$WORK/artifacts/$short-" "$WORK/new/$short" "$corpus" > "$log" 2>&1
  rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  runs=${runs:-0}
  total_runs=$((total_runs + runs))
  # A timeout is confirmed by running its input again on its own: libFuzzer's timeout is wall
  # time, and a host that stops or starves the process (shared machines do) fakes one.
  for a in $(find "$WORK/artifacts" -name "$short-timeout-*" -type f); do
    if nice -n 19 "$bin" -timeout=25 -rss_limit_mb="$RSS" "$a" > "$WORK/$short.recheck.log" 2>&1; then
      echo "fuzz-long: $name: timeout not reproduced when run alone (host pause): $(basename "$a") dropped" >&2
      rm -f "$a"; unconfirmed=$((unconfirmed + 1))
      [ $rc -eq 70 ] && rc=0
    fi
  done
  arts=$(find "$WORK/artifacts" -name "$short-*" -type f | wc -l)
  if [ $rc -ne 0 ] || [ "$arts" -gt 0 ]; then
    crashes=$((crashes + 1)); failed+=("$name:rc=$rc")
    echo "fuzz-long: $name FAILED (rc $rc); reproducer(s):" >&2
    find "$WORK/artifacts" -name "$short-*" -type f >&2
    grep -m3 -E 'ERROR|SUMMARY' "$log" >&2
  fi
  # merge + minimise: the old corpus and this run's new inputs
  nice -n 19 "$bin" -merge=1 -timeout=25 -rss_limit_mb="$RSS" "$WORK/merged/$short" "$corpus" "$WORK/new/$short" \
    > "$WORK/$short.merge.log" 2>&1
  if [ $? -eq 0 ] && [ -n "$(ls -A "$WORK/merged/$short")" ]; then
    declare -A keep=()
    for f in "$corpus"/*; do [ -f "$f" ] && keep[$(sha1sum < "$f" | cut -c1-40)]=$(basename "$f"); done
    tmp=$WORK/writeback/$short
    mkdir -p "$tmp"
    for f in "$WORK/merged/$short"/*; do
      h=$(sha1sum < "$f" | cut -c1-40)
      cp "$f" "$tmp/${keep[$h]:-$h}"
    done
    unset keep
    # hand-written seeds (named, not a SHA-1) stay even when the minimised set does not need them
    for f in "$corpus"/*; do
      [ -f "$f" ] || continue
      [[ $(basename "$f") =~ ^[0-9a-f]{40}$ ]] || cp "$f" "$tmp/"
    done
    rm -f "$corpus"/*
    cp "$tmp"/* "$corpus"/
  else
    echo "fuzz-long: $name: merge failed, corpus left as it was (see $WORK/$short.merge.log)" >&2
  fi
  after=$(find "$corpus" -type f | wc -l)
  before_all=$((before_all + before)); after_all=$((after_all + after))
  echo "fuzz-long: $name runs=$runs corpus $before -> $after rc=$rc" >&2
done
secs=$(( $(date +%s) - t0 ))
echo "fuzz-long: targets=${#targets[@]} seconds_each=$SECS executions=$total_runs corpus_files=$before_all->$after_all crashes=$crashes${failed:+ (${failed[*]})} unconfirmed_timeouts=$unconfirmed in ${secs}s"
[ "$crashes" -eq 0 ]
