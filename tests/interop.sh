#!/usr/bin/env bash
# Interop with the real servers: Knot, NSD and BIND 9 from the distribution's packages, each
# configured as a secondary of cnamed on loopback, must load the zone by AXFR and answer
# exactly as cnamed does.
#
#   tests/interop.sh [--apps N]     (run as root; .ci/run runs it)
#
# Starts cnamed with N apps (default 100k), --xfr-allow 127.0.0.1 and a TSIG key (every
# transfer signed; tsig-keygen makes the key), then knotd, nsd and
# named on free loopback ports with configurations in a temp directory (nothing listens
# elsewhere, nothing is sent elsewhere: BIND has recursion off and its query, transfer and
# notify sources pinned to 127.0.0.1). For each secondary: its serial matches, its own AXFR
# has the same number of records as cnamed's, and 1,000 names (hits, misses, the apex) get
# the same answers from it as from cnamed (compared with dig). Removes everything at the end.
set -euo pipefail

apps=100000
while [ $# -gt 0 ]; do
    case "$1" in
        --apps) apps=$2; shift 2 ;;
        *) echo "usage: $0 [--apps N]" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
root=$PWD
missing=()
command -v knotd >/dev/null || missing+=(knot)
command -v nsd >/dev/null || missing+=(nsd)
command -v named >/dev/null || missing+=(bind9)
command -v dig >/dev/null || missing+=(bind9-dnsutils)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
cargo build --release --locked --bin cnamed --bin cnamed-gen 2>&1 | tail -1 >&2
bin=$root/target/release

