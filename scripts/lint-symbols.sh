#!/usr/bin/env bash
# The symbol rules of `make lint`, checked on the asan objects (make asan first):
#   - every global symbol of src/ (but main) is sp_-prefixed
#   - every global symbol of src/ is used outside its own file (src, unit tests or fuzz
#     targets): otherwise make it static (used inside) or delete it (no caller)
set -uo pipefail
cd "$(dirname "$0")/.."
# only objects of sources that still exist (a moved file leaves its old object behind)
objs=$(find build/asan/src -name '*.o' | sort | while read -r o; do
  s=${o#build/asan/}; [ -f "${s%.o}.c" ] && echo "$o"; done)
[ -n "$objs" ] || { echo "lint-symbols: no objects under build/asan/src (make asan first)"; exit 1; }
undef=$(mktemp); trap 'rm -f "$undef"' EXIT
for o in $objs $(find build/asan/tests -name '*.o' 2>/dev/null); do
  nm -u "$o" | awk -v f="$o" '{print $2, f}'
done | sort -u > "$undef"
# fuzz targets are sources: collect identifiers they call
fuzzrefs=$(cat fuzz/fuzz_*.c 2>/dev/null | grep -oE '\bsp_[a-z0-9_]+' | sort -u)
n=0
for o in $objs; do
  [ "$o" = build/asan/src/main.o ] && continue
  for sym in $(nm -g --defined-only "$o" | awk '$2 ~ /[TDBR]/ && $3 !~ /^__odr_asan/ {print $3}'); do
    if [[ "$sym" != sp_* ]]; then
      src=${o#build/asan/}; src=${src%.o}.c
      echo "$src: $sym: cross-file name without the sp_ prefix"; n=$((n+1))
    fi
    users=$(awk -v s="$sym" -v f="$o" '$1 == s && $2 != f {print $2}' "$undef")
    if [ -z "$users" ] && ! grep -qx "$sym" <<<"$fuzzrefs"; then
      src=${o#build/asan/}; src=${src%.o}.c
      echo "$src: $sym: no user outside its file (static if used inside, else delete)"; n=$((n+1))
    fi
  done
done
echo "lint-symbols: $n problems"
[ "$n" -eq 0 ]
