#!/usr/bin/env bash
# install.sh: installs Posthorn and links it under every program name it has
# built in, as Postfix's `make install` / post-install lay out Postfix.
#
#   bash scripts/install.sh [--prefix DIR] [options]      (see --help)
#
# Installs dist/bin/posthorn (deno task compile) when there is one, else the
# bundle dist/posthorn.js with its launcher (deno task bundle). Re-running it
# upgrades in place: the program and its links are replaced, an existing
# main.cf or master.cf is kept, the queue tree's owners and modes are set again.
set -euo pipefail
umask 022

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$script_dir/.." && pwd)

usage() {
  cat <<'EOF'
usage: bash scripts/install.sh [options]

  --prefix DIR         install into DIR (config in DIR/etc/postfix, queue in
                       DIR/var/spool/postfix, ...) instead of the system;
                       as an ordinary user, everything belongs to that user
  --from DIR           take the built program from DIR (default: dist/)
  --bundle             install the bundle even when a compiled binary exists
  --deno PATH          the deno that the bundle's launcher runs (default: the
                       deno on PATH when installing)
  --mail-owner NAME    mail_owner for a new main.cf (default: postfix; with
                       --prefix as an ordinary user, that user)
  --setgid-group NAME  setgid_group for a new main.cf (default: postdrop; with
                       --prefix as an ordinary user, the user's group)
  --create-accounts    create mail_owner and setgid_group with --prefix too
                       (done anyway when installing into the system as root)
  --force              replace program files that are not Posthorn's (for
                       example Postfix's own /usr/sbin/postconf)
EOF
}

fail() {
  echo "install.sh: fatal: $*" >&2
  exit 1
}

prefix=""
from="$root/dist"
kind=""
deno_path=""
mail_owner=""
setgid_group=""
create_accounts=""
force=""
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || fail "--prefix needs a folder"; prefix=$2; shift ;;
    --prefix=*) prefix=${1#*=} ;;
    --from) [ $# -ge 2 ] || fail "--from needs a folder"; from=$2; shift ;;
    --from=*) from=${1#*=} ;;
    --bundle) kind=bundle ;;
    --deno) [ $# -ge 2 ] || fail "--deno needs a path"; deno_path=$2; shift ;;
    --deno=*) deno_path=${1#*=} ;;
    --mail-owner) [ $# -ge 2 ] || fail "--mail-owner needs a name"; mail_owner=$2; shift ;;
    --mail-owner=*) mail_owner=${1#*=} ;;
    --setgid-group) [ $# -ge 2 ] || fail "--setgid-group needs a name"; setgid_group=$2; shift ;;
    --setgid-group=*) setgid_group=${1#*=} ;;
    --create-accounts) create_accounts=yes ;;
    --force) force=yes ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; fail "unknown argument: $1" ;;
  esac
  shift
done

is_root=""
[ "$(id -u)" -eq 0 ] && is_root=yes

# --- Where things go -------------------------------------------------------

if [ -n "$prefix" ]; then
  mkdir -p "$prefix" || fail "cannot create $prefix"
  P=$(cd "$prefix" && pwd)
  [ "$P" = / ] && P=""
else
  [ -n "$is_root" ] || fail "installing into the system needs root; use --prefix DIR to install into a folder"
  P=""
fi

config_directory=$P/etc/postfix
command_directory=$P/usr/sbin     # admin commands and sendmail, as Postfix
bin_directory=$P/usr/bin          # mailq and newaliases, as Postfix
daemon_directory=$P/usr/libexec/posthorn
lib_directory=$P/usr/lib/posthorn # the program itself; everything links here
queue_directory=$P/var/spool/postfix
data_directory=$P/var/lib/postfix
sendmail_path=$command_directory/sendmail
mailq_path=$bin_directory/mailq
newaliases_path=$bin_directory/newaliases

# Each link is relative, so a --prefix tree still works when moved.
rel_target() {
  case $1 in
    "$daemon_directory") echo ../../lib/posthorn/posthorn ;;
    *) echo ../lib/posthorn/posthorn ;;
  esac
}

# Postfix's command names (its command_directory); sendmail, mailq and
# newaliases have their own paths; every other program is a daemon.
commands=" postalias postcat postconf postdrop postfix postkick postlock postlog postmap postmulti postqueue postsuper posttls-finger "

program_path() {
  case $1 in
    sendmail) echo "$sendmail_path" ;;
    mailq) echo "$mailq_path" ;;
    newaliases) echo "$newaliases_path" ;;
    posthorn) echo "$command_directory/posthorn" ;;
    *)
      if [[ $commands == *" $1 "* ]]; then
        echo "$command_directory/$1"
      else
        echo "$daemon_directory/$1"
      fi
      ;;
  esac
}

# --- What to install -------------------------------------------------------

[ -d "$from" ] || fail "$from does not exist: build first (deno task compile, or deno task bundle)"
from=$(cd "$from" && pwd)
if [ -z "$kind" ] && [ -f "$from/bin/posthorn" ] && [ -x "$from/bin/posthorn" ]; then
  kind=binary
