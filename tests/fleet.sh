#!/usr/bin/env bash
# An edge fleet fed by IXFR (issue 13), on loopback: one cnamed primary fed by dumps, three
# cnamed secondaries (`--primary`) and one Knot secondary, all keyed with one TSIG key; then a
# cnamed secondary that follows Knot as its primary.
#
#   tests/fleet.sh [--apps N] [--changes K]     (run as root; .ci/run runs it)
#
#   1. The secondaries start: the cnamed ones by AXFR, Knot by AXFR; each serves the
#      primary's serial and answers a sample of names as the primary does.
#   2. The primary reloads a dump that moves K apps, adds K and removes K (default 1,000 each
#      of 100k): every secondary serves the new serial within 2 s of the reload, each by
#      IXFR (the cnamed secondaries' metrics, the primary's log for all four), and the
#      changed names and the sample answer as the primary does.
#   3. The primary stops; a cnamed secondary restarts and serves the last mapping from the
#      dump it wrote.
#   4. The primary comes back with a newer serial (its NOTIFY at start): every secondary
#      catches up.
#   5. Knot as a primary, serving `cnamed zonefile`'s export and making IXFR from the
#      differences of the zone file (zonefile-load: difference): a cnamed secondary loads it
#      by AXFR, and after a changed zone file and `knotc zone-reload`, follows by IXFR
#      (Knot's NOTIFY), answering as Knot does.
# Nothing listens or sends beyond 127.0.0.1. Removes everything at the end.
set -euo pipefail

apps=100000
changes=1000
while [ $# -gt 0 ]; do
    case "$1" in
        --apps) apps=$2; shift 2 ;;
        --changes) changes=$2; shift 2 ;;
        *) echo "usage: $0 [--apps N] [--changes K]" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
root=$PWD
missing=()
command -v knotd >/dev/null || missing+=(knot)
command -v dig >/dev/null || missing+=(bind9-dnsutils)
command -v tsig-keygen >/dev/null || missing+=(bind9)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
cargo build --release --locked --bin cnamed --bin cnamed-gen 2>&1 | tail -1 >&2
bin=$root/target/release

