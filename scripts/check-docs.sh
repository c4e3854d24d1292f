#!/usr/bin/env bash
# Keeps ARCHITECTURE.md true:
# - every room named in a `### \`path\`` heading of the code map exists;
# - no file of a room imports what its "**Never imports:**" line forbids;
# - floors: the code map lists the rooms of src/ ground floor first, and no file of a
#   room imports (`crate::name`) a room listed after it, or a module the map does not name;
# - no file points outside the repository (the facts live in docs/).
# A room's files are `src/name.rs` (a root without mod.rs) and everything under `src/name/`.
#
#   scripts/check-docs.sh              check this repository
#   scripts/check-docs.sh --self-test  plant violations in a copy and expect each one caught
set -euo pipefail
cd "$(dirname "$0")/.."

# The room's short name: `src/config/` -> config, `src/model.rs` -> model.
room_name() {
  local r=${1#src/}
  r=${r%/}
  echo "${r%.rs}"
}

# Every .rs file of the room `src/<name>`.
room_files() {
  local name=$1
  [ -f "src/$name.rs" ] && echo "src/$name.rs"
  [ -d "src/$name" ] && find "src/$name" -name '*.rs' | sort
  return 0
}

# `file:line:text` of code lines (comment lines dropped) of the given files.
code_lines() {
  [ $# -eq 0 ] && return 0
  grep -nH '' "$@" | grep -vE '^[^:]+:[0-9]+:\s*//'
}

check() {
  local fail=0 room="" name line
  local -a floors=()
  while IFS= read -r line; do
    if [[ $line =~ ^'### `'([^\`]+)'`' ]]; then
      room=${BASH_REMATCH[1]}
      if [ ! -e "$room" ]; then
        echo "check-docs: ARCHITECTURE.md names the room '$room', which no longer exists" >&2
        fail=1
      elif [[ $room == src/* ]]; then
        floors+=("$(room_name "$room")")
      fi
    elif [[ $line == '**Never imports:**'* && $room == src/* && -e $room ]]; then
      name=$(room_name "$room")
      mapfile -t files < <(room_files "$name")
      for forbidden in $(grep -o '`[^`]*`' <<<"$line" | tr -d '`'); do
        # `crate::x` matches `use crate::x` and `crate::x::...`; a crate name matches `use name`/`name::`.
        pattern="(^|[^a-z_:])${forbidden}(::|;|\\b)"
        if hits=$(code_lines "${files[@]}" | grep -E "$pattern"); then
          echo "check-docs: $room must never import $forbidden (ARCHITECTURE.md):" >&2
          echo "$hits" >&2
          fail=1
        fi
      done
    fi
  done < ARCHITECTURE.md
  check_floors "${floors[@]}" || fail=1
  check_outside || fail=1
  return "$fail"
}

# No room imports a room listed after it (a floor above) or one the map leaves out.
check_floors() {
  local -a floors=("$@")
  local fail=0 i j name target hit
  declare -A floor_of=()
  for i in "${!floors[@]}"; do floor_of[${floors[$i]}]=$i; done
  for i in "${!floors[@]}"; do
    name=${floors[$i]}
    mapfile -t files < <(room_files "$name")
    while IFS=$'\t' read -r loc target text; do
      [ "$target" = "$name" ] && continue
      if [ -z "${floor_of[$target]+x}" ]; then
        echo "check-docs: $loc imports crate::$target, a room ARCHITECTURE.md's code map does not list:" >&2
        echo "  $text" >&2
        fail=1
        continue
      fi
      j=${floor_of[$target]}
      if [ "$j" -gt "$i" ]; then
        echo "check-docs: $loc (room $name) imports crate::$target, a room on a floor above it (listed later in ARCHITECTURE.md's code map):" >&2
        echo "  $text" >&2
        fail=1
      fi
    done < <(code_lines "${files[@]}" | imported_rooms)
  done
  return "$fail"
}

# `file:line<TAB>room<TAB>code` for every `crate::room` on the given code lines.
imported_rooms() {
  awk '{
    loc = $0; sub(/:[^:]*$/, "", loc); match($0, /^[^:]*:[0-9]+:/); loc = substr($0, 1, RLENGTH - 1)
    code = substr($0, RLENGTH + 1); rest = code; gsub(/^[ \t]+/, "", code)
    while (match(rest, /crate::[a-z_]+/)) {
      print loc "\t" substr(rest, RSTART + 7, RLENGTH - 7) "\t" code
      rest = substr(rest, RSTART + RLENGTH)
    }
  }'
}

check_outside() {
  # The pattern is built from pieces so that this file does not match itself.
  local outside="\\.\\./sha""red|lab-""facts|se""eds? 00[0-9]"
  if grep -rnE "$outside" src tests scripts benches examples docs README.md ARCHITECTURE.md CONTRIBUTING.md \
       --exclude=check-docs.sh 2>/dev/null; then
    echo "check-docs: the lines above point outside the repository; bring the facts into docs/" >&2
    return 1
  fi
}

# Copies the map and src/ to a temporary directory, plants one violation at a time
# and expects the check to catch each (and to pass on the untouched copy).
self_test() {
  local tmp script fail=0
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  script=$(realpath "$0")
  plant() { # name, file, line to append, expected message
    rm -rf "$tmp/t"
    mkdir -p "$tmp/t/scripts" "$tmp/t/assets" "$tmp/t/tests" "$tmp/t/docs"
    cp -r ARCHITECTURE.md src "$tmp/t/"
    cp "$script" "$tmp/t/scripts/"
    case "$2" in
      "") ;;
      rm:*) rm -rf "$tmp/t/${2#rm:}" ;;
      *) echo "$3" >>"$tmp/t/$2" ;;
    esac
    local out rc=0
    out=$(bash "$tmp/t/scripts/check-docs.sh" 2>&1) || rc=$?
    if [ -z "$2" ]; then
      [ "$rc" -eq 0 ] || { echo "self-test '$1': the untouched copy fails: $out" >&2; fail=1; }
    elif [ "$rc" -eq 0 ] || ! grep -q -- "$4" <<<"$out"; then
      echo "self-test '$1': not caught (exit $rc, expected '$4'): $out" >&2
      fail=1
    else
      echo "self-test '$1': caught"
    fi
  }
  plant "clean copy" "" "" ""
  plant "climb from a mod.rs-less root" src/config.rs "use crate::engine::Control;" "room config) imports crate::engine, a room on a floor above"
  plant "climb inside a room" src/model.rs "fn f() { let _ = crate::ui::app::App::default; }" "room model) imports crate::ui"
  plant "config reaching for an encoder" src/config/validate.rs "use crate::encode::record::COLUMNS;" "room config) imports crate::encode"
  plant "a cycle: schema back into config" src/schema/metrics.rs "use crate::config::Format;" "room schema) imports crate::config"
  plant "the writer reaching for a frontend" src/writer/sink.rs "use crate::control::views::VmView;" "room writer) imports crate::control"
  plant "an encoder doing I/O" src/encode/csv.rs "use std::fs::File;" "src/encode/ must never import std::fs"
  plant "never-imports in a mod.rs-less root" src/config.rs "use ratatui::Frame;" "src/config/ must never import ratatui"
  plant "a room not on the map" src/spool/mod.rs "use crate::nowhere::Thing;" "does not list"
  plant "a room gone" rm:src/headless.rs "" "names the room 'src/headless.rs', which no longer exists"
  return "$fail"
}

if [ "${1:-}" = "--self-test" ]; then
  self_test && echo "check-docs: self-test passed"
  exit
fi
if check; then
  echo "check-docs: ARCHITECTURE.md rooms, floors and import rules hold"
else
  exit 1
fi
