#!/usr/bin/env bash
# compile.sh: builds Posthorn as one native executable with `deno compile`.
#
#   bash scripts/compile.sh [-o OUTDIR]       (deno task compile; OUTDIR: dist/)
#
# OUTDIR/bin/posthorn  mod.ts and every program module, with the permissions
#                      (-A) and unstable APIs (ffi, net) Posthorn needs baked
#                      in; link it under the program names (install.sh does).
#                      It is named posthorn, in a folder of its own beside
#                      the bundle's files: under any other name it would take
#                      that name for a program's (argv[0] dispatch).
#
# `deno compile` appends the program to Deno's runtime base, denort, which it
# downloads for its own version unless DENORT_BIN names one (a denort binary of
# the same Deno version, e.g. unpacked from denort-<target>.zip of the Deno
# release). Without either, this script fails with a clear message: use
# `deno task bundle` then, which needs no runtime base.
set -euo pipefail

usage() {
  echo "usage: bash scripts/compile.sh [-o OUTDIR]" >&2
  exit 2
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/dist"
while getopts "o:h" flag; do
  case $flag in
    o) out=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage

fail() {
  echo "compile.sh: fatal: $*" >&2
  exit 1
}

command -v deno >/dev/null 2>&1 || fail "deno is not on PATH"
version=$(deno --version | sed -n 's/^deno \([^ ]*\).*/\1/p')

# An empty DENORT_BIN means none (deno itself would take it as a path).
[ -n "${DENORT_BIN:-}" ] || unset DENORT_BIN
if [ -n "${DENORT_BIN:-}" ]; then
  [ -f "$DENORT_BIN" ] && [ -x "$DENORT_BIN" ] ||
    fail "DENORT_BIN=$DENORT_BIN is not an executable file (it must be Deno $version's denort)"
fi

mkdir -p "$out/bin"
out=$(cd "$out" && pwd)

# deno compile embeds string-literal dynamic imports by itself; naming each of
# mod.ts's program modules with --include keeps that true should one of them
# ever be imported some other way.
includes=()
while IFS= read -r module; do
  includes+=(--include "$module")
done < <(cd "$root" && sed -n 's/.*import("\(\.\/[^"]*\)").*/\1/p' mod.ts)

err=$(mktemp)
trap 'rm -f "$err"' EXIT
# Type checking is `deno task check`'s job; the bundle is not checked either.
if ! (cd "$root" && NO_COLOR=1 deno compile --quiet --no-check -A \
  --unstable-ffi --unstable-net "${includes[@]}" -o "$out/bin/posthorn" mod.ts) 2>"$err"; then
  if grep -qiE 'base binary|denort' "$err"; then
    sed 's/^/compile.sh: deno: /' "$err" | head -n 8 >&2
    if [ -n "${DENORT_BIN:-}" ]; then
      fail "deno compile cannot use DENORT_BIN=$DENORT_BIN as its runtime base (is it Deno $version's denort?)"
    fi
    fail "cannot get Deno's runtime base (denort $version): it is not cached and cannot be" \
      "downloaded. Set DENORT_BIN to Deno $version's denort binary, or build the bundle" \
      "instead: deno task bundle"
  fi
  cat "$err" >&2
  fail "deno compile failed"
fi

# Smoke test: the executable answers --help with the program list (a wrong
# runtime base yields a file that runs but is not Posthorn).
help=$("$out/bin/posthorn" --help 2>&1) || true
if ! grep -q "^programs built in:" <<<"$help"; then
  rm -f "$out/bin/posthorn"
  fail "the executable built on ${DENORT_BIN:-the downloaded runtime base} is not a working" \
    "posthorn (--help gave no program list); removed it"
fi
echo "compile.sh: $out/bin/posthorn ($(wc -c <"$out/bin/posthorn") bytes)"
