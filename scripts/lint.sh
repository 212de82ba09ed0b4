#!/usr/bin/env bash
# make lint: the mechanical part of the style, checked on every `make test` (in the spirit of
# curl's checksrc). Rules (docs/architecture.md "Layout and dependency direction"):
#   1. lines at most 100 columns (C sources and headers under src/, tests/unit/, fuzz/; not in
#      files marked GENERATED in their first 5 lines)
#   2. banned functions: gets strcpy strcat sprintf vsprintf strtok atoi atol atoll
#      (use snprintf / sp_buf / strtok_r / strtol with range checks)
#   3. a module's own header is its first #include ("dir/sp_x.h" in dir/sp_x.c)
#   4. src/ includes only downward by path, never by bare name:
#        core <- net, store <- auth, bus, media, relay <- livestream, platforms <- web <- main
#      (a folder may include its own headers and any folder of a lower layer)
#   5. no file under src/ over 1000 lines
#   6. (whole tree, with the asan objects built) scripts/lint-symbols.sh: every global symbol
#      sp_-prefixed and used outside its own file
# Prints every violation as file:line: rule: detail, then one line "lint: N problems".
# Exit 1 when there is any. Usage: scripts/lint.sh [files...]  (default: the whole tree)
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find src tests/unit fuzz -name '*.[ch]' | sort)
fi
[ ${#files[@]} -gt 0 ] || { echo "lint: no files to check"; exit 1; }

problems=0
report() { echo "$*"; problems=$((problems + 1)); }

layer_of() { # folder under src/ -> layer number (empty: unknown folder)
  case "$1" in
    core) echo 0 ;;
    net | store) echo 1 ;;
    auth | bus | media | relay) echo 2 ;;
    livestream | platforms) echo 3 ;;
    web) echo 4 ;;
    main.c) echo 5 ;;
    *) echo "" ;;
  esac
}

# 1 + 2, one awk pass over every file: long lines (not in GENERATED files) and banned calls
# (outside // comments and string literals, roughly).
while IFS= read -r l; do report "$l"; done < <(awk '
  FNR == 1 { gen = 0 }
  FNR <= 5 && /GENERATED/ { gen = 1 }
  !gen && length($0) > 100 { print FILENAME ":" FNR ": long line: " length($0) " columns (max 100)" }
  {
    line = $0
    gsub(/"([^"\\]|\\.)*"/, "", line)
    sub(/\/\/.*$/, "", line)
    if (match(line, /(^|[^A-Za-z0-9_])(gets|strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|atoll)[ \t]*\(/)) {
      name = substr(line, RSTART, RLENGTH)
      sub(/^[^A-Za-z]*/, "", name); sub(/[ \t]*\($/, "", name)
      print FILENAME ":" FNR ": banned function: " name
    }
  }' "${files[@]}")

for f in "${files[@]}"; do
  [ -f "$f" ] || { report "$f: missing file"; continue; }
  case "$f" in src/*) ;; *) continue ;; esac
  rel=${f#src/}
  dir=${rel%%/*}
  [ "$dir" = "$rel" ] && dir=$rel # src/main.c
  # 5. size
  n=$(wc -l < "$f")
  [ "$n" -le 1000 ] || report "$f: $n lines (max 1000): split it by concern"
  mylayer=$(layer_of "$dir")
  [ -n "$mylayer" ] || { report "$f: folder src/$dir/ has no layer in scripts/lint.sh"; continue; }
  # 3. own header first
  if [[ "$f" == *.c ]] && [ -f "${f%.c}.h" ]; then
    first=$(grep -m1 -E '^#[[:space:]]*include' "$f")
    [[ "$first" =~ include[[:space:]]*(.*)$ ]] && first=${BASH_REMATCH[1]}
    want="\"${rel%.c}.h\""
    [ "$first" = "$want" ] || report "$f: first #include must be its own header $want (is $first)"
  fi
  # 4. direction: every project include is by path and points to the same folder or lower
  while IFS=: read -r ln inc; do
    [[ "$inc" =~ include[[:space:]]*\"([^\"]+)\" ]] || continue
    hdr=${BASH_REMATCH[1]}
    case "$hdr" in
      */*) ;;
      *) report "$f:$ln: include by path from src/ (\"dir/$hdr\"), not by bare name"; continue ;;
    esac
    hdir=${hdr%%/*}
    [ -f "src/$hdr" ] || { report "$f:$ln: no such header src/$hdr"; continue; }
    [ "$hdir" = "$dir" ] && continue
    hl=$(layer_of "$hdir")
    if [ -z "$hl" ] || [ "$hl" -ge "$mylayer" ]; then
      report "$f:$ln: src/$dir/ (layer $mylayer) must not include $hdr (layer ${hl:-?}):" \
             "dependencies point down only"
    fi
  done < <(grep -nE '^#[[:space:]]*include[[:space:]]*"' "$f")
done
if [ $# -eq 0 ]; then
  while IFS= read -r l; do report "$l"; done < <(scripts/lint-symbols.sh | grep -v '^lint-symbols:')
fi
echo "lint: $problems problems in ${#files[@]} files"
[ "$problems" -eq 0 ]
