#!/bin/sh
# Regenerates the postcat reference outputs (*.postcat.ref) from the
# reference Postfix's postcat, run in this folder on each queue file with each
# option set. Needs a main.cf in MAIL_CONFIG (postcat reads queue_directory).
set -e
cd "$(dirname "$0")"
export TZ=UTC
opts="none -v -b -h -e -bh -o -d -od -r -rv -orv -s100"
for f in *.maildrop *.hold *.incoming pointer.crafted; do
  out="$f.postcat.ref"
  : > "$out"
  for o in $opts; do
    printf '### postcat %s %s\n' "$o" "$f" >> "$out"
    if [ "$o" = none ]; then set -- "$f"; else set -- "$o" "$f"; fi
    postcat "$@" >> "$out" 2>/dev/null || printf '### exit %s\n' "$?" >> "$out"
  done
done