elif [ -f "$from/posthorn.js" ] && [ -f "$from/posthorn" ]; then
  kind=bundle
else
  fail "no built program in $from: run deno task compile (bin/posthorn) or deno task bundle (posthorn.js)"
fi

if [ "$kind" = bundle ]; then
  [ -n "$deno_path" ] || deno_path=$(command -v deno) ||
    fail "deno is not on PATH: name it with --deno PATH"
  [ -x "$deno_path" ] || fail "$deno_path is not an executable file"
  case $deno_path in /*) ;; *) deno_path=$(cd "$(dirname "$deno_path")" && pwd)/${deno_path##*/} ;; esac
  case $deno_path in *"'"* | *$'\n'*) fail "cannot use a deno path with quotes or newlines: $deno_path" ;; esac
  grep -q '^baked_deno=""$' "$from/posthorn" || fail "$from/posthorn is not the launcher bundle.sh makes"
fi

# The program list comes from the program itself, so it stays true as
# programs are added: `posthorn --help` prints them after "programs built in:".
if [ "$kind" = binary ]; then
  help=$("$from/bin/posthorn" --help) || fail "$from/bin/posthorn --help failed"
else
  help=$(POSTHORN_DENO=$deno_path "$from/posthorn" --help) || fail "$from/posthorn --help failed"
fi
programs=$(awk '/^programs built in:/ { on = 1; next } on && /^$/ { exit } on { print }' <<<"$help" |
  tr -s ' \t' '\n\n' | sed '/^$/d')
[ -n "$programs" ] || fail "posthorn --help listed no programs"

# Nothing is changed when a program path already holds something that is not
# Posthorn's (Postfix's own binaries, say), unless --force.
conflicts=()
for name in posthorn $programs; do
  path=$(program_path "$name")
  if [ -L "$path" ]; then
    [ "$(readlink -- "$path")" = "$(rel_target "$(dirname "$path")")" ] || conflicts+=("$path")
  elif [ -e "$path" ]; then
    conflicts+=("$path")
  fi
