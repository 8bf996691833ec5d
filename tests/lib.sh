# What every shell script in tests/ and benches/ shares. Sourced first, with the script's
# own flags after it:
#
#     . "$(dirname "$0")/../tests/lib.sh"
#
# It moves to the repository root and sets `root` and `bin` (target/release). Then:
#
#   parse_flags USAGE SPEC... -- "$@"   `--name VALUE` sets $name (dashes become
#                                       underscores); a SPEC ending in `?` is a switch that
#                                       sets it to yes; anything else prints the usage, exit 2
#   need COMMAND:PACKAGE...             apt-get installs the packages whose command is missing
#   build [BINARY...]                   cargo build --release --locked of those binaries (all
#                                       of them without any)
#   build_at REF DIR BINARY             BINARY as commit REF builds it, into DIR/release
#                                       (a worktree made and removed beside DIR), once
#   make_work NAME                      $work: a fresh directory under /tmp, removed at exit
#                                       (kept when KEEP is set); a script that keeps its
#                                       files (target/load) sets $work itself instead
#   track PID                           the process is killed at exit (then waited for)
#   on_exit COMMAND                     run at exit, after the kills (stop a database, purge)
#   free_ports N                        N loopback ports free for TCP and UDP (cnamed-gen)
#   step MESSAGE                        "== MESSAGE" on stderr
#   fail MESSAGE                        "FAIL: MESSAGE" and the last lines of $work/*.log,
#                                       exit 1
#
# Nothing here listens or sends: the scripts use loopback only.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
bin=$root/target/release
work=
_made_work=
_tracked=()
_exit_hooks=()

_cleanup() {
    local pid hook
    for pid in "${_tracked[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for hook in "${_exit_hooks[@]}"; do eval "$hook" || true; done
    if [ -n "$_made_work" ] && [ -z "${KEEP:-}" ]; then rm -rf "$_made_work"; fi
}
trap _cleanup EXIT

parse_flags() {
    local usage=$1 spec name found
    shift
    local specs=()
    while [ "$1" != "--" ]; do specs+=("$1"); shift; done
    shift
    while [ $# -gt 0 ]; do
        found=
        for spec in "${specs[@]}"; do
            name=${spec%\?}
            [ "$1" = "--$name" ] || continue
            found=yes
            if [ "$spec" != "$name" ]; then
                printf -v "${name//-/_}" yes
                shift
            elif [ $# -ge 2 ]; then
                printf -v "${name//-/_}" '%s' "$2"
                shift 2
            else
                found=
            fi
            break
        done
        [ -n "$found" ] || { echo "usage: $0 $usage" >&2; exit 2; }
    done
}

need() {
    local pair missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
}

build() {
    local args=(--bins) name
    [ $# -eq 0 ] || args=()
    for name in "$@"; do args+=(--bin "$name"); done
    cargo build --release --locked "${args[@]}" 2>&1 | tail -1 >&2
}

build_at() {
    local ref=$1 dir=$2 name=$3 src=$2-src
    [ ! -x "$dir/release/$name" ] || return 0
    step "building $name at $ref"
    rm -rf "$src"
    git worktree prune
    git worktree add --detach "$src" "$ref" >/dev/null 2>&1
    (cd "$src" && cargo build --release --locked --bin "$name" --target-dir "$dir" 2>&1 \
        | tail -1 >&2)
    git worktree remove --force "$src"
}

make_work() {
    work=$(mktemp -d "/tmp/cnamed-$1.XXXXXX")
    _made_work=$work
}

track() { _tracked+=("$1"); }

on_exit() { _exit_hooks+=("$1"); }

free_ports() { "$bin/cnamed-gen" ports "$1"; }

# A TSIG key file at $1 holding one random hmac-sha256 key, "upd" (the UPDATE benches' and
# tests' signer).
update_key_file() {
    printf 'key "upd" { algorithm hmac-sha256; secret "%s"; };\n' "$(head -c 32 /dev/urandom | base64)" \
        > "$1"
}

# Waits up to $2 seconds for cnamed's "serving" line in the log $1; else fails, naming $3.
wait_serving() {
    local i
    for ((i = 0; i < $2 * 100; i++)); do
        grep -q serving "$1" && return
        sleep 0.01
    done
    fail "$3 did not start: no \"serving\" in $1 after $2 s"
}

# Writes $1/knot.conf: Knot listening on 127.0.0.1@$2 as a secondary for zone $4 of the
# cnamed primary on 127.0.0.1@$3, transfers and NOTIFY signed with hmac-sha256 key $5 (base64
# secret $6); 127.0.0.1 may transfer the zone from Knot, signed or not. Logs at info on
# stderr (the benches read its apply times), never writes a zone file.
knot_secondary_conf() {
    local dir=$1 port=$2 primary=$3 zone=$4 key=$5 secret=$6
    mkdir -p "$dir"
    cat > "$dir/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$port
    rundir: $dir
database:
    storage: $dir
log:
  - target: stderr
    any: info
key:
  - id: $key
    algorithm: hmac-sha256
    secret: $secret
remote:
  - id: cnamed
    address: 127.0.0.1@$primary
    key: $key
acl:
  - id: local
    address: 127.0.0.1
    action: transfer
  - id: local-signed
    address: 127.0.0.1
    key: $key
    action: transfer
  - id: notify-from-cnamed
    address: 127.0.0.1
    key: $key
    action: notify
zone:
  - domain: $zone
    storage: $dir
    master: cnamed
    acl: [local, local-signed, notify-from-cnamed]
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
CONF
}

# A dump of $1 numeric apps on 8 clusters at $2, generated once and kept for later runs.
cached_dump() { [ -s "$2" ] || "$bin/cnamed-gen" dump --apps "$1" --clusters 8 > "$2"; }

step() { echo "== $*" >&2; }

fail() {
    local log
    echo "FAIL: $*" >&2
    if [ -n "$work" ]; then
        for log in "$work"/*.log; do
            [ -f "$log" ] || continue
            echo "--- $log" >&2
            tail -5 "$log" >&2
        done
    fi
    exit 1
}
