#!/bin/sh
# Regenerates the reference listings from the reference Postfix: queue.tar
# (a queue made by a throwaway reference instance: messages in maildrop,
# incoming, active, deferred with defer logs, hold, one force-expired) is
# unpacked into a temporary folder and listed with the reference's postqueue
# (showq runs stand-alone: the mail system is down). Run as root, TZ=UTC.
set -e
cd "$(dirname "$0")"
here=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir -p "$tmp/etc" "$tmp/queue" "$tmp/empty"
(cd "$tmp/queue" && tar -xf "$here/queue.tar" 2>/dev/null)
printf 'queue_directory = %s/queue\nmaillog_file_prefixes = %s\nmaillog_file = %s/maillog\n' \
  "$tmp" "$tmp" "$tmp" > "$tmp/etc/main.cf"
export TZ=UTC
postqueue -c "$tmp/etc" -p > showq.p.ref 2>/dev/null
postqueue -c "$tmp/etc" -j > showq.j.ref 2>/dev/null
mkdir -p "$tmp/queue2/incoming" "$tmp/queue2/maildrop" "$tmp/queue2/active" "$tmp/queue2/deferred" "$tmp/queue2/hold" "$tmp/queue2/defer"; chown -R postfix "$tmp/queue2"
cp -p "$tmp/queue/incoming/D9F5C2121CE" "$tmp/queue2/incoming/"
sed "s#$tmp/queue\$#$tmp/queue2#" "$tmp/etc/main.cf" > "$tmp/etc/main.cf.2"
mv "$tmp/etc/main.cf.2" "$tmp/etc/main.cf"
postqueue -c "$tmp/etc" -p > one.p.ref 2>/dev/null
rm "$tmp/queue2/incoming/D9F5C2121CE"
postqueue -c "$tmp/etc" -p > empty.p.ref 2>/dev/null
postqueue -c "$tmp/etc" -p 2> down.stderr.ref > /dev/null

# postsuper: the commands of postsuper.seq run one after another on a fresh
# copy of the queue (standard input "89066212712" for -d -), each command's
# output and status, then the files left and their modes.
rm -rf "$tmp/queue" && mkdir "$tmp/queue"
(cd "$tmp/queue" && tar -xf "$here/queue.tar" 2>/dev/null && mkdir -p bounce trace flush)
printf 'queue_directory = %s/queue\nmaillog_file_prefixes = %s\nmaillog_file = %s/maillog\n' \
  "$tmp" "$tmp" "$tmp" > "$tmp/etc/main.cf"
touch "$tmp/maillog" && chown postfix "$tmp/maillog"
while read -r cmd; do
  echo "## $cmd"
  # shellcheck disable=SC2086
  echo 89066212712 | postsuper -c "$tmp/etc" $cmd 2>&1 && echo "status 0" || echo "status $?"
done < postsuper.seq > postsuper.seq.ref
(cd "$tmp/queue" && find maildrop incoming active deferred hold defer -type f -printf '%p %m\n' | sort) \
  >> postsuper.seq.ref

# crafted.tar: messages written with lib/queue whose addresses need quoting,
# source routes, null and empty addresses, control characters and UTF-8;
# listed without and with smtputf8_enable.
rm -rf "$tmp/queue" && mkdir "$tmp/queue"
(cd "$tmp/queue" && tar -xf "$here/crafted.tar" && mkdir -p maildrop active deferred defer)
printf 'queue_directory = %s/queue\nmaillog_file_prefixes = %s\nmaillog_file = %s/maillog\n' \
  "$tmp" "$tmp" "$tmp" > "$tmp/etc/main.cf"
postqueue -c "$tmp/etc" -p > crafted.p.ref 2>/dev/null
postqueue -c "$tmp/etc" -j > crafted.j.ref 2>/dev/null
echo "smtputf8_enable = yes" >> "$tmp/etc/main.cf"
postqueue -c "$tmp/etc" -p > crafted.utf8.p.ref 2>/dev/null
postqueue -c "$tmp/etc" -j > crafted.utf8.j.ref 2>/dev/null

# big.tar: a 115 kB message with 40 recipients, queued by the reference
# (the listing skips the message text).
rm -rf "$tmp/queue" && mkdir "$tmp/queue"
(cd "$tmp/queue" && tar -xf "$here/big.tar" && mkdir -p maildrop active deferred hold defer)
printf 'queue_directory = %s/queue\nmaillog_file_prefixes = %s\nmaillog_file = %s/maillog\n' \
  "$tmp" "$tmp" "$tmp" > "$tmp/etc/main.cf"
postqueue -c "$tmp/etc" -p > big.p.ref 2>/dev/null

# postsuper -s after a layout change: the queue copy is renamed to match
# inodes, then hash_queue_names/hash_queue_depth change and -s moves every
# file; the tree's shape (ids masked: they follow inode numbers) is kept.
rm -rf "$tmp/queue" && mkdir "$tmp/queue"
(cd "$tmp/queue" && tar -xf "$here/queue.tar" 2>/dev/null && mkdir -p bounce trace flush)
printf 'queue_directory = %s/queue\nmaillog_file_prefixes = %s\nmaillog_file = %s/maillog\n' \
  "$tmp" "$tmp" "$tmp" > "$tmp/etc/main.cf"
postsuper -c "$tmp/etc" -s 2>/dev/null
printf 'hash_queue_names = hold\nhash_queue_depth = 2\n' >> "$tmp/etc/main.cf"
postsuper -c "$tmp/etc" -s > postsuper.hash.ref 2>&1
(cd "$tmp/queue" && find maildrop incoming active deferred defer hold -printf '%p %y\n' | sort) |
  sed -E 's/[0-9A-F]{6,}/ID/' >> postsuper.hash.ref

# deferlog.tar: a deferred message whose defer log names some recipients
# twice, one not in the file, one with an empty reason, one without a
# reason attribute, one in the old one-line form, and leaves one out.
rm -rf "$tmp/queue" && mkdir "$tmp/queue"
(cd "$tmp/queue" && tar -xf "$here/deferlog.tar" && mkdir -p maildrop incoming active hold)
printf 'queue_directory = %s/queue\nmaillog_file_prefixes = %s\nmaillog_file = %s/maillog\n' \
  "$tmp" "$tmp" "$tmp" > "$tmp/etc/main.cf"
postqueue -c "$tmp/etc" -p > deferlog.p.ref 2>/dev/null
postqueue -c "$tmp/etc" -j > deferlog.j.ref 2>/dev/null
