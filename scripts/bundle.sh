#!/usr/bin/env bash
# bundle.sh: builds Posthorn as one self-contained JavaScript file plus a
# launcher, for machines where `deno compile` has no runtime base (denort).
#
#   bash scripts/bundle.sh [-o OUTDIR]        (deno task bundle; OUTDIR: dist/)
#
# OUTDIR/posthorn.js  mod.ts and everything it imports, npm code inlined; the
#                     programs' lazy `import("./cmd/x.ts")` become lazily run
#                     module initialisers inside the file, so postconf still
#                     never evaluates smtpd's code.
# OUTDIR/posthorn     the launcher: runs posthorn.js (found beside its own real
#                     path, through any chain of symlinks) under Deno, with the
#                     permissions and unstable APIs Posthorn needs, keeping the
#                     name it was invoked as (argv[0]) so that a link named
#                     postconf runs postconf.
# The result needs nothing from the network or DENO_DIR at run time.
set -euo pipefail

usage() {
  echo "usage: bash scripts/bundle.sh [-o OUTDIR]" >&2
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
  echo "bundle.sh: fatal: $*" >&2
  exit 1
}

command -v deno >/dev/null 2>&1 || fail "deno is not on PATH"
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d "$out/.bundle.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --platform deno keeps Deno's globals and node: built-ins as they are; npm
# packages are bundled (the default), so the file imports nothing at run time.
(cd "$root" && NO_COLOR=1 deno bundle --quiet --platform deno \
  -o "$tmp/posthorn.js" mod.ts) || fail "deno bundle failed"

# Every program module must be inside the file: a dynamic import that esbuild
# could not inline would be left as import("./...") and fail when that program
# runs. Remote and npm specifiers must not remain either.
if grep -nE 'import\((["'\''])(\.{1,2}/|file:|https?:|npm:|jsr:)' "$tmp/posthorn.js" >&2; then
  fail "posthorn.js still imports modules at run time (above)"
fi

# A module that finds files beside itself would look beside posthorn.js,
# where there are none: such data belongs in a module.
if grep -nE 'import\.meta\.(url|dirname|filename|resolve)' "$tmp/posthorn.js" >&2; then
  fail "posthorn.js locates files through import.meta (above); they are not in the bundle"
fi

# ... and each of them must have become a lazy initialiser, run only when its
# loader is called: `() => Promise.resolve().then(() => (init_x(), x_exports))`,
# or `() => init_x().then(...)` for a module with top-level await.
wanted=$(grep -oE '=> import\("\./[^"]+"\)' "$root/mod.ts" | wc -l)
lazy=$(grep -oE '\(\) => (Promise\.resolve\(\)\.then\(\(\) => \(init_[A-Za-z0-9_$]+\(\)|init_[A-Za-z0-9_$]+\(\)\.then\()' \
  "$tmp/posthorn.js" | wc -l)
[ "$lazy" -eq "$wanted" ] ||
  fail "mod.ts imports $wanted program modules but posthorn.js loads $lazy of them lazily"

# The launcher. POSTHORN_DENO (environment) wins over the path install.sh
# bakes in, which wins over `deno` on PATH: daemons started by the master get
# a bare environment without PATH.
cat >"$tmp/posthorn" <<'LAUNCHER'
#!/usr/bin/env bash
# posthorn launcher (made by scripts/bundle.sh): runs posthorn.js, which lies
# beside this file's real path, under Deno, and keeps the name this file was
# invoked as (a link named postconf runs postconf).
baked_deno=""
deno=${POSTHORN_DENO:-$baked_deno}
if [ -z "$deno" ]; then
  deno=$(command -v deno) || {
    echo "posthorn: fatal: cannot find deno: not on PATH; set POSTHORN_DENO" >&2
    exit 1
  }
fi
self=$0
case $self in
  */*) ;;
  *) if [ -e "$self" ]; then self=./$self; else self=$(command -v -- "$self"); fi ;;
esac
name=${self##*/}
# Follow the symlinks to the real file, relative links included.
while [ -L "$self" ]; do
  link=$(readlink -- "$self")
  case $link in
    /*) self=$link ;;
    *) self=${self%/*}/$link ;;
  esac
done
dir=${self%/*}
# A mail daemon must never reach out: no update check, no prompt, no remote or
# npm modules (the bundle has them all inside), no project config from the
# working directory.
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
exec -a "$name" "$deno" run -A --unstable-ffi --unstable-net --no-config --no-lock \
  --no-remote --no-npm "$dir/posthorn.js" "$@"
LAUNCHER
chmod 755 "$tmp/posthorn"
chmod 644 "$tmp/posthorn.js"

# Smoke test: the bundle answers --help from an empty DENO_DIR.
empty=$(mktemp -d)
if ! DENO_DIR=$empty "$tmp/posthorn" --help >/dev/null 2>"$tmp/err"; then
  rm -rf "$empty"
  cat "$tmp/err" >&2
  fail "the bundle does not run (posthorn --help failed)"
fi
rm -rf "$empty" "$tmp/err"

mv -f "$tmp/posthorn.js" "$out/posthorn.js"
mv -f "$tmp/posthorn" "$out/posthorn"
size=$(wc -c <"$out/posthorn.js")
echo "bundle.sh: $out/posthorn.js ($size bytes) and launcher $out/posthorn"
