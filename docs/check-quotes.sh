#!/usr/bin/env bash
# Checks that every code block of a document that names a file quotes that
# file exactly. A block opens with a fence line like
#     ```cpp file=examples/line-server/line.cpp
# and its lines must equal the file's, so the document cannot drift from code
# that CI compiles. Usage: docs/check-quotes.sh DOC.md [DOC.md ...]
# Exit 1 on any difference (a diff is printed), 2 if a named file is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for doc in "$@"; do
  blocks=0
  block=""
  file=""
  while IFS= read -r line || [ -n "$line" ]; do
    if [ -z "$file" ]; then
      if [[ $line =~ ^\`\`\`[a-z]*\ file=([^[:space:]]+)$ ]]; then
        file=${BASH_REMATCH[1]}
        block=""
      fi
    elif [[ $line == '```' ]]; then
      blocks=$((blocks + 1))
      if [ ! -f "$file" ]; then
        echo "$doc: quotes $file, which does not exist"
        exit 2
      fi
      if ! diff -u --label "$file" --label "$doc" "$file" <(printf '%s' "$block"); then
        echo "$doc: the block quoting $file differs from the file"
        status=1
      fi
      file=""
    else
      block+="$line"$'\n'
    fi
  done <"$doc"
  echo "$doc: $blocks quoted file(s) checked"
done
exit "$status"
