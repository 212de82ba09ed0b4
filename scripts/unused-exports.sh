#!/usr/bin/env bash
# Lists global functions/objects of src/ that no other object file uses:
#   "unused":      no reference anywhere outside their own file (src, unit tests, fuzz) -> delete
#   "file-local":  used only inside their own file -> make static
# Needs the asan objects (make asan). Used by `make lint`.
set -uo pipefail
cd "$(dirname "$0")/.."
objs=$(find build/asan/src -name '*.o' | sort)
tobjs=$(find build/asan/tests build/fuzz/bin -name '*.o' 2>/dev/null; ls fuzz/fuzz_*.c 2>/dev/null)
undef=$(mktemp); trap 'rm -f "$undef"' EXIT
for o in $objs $(find build/asan/tests -name '*.o' 2>/dev/null); do
  nm -u "$o" | awk -v f="$o" '{print $2, f}'
done | sort -u > "$undef"
# fuzz targets are sources: collect identifiers they call
fuzzrefs=$(cat fuzz/fuzz_*.c 2>/dev/null | grep -oE '\bsp_[a-z0-9_]+' | sort -u)
n=0
for o in $objs; do
  [ "$o" = build/asan/src/main.o ] && continue
  for sym in $(nm -g --defined-only "$o" | awk '$2 ~ /[TDBR]/ {print $3}'); do
    users=$(awk -v s="$sym" -v f="$o" '$1 == s && $2 != f {print $2}' "$undef")
    if [ -z "$users" ] && ! grep -qx "$sym" <<<"$fuzzrefs"; then
      src=${o#build/asan/}; src=${src%.o}.c
      echo "$src: $sym: no user outside its file (static if used inside, else delete)"; n=$((n+1))
    fi
  done
done
echo "unused-exports: $n"
[ "$n" -eq 0 ]