work=$(mktemp -d /tmp/cnamed-interop.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for log in "$work"/*.log; do echo "--- $log" >&2; tail -5 "$log" >&2; done; exit 1; }
step() { echo "== $*" >&2; }
# A loopback port free for UDP and TCP.
free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", p)); u.close(); print(p)'
}
zone=apps.example.com

step "cnamed with $apps apps, transfers signed with a TSIG key from tsig-keygen"
tsig-keygen -a hmac-sha256 xfr-key > "$work/xfr-key.conf"
secret=$(sed -n 's/.*secret "\(.*\)";/\1/p' "$work/xfr-key.conf")
"$bin/cnamed-gen" dump --apps "$apps" --clusters 8 > "$work/apps.json"
"$bin/cnamed" serve --dump "$work/apps.json" --zone "$zone" --listen 127.0.0.1:0 --threads 2 \
    --xfr-allow 127.0.0.1 --tsig-key-file "$work/xfr-key.conf" 2>"$work/cnamed.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q serving "$work/cnamed.log" && break; sleep 0.1; done
primary=$(sed -n 's/.* on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/cnamed.log" | head -1)
[ -n "$primary" ] || fail "cnamed did not start"
serial=$(dig @127.0.0.1 -p "$primary" +short "$zone" SOA | awk '{print $3}')
records=$(dig @127.0.0.1 -p "$primary" -y "hmac-sha256:xfr-key:$secret" "$zone" AXFR \
    | sed -n 's/.*XFR size: \([0-9]*\) records.*/\1/p')
[ "$records" -eq $((apps * 3 + 3)) ] || fail "cnamed's AXFR has $records records"

step "Knot as a secondary"
knot_port=$(free_port)
mkdir -p "$work/knot"
cat > "$work/knot/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$knot_port
    rundir: $work/knot
database:
    storage: $work/knot
log:
  - target: stderr
    any: info
key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: $secret
remote:
  - id: cnamed
    address: 127.0.0.1@$primary
    key: xfr-key
acl:
  - id: local
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: $work/knot
zone:
  - domain: $zone
    master: cnamed
    acl: local
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
CONF
knotd -c "$work/knot/knot.conf" 2>"$work/knot.log" &
pids+=($!)

step "NSD as a secondary"
nsd_port=$(free_port)
mkdir -p "$work/nsd"
cat > "$work/nsd/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1
    port: $nsd_port
    username: ""
    chroot: ""
    zonesdir: "$work/nsd"
    database: ""
    pidfile: "$work/nsd/nsd.pid"
    xfrdfile: "$work/nsd/xfrd.state"
    zonelistfile: "$work/nsd/zone.list"
    xfrdir: "$work/nsd"
    verbosity: 1
remote-control:
    control-enable: no
key:
    name: xfr-key
    algorithm: hmac-sha256
    secret: "$secret"
zone:
    name: $zone
    zonefile: "$zone.zone"
    request-xfr: AXFR 127.0.0.1@$primary xfr-key
    allow-notify: 127.0.0.1 NOKEY
    provide-xfr: 127.0.0.1 NOKEY
CONF
nsd -d -c "$work/nsd/nsd.conf" 2>"$work/nsd.log" &
pids+=($!)

step "BIND 9 as a secondary (of a second cnamed, without TSIG: see below)"
# BIND signs its SOA refresh query too, and cnamed signs only transfer responses so far: BIND
# refuses the unsigned SOA answer ("expected a TSIG or SIG(0)"). Until queries are signed as
# well, BIND follows a cnamed that allows transfers by address alone.
"$bin/cnamed" serve --dump "$work/apps.json" --zone "$zone" --listen 127.0.0.1:0 --threads 1 \
    --xfr-allow 127.0.0.1 2>"$work/cnamed-nokey.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q serving "$work/cnamed-nokey.log" && break; sleep 0.1; done
primary_nokey=$(sed -n 's/.* on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/cnamed-nokey.log" | head -1)
bind_port=$(free_port)
mkdir -p "$work/bind"
cat > "$work/bind/named.conf" <<CONF
options {
    directory "$work/bind";
    pid-file "$work/bind/named.pid";
    listen-on port $bind_port { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    query-source address 127.0.0.1;
    transfer-source 127.0.0.1;
    notify explicit;
    dnssec-validation no;
    allow-transfer { 127.0.0.1; };
};
controls { };
zone "$zone" {
    type secondary;
    primaries { 127.0.0.1 port $primary_nokey; };
    file "$work/bind/$zone.db";
    request-ixfr no;
};
CONF
named -g -4 -u root -c "$work/bind/named.conf" 2>"$work/bind.log" &
pids+=($!)

# check NAME PORT: the secondary serves cnamed's serial, the same number of records, and the
# same answers for a sample of names.
"$bin/cnamed-gen" queries --apps "$apps" --count 1000 --mix mixed --seed 7 \
    | awk '{print $1, $2}' > "$work/sample"
printf '%s SOA\n%s NS\n' "$zone" "$zone" >> "$work/sample"
# Over TCP: what is checked here are the answers; UDP has its own tests (a batch over UDP
# once got a stray packet dig warned about, "query response not set", under investigation).
# The answer records (TTL aside: a secondary counts it down) sorted, then each name's RCODE
# and AA flag in order.
answers() {
    dig @127.0.0.1 -p "$1" +tcp +noall +answer +nocmd -f "$work/sample" | awk '{$2 = ""; print tolower($0)}' | sort
    dig @127.0.0.1 -p "$1" +tcp +noall +comments +nocmd -f "$work/sample" \
        | grep -E -o 'status: [A-Z]+|flags: [a-z ]+;' | tr '\n' ' ' | sed 's/status/\nstatus/g'
}
answers "$primary" > "$work/want"
[ "$(grep -c NXDOMAIN "$work/want")" -gt 10 ] && [ "$(grep -c ' cname ' "$work/want")" -gt 500 ] \
    || fail "the sample needs hits and misses"
check() {
    local name=$1 port=$2 got=""
    for _ in $(seq 1 300); do
        got=$(dig @127.0.0.1 -p "$port" +short +time=1 +tries=1 "$zone" SOA 2>/dev/null | awk '{print $3}')
        [ "$got" = "$serial" ] && break
        sleep 0.2
    done
    [ "$got" = "$serial" ] || fail "$name serves serial '$got', not $serial"
    local count
    count=$(dig @127.0.0.1 -p "$port" "$zone" AXFR | sed -n 's/.*XFR size: \([0-9]*\) records.*/\1/p')
    [ "$count" = "$records" ] || fail "$name has $count records, cnamed $records"
    answers "$port" > "$work/got-$name"
    diff -q "$work/want" "$work/got-$name" >/dev/null \
        || fail "$name answers differently: $(diff "$work/want" "$work/got-$name" | head -4)"
    echo "$name: serial $serial, $count records, $(grep -c '^status' "$work/want") sampled names answered identically" >&2
}
check knot "$knot_port"
check nsd "$nsd_port"
check bind "$bind_port"
echo "interop.sh: ok" >&2