work=$(mktemp -d /tmp/cnamed-fleet.XXXXXX)
declare -A pid_of
cleanup() {
    for pid in "${pid_of[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for log in "$work"/*.log; do echo "--- $log" >&2; tail -5 "$log" >&2; done; exit 1; }
step() { echo "== $*" >&2; }
now_ms() { date +%s%3N; }
# N distinct loopback ports free for UDP and TCP, all held until all are found.
free_ports() {
    python3 -c 'import socket, sys
held, ports = [], []
while len(ports) < int(sys.argv[1]):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try: u.bind(("127.0.0.1", p))
    except OSError: s.close(); continue
    held += [s, u]
    ports.append(p)
print(*ports)
' "$1"
}
zone=apps.example.com
edges=(edge1 edge2 edge3)
read -r primary_port edge1 edge2 edge3 knot_port knot_primary_port follower_port <<< "$(free_ports 7)"
declare -A port=([primary]=$primary_port [edge1]=$edge1 [edge2]=$edge2 [edge3]=$edge3
    [knot]=$knot_port [knot-primary]=$knot_primary_port [follower]=$follower_port)

tsig-keygen -a hmac-sha256 fleet-key > "$work/key.conf"
secret=$(sed -n 's/.*secret "\(.*\)";/\1/p' "$work/key.conf")
key="hmac-sha256:fleet-key:$secret"

# Waits for LINE in LOG (up to 10 s).
wait_log() {
    for _ in $(seq 1 200); do grep -q "$2" "$work/$1.log" 2>/dev/null && return 0; sleep 0.05; done
    fail "$1: no log line with '$2'"
}
serial_of() {
    dig @127.0.0.1 -p "${port[$1]}" +short +time=1 +tries=1 "$zone" SOA 2>/dev/null | awk '{print $3}'
}
metric() {
    local addr
    addr=$(sed -n 's,.*metrics on http://\([0-9.:]*\)/.*,\1,p' "$work/$1.log" | head -1)
    curl -s "http://$addr/metrics" | awk -v k="$2" '$1 == k {print $2}'
}
start_primary() {
    "$bin/cnamed" serve --dump "$work/primary.json" --zone "$zone" --listen "127.0.0.1:${port[primary]}" \
        --threads 1 --xfr-allow 127.0.0.1 --tsig-key-file "$work/key.conf" --soa-timers 60,5,600 \
        --notify "127.0.0.1:$edge1" --notify "127.0.0.1:$edge2" --notify "127.0.0.1:$edge3" \
        --notify "127.0.0.1:$knot_port" 2>>"$work/primary.log" &
    pid_of[primary]=$!
    wait_log primary "serving"
}
start_edge() {
    # A restart's log starts afresh (the first run's is kept beside it).
    [ ! -f "$work/$1.log" ] || mv "$work/$1.log" "$work/$1.log.$(now_ms)"
    "$bin/cnamed" serve --dump "$work/$1.json" --zone "$zone" --listen "127.0.0.1:${port[$1]}" \
        --threads 1 --primary "127.0.0.1:${port[primary]}" --tsig-key-file "$work/key.conf" \
        --metrics 127.0.0.1:0 2>"$work/$1.log" &
    pid_of[$1]=$!
    wait_log "$1" "serving"
}
# The answers to the names in FILE from PORT, TTLs aside (a secondary counts them down).
answers() {
    dig @127.0.0.1 -p "$1" +tcp +keepopen +noall +answer +comments +nocmd -f "$2" > "$work/raw-$1"
    grep -v -e '^;' -e '^$' "$work/raw-$1" | awk '{$2 = ""; print tolower($0)}' | sort
    grep -E -o 'status: [A-Z]+|flags: [a-z ]+;' "$work/raw-$1" | tr '\n' ' ' | sed 's/status/\nstatus/g'
}
# Every NAME serves SERIAL and answers FILE as PORT does.
same_answers() {
    local file=$1 reference=$2; shift 2
    answers "$reference" "$file" > "$work/want"
    for name in "$@"; do
        [ "$(serial_of "$name")" = "$serial" ] || fail "$name serves $(serial_of "$name"), not $serial"
        answers "${port[$name]}" "$file" > "$work/got-$name"
        diff -q "$work/want" "$work/got-$name" >/dev/null \
            || fail "$name answers differently: $(diff "$work/want" "$work/got-$name" | head -4)"
    done
    echo "  $* answer $(grep -c '^status' "$work/want") names of $(basename "$file") as the reference does" >&2
}

step "a cnamed primary with $apps apps, three cnamed secondaries and a Knot secondary"
"$bin/cnamed-gen" dump --apps "$apps" --clusters 8 > "$work/primary.json"
start_primary
serial=$(serial_of primary)
for edge in "${edges[@]}"; do
    echo "not a dump yet" > "$work/$edge.json"
    start_edge "$edge"
done
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
  - id: fleet-key
    algorithm: hmac-sha256
    secret: $secret
remote:
  - id: cnamed
    address: 127.0.0.1@$primary_port
    key: fleet-key
acl:
  - id: notify-from-cnamed
    address: 127.0.0.1
    key: fleet-key
    action: notify
  - id: transfer
    address: 127.0.0.1
    action: transfer
zone:
  - domain: $zone
    storage: $work/knot
    master: cnamed
    acl: [notify-from-cnamed, transfer]
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
CONF
knotd -c "$work/knot/knot.conf" 2>"$work/knot.log" &
pid_of[knot]=$!
for _ in $(seq 1 300); do [ "$(serial_of knot)" = "$serial" ] && break; sleep 0.1; done
python3 - "$work/primary.json" "$work/sample" <<'PY'
import json, random, sys
apps = sorted(json.load(open(sys.argv[1]))["apps"])
random.seed(7)
with open(sys.argv[2], "w") as out:
    for app in random.sample(apps, 300):
        out.write(f"ws-{app}.apps.example.com A\napi-{app}.apps.example.com CNAME\n")
    for i in range(50):
        out.write(f"ws-missing{i}.apps.example.com A\n")
    out.write("apps.example.com SOA\napps.example.com NS\n")
PY
same_answers "$work/sample" "$primary_port" edge1 edge2 edge3 knot

step "the primary reloads: $changes apps moved, $changes added, $changes removed"
old_serial=$serial
python3 - "$work/primary.json" "$work/changed" "$changes" <<'PY'
import json, os, sys
path, changed, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
dump = json.load(open(path))
apps = dump["apps"]
ids = sorted(apps)
clusters = sorted(set(apps.values()))
moved, removed = ids[:n], ids[n:2 * n]
for app in moved:
    apps[app] = clusters[(clusters.index(apps[app]) + 1) % len(clusters)]
for app in removed:
    del apps[app]
added = [f"fleet{i}" for i in range(n)]
for i, app in enumerate(added):
    apps[app] = clusters[i % len(clusters)]
dump["serial"] += 1
json.dump(dump, open(path + ".tmp", "w"))
os.rename(path + ".tmp", path)
with open(changed, "w") as out:
    for app in (moved + removed + added)[::3]:
        out.write(f"ws-{app}.apps.example.com A\n")
PY
serial=$((old_serial + 1))
# Timed from the signal: the primary's own reload is in every secondary's time.
reloaded_at=$(now_ms)
kill -HUP "${pid_of[primary]}"
for _ in $(seq 1 400); do grep -q "serial $serial (was" "$work/primary.log" && break; sleep 0.005; done
grep "reloaded" "$work/primary.log" | tail -1 | sed 's/^/  /' >&2
declare -A caught_up
pending=(edge1 edge2 edge3 knot)
while [ ${#pending[@]} -gt 0 ]; do
    elapsed=$(($(now_ms) - reloaded_at))
    [ "$elapsed" -le 2000 ] || fail "${pending[*]} not at serial $serial within 2 s"
    still=()
    for name in "${pending[@]}"; do
        if [ "$(serial_of "$name")" = "$serial" ]; then caught_up[$name]=$elapsed; else still+=("$name"); fi
    done
    pending=("${still[@]}")
done
for name in edge1 edge2 edge3 knot; do
    echo "  $name: serial $serial served ${caught_up[$name]} ms after SIGHUP to the primary" >&2
done
for edge in "${edges[@]}"; do
    by_ixfr=$(metric "$edge" 'cnamed_secondary_transfers_total{type="IXFR",result="changed"}')
    by_axfr=$(metric "$edge" 'cnamed_secondary_transfers_total{type="AXFR",result="changed"}')
    [ "$by_ixfr" = 1 ] && [ "$by_axfr" = 0 ] || fail "$edge: $by_ixfr IXFR, $by_axfr AXFR refreshes"
    grep "reloaded" "$work/$edge.log" | tail -1 | sed "s/^/  $edge: /" >&2
done
incremental=$(grep -c "IXFR from $old_serial (incremental)" "$work/primary.log" || true)
[ "$incremental" -ge 4 ] || fail "the primary sent $incremental incremental IXFRs from $old_serial, not 4"
grep "IXFR from $old_serial (incremental)" "$work/primary.log" | sed 's/^/  primary: /' >&2
same_answers "$work/changed" "$primary_port" edge1 edge2 edge3 knot
same_answers "$work/sample" "$primary_port" edge1 edge2 edge3 knot

step "the primary stops; edge1 restarts and serves the last mapping from its dump"
answers "$primary_port" "$work/changed" > "$work/want-changed"
kill "${pid_of[primary]}"; wait "${pid_of[primary]}" 2>/dev/null || true
unset 'pid_of[primary]'
kill "${pid_of[edge1]}"; wait "${pid_of[edge1]}" 2>/dev/null || true
start_edge edge1
grep -q "no primary gave the zone" "$work/edge1.log" || fail "edge1 did not fall back to its dump"
[ "$(serial_of edge1)" = "$serial" ] || fail "edge1 restarted with serial $(serial_of edge1)"
answers "$edge1" "$work/changed" > "$work/got-restarted"
diff -q "$work/want-changed" "$work/got-restarted" >/dev/null || fail "edge1's dump differs"
echo "  edge1: serial $serial from $work/edge1.json, the changed names answered as before" >&2

step "the primary comes back with a newer serial: every secondary catches up"
python3 - "$work/primary.json" <<'PY'
import json, os, sys
dump = json.load(open(sys.argv[1]))
dump["serial"] += 1
dump["apps"]["back-again"] = sorted(set(dump["apps"].values()))[0]
json.dump(dump, open(sys.argv[1] + ".tmp", "w"))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
PY
serial=$((serial + 1))
started_at=$(now_ms)
start_primary
for name in edge1 edge2 edge3 knot; do
    for _ in $(seq 1 100); do [ "$(serial_of "$name")" = "$serial" ] && break; sleep 0.1; done
    [ "$(serial_of "$name")" = "$serial" ] || fail "$name did not catch up to $serial"
done
echo "  all four at serial $serial $(($(now_ms) - started_at)) ms after the primary started" >&2
same_answers "$work/sample" "$primary_port" edge1 edge2 edge3 knot

step "Knot as the primary (IXFR from zone-file differences), a cnamed secondary following it"
mkdir -p "$work/knot-primary"
"$bin/cnamed" zonefile --dump "$work/primary.json" --zone "$zone" --soa-timers 60,5,600 \
    > "$work/knot-primary/$zone.zone"
cat > "$work/knot-primary/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$knot_primary_port
    rundir: $work/knot-primary
database:
    storage: $work/knot-primary
log:
  - target: stderr
    any: info
key:
  - id: fleet-key
    algorithm: hmac-sha256
    secret: $secret
remote:
  - id: follower
    address: 127.0.0.1@$follower_port
    key: fleet-key
acl:
  - id: transfer
    address: 127.0.0.1
    key: fleet-key
    action: transfer
zone:
  - domain: $zone
    storage: $work/knot-primary
    file: $zone.zone
    notify: follower
    acl: [transfer]
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
    serial-policy: increment
CONF
knotd -c "$work/knot-primary/knot.conf" 2>"$work/knot-primary.log" &
pid_of[knot-primary]=$!
for _ in $(seq 1 300); do [ "$(serial_of knot-primary)" = "$serial" ] && break; sleep 0.1; done
[ "$(serial_of knot-primary)" = "$serial" ] || fail "Knot as primary serves $(serial_of knot-primary)"
echo "not a dump yet" > "$work/follower.json"
"$bin/cnamed" serve --dump "$work/follower.json" --zone "$zone" --listen "127.0.0.1:$follower_port" \
    --threads 1 --primary "127.0.0.1:$knot_primary_port" --tsig-key-file "$work/key.conf" \
    --metrics 127.0.0.1:0 2>>"$work/follower.log" &
pid_of[follower]=$!
wait_log follower "serving"
same_answers "$work/sample" "$knot_primary_port" follower
python3 - "$work/primary.json" "$work/changed" "$changes" <<'PY'
import json, os, sys
path, changed, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
dump = json.load(open(path))
apps = dump["apps"]
ids = sorted(apps)[-n:]
clusters = sorted(set(apps.values()))
for app in ids:
    apps[app] = clusters[(clusters.index(apps[app]) + 3) % len(clusters)]
dump["serial"] += 1
json.dump(dump, open(path + ".tmp", "w"))
os.rename(path + ".tmp", path)
with open(changed, "w") as out:
    for app in ids[::3]:
        out.write(f"ws-{app}.apps.example.com A\n")
PY
serial=$((serial + 1))
"$bin/cnamed" zonefile --dump "$work/primary.json" --zone "$zone" --soa-timers 60,5,600 \
    > "$work/knot-primary/$zone.zone"
changed_at=$(now_ms)
knotc -c "$work/knot-primary/knot.conf" zone-reload "$zone" >/dev/null
for _ in $(seq 1 200); do [ "$(serial_of follower)" = "$serial" ] && break; sleep 0.05; done
[ "$(serial_of follower)" = "$serial" ] || fail "the follower did not follow Knot to $serial"
echo "  follower: serial $serial $(($(now_ms) - changed_at)) ms after knotc zone-reload" >&2
by_ixfr=$(metric follower 'cnamed_secondary_transfers_total{type="IXFR",result="changed"}')
[ "$by_ixfr" = 1 ] || fail "the follower took $by_ixfr IXFRs from Knot"
grep "reloaded" "$work/follower.log" | tail -1 | sed 's/^/  follower: /' >&2
same_answers "$work/changed" "$knot_primary_port" follower
same_answers "$work/sample" "$knot_primary_port" follower
echo "fleet.sh: ok" >&2