done
if [ ${#conflicts[@]} -gt 0 ] && [ -z "$force" ]; then
  printf 'install.sh: not Posthorn'\''s: %s\n' "${conflicts[@]}" >&2
  fail "${#conflicts[@]} program path(s) hold other files (above); remove them or use --force"
fi

# --- Accounts --------------------------------------------------------------

# An existing main.cf names the accounts of an upgrade (a plain setting; a
# $reference there is not expanded).
main_cf_value() {
  [ -f "$config_directory/main.cf" ] || return 0
  sed -n "s/^$1[ \t]*=[ \t]*\([^ \t]*\)[ \t]*\$/\1/p" "$config_directory/main.cf" | tail -n 1
}
: "${mail_owner:=$(main_cf_value mail_owner)}" "${setgid_group:=$(main_cf_value setgid_group)}"
if [ -z "$P" ] || [ -n "$is_root" ]; then
  : "${mail_owner:=postfix}" "${setgid_group:=postdrop}"
else
  : "${mail_owner:=$(id -un)}" "${setgid_group:=$(id -gn)}"
fi
[ -n "$P" ] || create_accounts=yes

if [ -n "$create_accounts" ]; then
  [ -n "$is_root" ] || fail "creating the accounts $mail_owner and $setgid_group needs root"
  if ! getent group "$setgid_group" >/dev/null; then
    groupadd --system "$setgid_group" || fail "cannot create the group $setgid_group"
    echo "install.sh: created the group $setgid_group"
  fi
  if ! getent passwd "$mail_owner" >/dev/null; then
    group_opt=(--user-group)
    getent group "$mail_owner" >/dev/null && group_opt=(--gid "$mail_owner")
    nologin=$(command -v nologin || echo /usr/sbin/nologin)
    useradd --system "${group_opt[@]}" --home-dir "$queue_directory" --no-create-home \
      --shell "$nologin" --comment "Posthorn mail system" "$mail_owner" ||
      fail "cannot create the user $mail_owner"
    echo "install.sh: created the user $mail_owner"
  fi
fi

# Owners are set only by root; an ordinary user's --prefix tree is all theirs.
chown_ok=""
if [ -n "$is_root" ]; then
  chown_ok=yes
  getent passwd "$mail_owner" >/dev/null ||
    fail "mail_owner $mail_owner has no account: use --create-accounts or --mail-owner NAME"
  getent group "$setgid_group" >/dev/null ||
    fail "setgid_group $setgid_group has no group: use --create-accounts or --setgid-group NAME"
fi

# Postfix refuses a privileged mail_owner: the daemons would run as root.
if [ -n "$chown_ok" ] && [ "$(id -u "$mail_owner")" -eq 0 ]; then
  fail "mail_owner $mail_owner is the super-user; name an unprivileged account"
fi

# make_dir PATH OWNER GROUP MODE: GROUP "-" leaves the group alone.
make_dir() {
  mkdir -p -- "$1" || fail "cannot create $1"
  if [ -n "$chown_ok" ]; then
    if [ "$3" = - ]; then chown -- "$2" "$1"; else chown -- "$2:$3" "$1"; fi ||
      fail "cannot set the owner of $1"
  fi
  chmod -- "$4" "$1" || fail "cannot set the mode of $1"
}

# --- The program -----------------------------------------------------------

make_dir "$lib_directory" root - 755
make_dir "$command_directory" root - 755
make_dir "$bin_directory" root - 755
make_dir "$daemon_directory" root - 755

# install_file SRC DEST MODE: copied beside DEST then renamed over it, so a
# running instance never sees half a file.
install_file() {
  local tmp
  tmp=$(dirname "$2")/.$(basename "$2").new
  cp -- "$1" "$tmp" && chmod "$3" "$tmp" && mv -f -- "$tmp" "$2" || fail "cannot install $2"
}

if [ "$kind" = binary ]; then
  install_file "$from/bin/posthorn" "$lib_directory/posthorn" 755
  rm -f -- "$lib_directory/posthorn.js"
else
  install_file "$from/posthorn.js" "$lib_directory/posthorn.js" 644
  baked=$(mktemp)
  sed "s|^baked_deno=\"\"\$|baked_deno='$deno_path'|" "$from/posthorn" >"$baked"
  install_file "$baked" "$lib_directory/posthorn" 755
  rm -f -- "$baked"
fi

for name in posthorn $programs; do
  path=$(program_path "$name")
  ln -sfn -- "$(rel_target "$(dirname "$path")")" "$path" || fail "cannot link $path"
done

# Links in the daemon directory to programs no longer built in go away.
for path in "$daemon_directory"/*; do
  [ -L "$path" ] || continue
  [ "$(readlink -- "$path")" = "$(rel_target "$daemon_directory")" ] || continue
  grep -qxF -- "${path##*/}" <<<"$programs" || rm -f -- "$path"
done

# --- Configuration ---------------------------------------------------------

make_dir "$config_directory" root - 755

if [ ! -e "$config_directory/main.cf" ]; then
  {
    echo "# main.cf: Posthorn's configuration, in Postfix's format (man 5 postconf)."
    echo "# Written by install.sh, which keeps it on upgrade. Parameters not set here"
    echo "# have Postfix's defaults (postconf -d)."
    echo "compatibility_level = 3.7"
    echo "queue_directory = $queue_directory"
    echo "command_directory = $command_directory"
    echo "daemon_directory = $daemon_directory"
    echo "data_directory = $data_directory"
    echo "mail_owner = $mail_owner"
    echo "setgid_group = $setgid_group"
    echo "sendmail_path = $sendmail_path"
    echo "newaliases_path = $newaliases_path"
    echo "mailq_path = $mailq_path"
    if [ -n "$P" ]; then
      # A folder install keeps its aliases inside the folder too.
      echo "alias_maps = hash:\$config_directory/aliases"
      echo "alias_database = hash:\$config_directory/aliases"
    fi
  } >"$config_directory/.main.cf.new"
  mv -- "$config_directory/.main.cf.new" "$config_directory/main.cf"
  echo "install.sh: wrote $config_directory/main.cf"
fi
if [ ! -e "$config_directory/master.cf" ]; then
  install_file "$script_dir/master_cf.default" "$config_directory/master.cf" 644
  echo "install.sh: wrote $config_directory/master.cf"
fi
if [ -n "$P" ] && [ ! -e "$config_directory/aliases" ]; then
  printf '# aliases(5): local aliases; run newaliases after editing.\npostmaster: root\n' \
    >"$config_directory/aliases"
fi

# --- The queue and data directories (Postfix's postfix-files) --------------
# Modes are set again on every run, as Postfix's set-permissions does.

make_dir "$queue_directory" root - 755
for sub in active bounce corrupt defer deferred flush hold incoming private saved trace; do
  make_dir "$queue_directory/$sub" "$mail_owner" - 700
done
# Posthorn installs no setgid postdrop, so two modes differ from Postfix's
# (lib/queue/layout.ts says why; the install test holds the two to the same
# table): maildrop is 3733 (anyone may drop a file, only its owner or
# mail_owner removes it, and it takes mail_owner's group, by which pickup
# reads it), public is 711 (anyone reaches a service socket by name).
owner_group=$mail_owner
[ -n "$chown_ok" ] && owner_group=$(id -gn "$mail_owner")
make_dir "$queue_directory/maildrop" "$mail_owner" "$owner_group" 3733
make_dir "$queue_directory/public" "$mail_owner" "$owner_group" 711
make_dir "$queue_directory/pid" root - 755
make_dir "$data_directory" "$mail_owner" - 700

echo "install.sh: installed the $kind as $lib_directory/posthorn;" \
  "$(wc -w <<<"$programs") programs linked; config in $config_directory," \
  "queue in $queue_directory"
