#!/usr/bin/env bash
# The symbol rules of `make lint`, checked on the asan objects (make asan first):
#   - every global symbol of src/ (but main) is sp_- or SP_-prefixed
#   - every global symbol of src/ is used outside its own file (src, unit tests or fuzz
#     targets): otherwise make it static (used inside) or delete it (no caller)
set -uo pipefail
cd "$(dirname "$0")/.."
# only objects of sources that still exist (a moved file leaves its old object behind)
objs=$(find build/asan/src -name '*.o' | sort | while read -r o; do
  s=${o#build/asan/}; [ -f "${s%.o}.c" ] && echo "$o"; done)
[ -n "$objs" ] || { echo "lint-symbols: no objects under build/asan/src (make asan first)"; exit 1; }
tobjs=$(find build/asan/tests -name '*.o' 2>/dev/null | sort | while read -r o; do
  s=${o#build/asan/}; [ -f "${s%.o}.c" ] && echo "$o"; done)
# One pass: "D sym file" for definitions, "U sym file" for references, "F sym" for identifiers
# named in the fuzz targets (they are built by clang from source, not in build/asan).
{
  # shellcheck disable=SC2086
  nm -A -g --defined-only $objs 2>/dev/null |
    awk '$(NF-1) ~ /^[TDBR]$/ { f = $1; sub(/:.*/, "", f); print "D", $NF, f }'
  # shellcheck disable=SC2086
  nm -A -u $objs $tobjs 2>/dev/null | awk '{ f = $1; sub(/:.*/, "", f); print "U", $NF, f }'
  cat fuzz/fuzz_*.c 2>/dev/null | grep -oE '\bsp_[a-z0-9_]+' | sort -u | sed 's/^/F /'
} | awk '
  $1 == "D" && $2 !~ /^__odr_asan/ && $3 != "build/asan/src/main.o" { def[$2] = $3; next }
  $1 == "U" { users[$2] = users[$2] " " $3; next }
  $1 == "F" { fuzz[$2] = 1 }
  END {
    n = 0
    for (s in def) {
      src = def[s]; sub(/^build\/asan\//, "", src); sub(/\.o$/, ".c", src)
      if (s !~ /^sp_/ && s !~ /^SP_/) {
        print src ": " s ": cross-file name without the sp_ prefix"; n++
      }
      outside = 0
      k = split(users[s], u, " ")
      for (i = 1; i <= k; i++) if (u[i] != def[s]) { outside = 1; break }
      if (!outside && !(s in fuzz)) {
        print src ": " s ": no user outside its file (static if used inside, else delete)"; n++
      }
    }
    print "lint-symbols: " n " problems"
    exit n > 0
  }' | sort
exit "${PIPESTATUS[1]}"
