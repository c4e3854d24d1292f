#!/usr/bin/env bash
# Keeps ARCHITECTURE.md true: every room named in a `### \`path\`` heading exists, and
# no room imports what its "**Never imports:**" line forbids. Also: no file points
# outside the repository (the facts live in docs/).
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
room=""
while IFS= read -r line; do
  if [[ $line =~ ^'### `'([^\`]+)'`' ]]; then
    room=${BASH_REMATCH[1]}
    if [ ! -e "$room" ]; then
      echo "check-docs: ARCHITECTURE.md names the room '$room', which no longer exists" >&2
      fail=1
    fi
  elif [[ $line == '**Never imports:**'* && -n $room && -e $room ]]; then
    for name in $(grep -o '`[^`]*`' <<<"$line" | tr -d '`'); do
      # `crate::x` matches `use crate::x` and `crate::x::...`; a crate name matches `use name`/`name::`.
      pattern="(^|[^a-z_])${name//::/::}(::|;|\\b)"
      if hits=$(grep -rnE "$pattern" "$room" --include='*.rs' | grep -v '^\s*//' | grep -vE ':\s*//'); then
        echo "check-docs: $room must never import $name (ARCHITECTURE.md):" >&2
        echo "$hits" >&2
        fail=1
      fi
    done
  fi
done < ARCHITECTURE.md
# The pattern is built from pieces so that this file does not match itself.
outside="\\.\\./sha""red|lab-""facts|se""eds? 00[0-9]"
if grep -rnE "$outside" src tests scripts benches examples docs README.md ARCHITECTURE.md CONTRIBUTING.md \
     --exclude=check-docs.sh 2>/dev/null; then
  echo "check-docs: the lines above point outside the repository; bring the facts into docs/" >&2
  fail=1
fi
[ "$fail" -eq 0 ] && echo "check-docs: ARCHITECTURE.md rooms and import rules hold"
exit "$fail"
