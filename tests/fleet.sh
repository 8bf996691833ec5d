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
#      of 100k): every secondary serves the new serial (how long after is reported), each by
#      IXFR (the cnamed secondaries' metrics, the primary's log for all four), and the
#      changed names and the sample answer as the primary does.
#   3. The primary stops; a cnamed secondary restarts and serves the last mapping from the
#      dump it wrote; edge2, which keeps a journal (--journal: the IXFR appended, its dump
#      left as the start's AXFR wrote it), is killed (-9) and restarts from dump + journal.
#   4. The primary comes back with a newer serial (its NOTIFY at start): every secondary
#      catches up, edge2 by IXFR from the journal's serial.
#   After 1, 2 and 4, `cnamed wait` on the primary returns: its fleet view (SOA queries to
#   every --notify target) has all four, Knot included, at the serial.
#   5. Knot as a primary, serving `cnamed zonefile`'s export and making IXFR from the
#      differences of the zone file (zonefile-load: difference): a cnamed secondary loads it
#      by AXFR, and after a changed zone file and `knotc zone-reload`, follows by IXFR
#      (Knot's NOTIFY), answering as Knot does.
# Nothing listens or sends beyond 127.0.0.1. Removes everything at the end.
. "$(dirname "$0")/../tests/lib.sh"

apps=100000
changes=1000
parse_flags "[--apps N] [--changes K]" apps changes -- "$@"
need knotd:knot dig:bind9-dnsutils tsig-keygen:bind9
build cnamed cnamed-gen

make_work fleet
declare -A pid_of
now_ms() { date +%s%3N; }
zone=apps.example.com
edges=(edge1 edge2 edge3)
# edge2 keeps a journal of the differences instead of writing its dump after each.
declare -A edge_flags=([edge2]="--journal $work/edge2.journal")
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
# `cnamed wait` for SERIAL: every --notify target of the primary (three cnamed edges and
# Knot) serves it, as the primary's SOA queries found.
wait_live() {
    local out
    out=$("$bin/cnamed" wait --control "$work/control.sock" --serial "$1" --timeout 60 2>&1) \
        || fail "cnamed wait --serial $1: $out"
    [[ "$out" == *"on all 4 --notify targets"* ]] || fail "cnamed wait: $out"
    echo "  cnamed wait: $out" >&2
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
        --notify "127.0.0.1:$knot_port" --control "$work/control.sock" 2>>"$work/primary.log" &
    pid_of[primary]=$!
    track $!
    wait_log primary "serving"
}
start_edge() {
    # A restart's log starts afresh (the first run's is kept beside it).
    [ ! -f "$work/$1.log" ] || mv "$work/$1.log" "$work/$1.log.$(now_ms)"
    "$bin/cnamed" serve --dump "$work/$1.json" --zone "$zone" --listen "127.0.0.1:${port[$1]}" \
        --threads 1 --primary "127.0.0.1:${port[primary]}" --tsig-key-file "$work/key.conf" \
        --metrics 127.0.0.1:0 ${edge_flags[$1]:-} 2>"$work/$1.log" &
    pid_of[$1]=$!
    track $!
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
knot_secondary_conf "$work/knot" "$knot_port" "$primary_port" "$zone" fleet-key "$secret"
knotd -c "$work/knot/knot.conf" 2>"$work/knot.log" &
pid_of[knot]=$!
track $!
for _ in $(seq 1 300); do [ "$(serial_of knot)" = "$serial" ] && break; sleep 0.1; done
"$bin/cnamed-gen" sample --dump "$work/primary.json" --count 300 --missing 50 > "$work/sample"
same_answers "$work/sample" "$primary_port" edge1 edge2 edge3 knot
# The fleet view: the primary has asked all four their SOA (Knot as any edge).
wait_live "$serial"
"$bin/cnamed" status --control "$work/control.sock" | grep '^notify_targets:' | sed 's/^/  /' >&2

step "the primary reloads: $changes apps moved, $changes added, $changes removed"
old_serial=$serial
edge2_dump=$(md5sum < "$work/edge2.json")
"$bin/cnamed-gen" change --dump "$work/primary.json" --move "$changes" --remove "$changes" \
    --add "$changes" --prefix fleet --names "$work/changed" --every 3
serial=$((old_serial + 1))
# Timed from the signal: the primary's own reload is in every secondary's time.
reloaded_at=$(now_ms)
kill -HUP "${pid_of[primary]}"
# The primary's reload may wait up to 5 s for idle CPU on a busy box.
for _ in $(seq 1 6000); do grep -q "serial $serial (was" "$work/primary.log" && break; sleep 0.005; done
grep -q "serial $serial (was" "$work/primary.log" || fail "the primary did not reload to $serial"
grep "reloaded" "$work/primary.log" | tail -1 | sed 's/^/  /' >&2
declare -A caught_up
pending=(edge1 edge2 edge3 knot)
while [ ${#pending[@]} -gt 0 ]; do
    elapsed=$(($(now_ms) - reloaded_at))
    # The times are reported below (well under 2 s on an idle box: benches measure them);
    # the bound only ends a run whose secondaries never follow.
    [ "$elapsed" -le 60000 ] || fail "${pending[*]} not at serial $serial within 60 s"
    still=()
    for name in "${pending[@]}"; do
        if [ "$(serial_of "$name")" = "$serial" ]; then caught_up[$name]=$elapsed; else still+=("$name"); fi
    done
    pending=("${still[@]}")
done
for name in edge1 edge2 edge3 knot; do
    echo "  $name: serial $serial served ${caught_up[$name]} ms after SIGHUP to the primary" >&2
done
wait_live "$serial"
echo "  cnamed wait --serial $serial returned $(($(now_ms) - reloaded_at)) ms after SIGHUP" >&2
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
sleep 3   # past the dump writer's 2 s: edge1 and edge3 write their dumps, edge2 must not
[ "$(md5sum < "$work/edge2.json")" = "$edge2_dump" ] || fail "edge2 rewrote its dump"
echo "  edge2: the difference in its journal ($(stat -c %s "$work/edge2.journal") bytes), its dump as the AXFR left it" >&2

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
kill -9 "${pid_of[edge2]}"; wait "${pid_of[edge2]}" 2>/dev/null || true
start_edge edge2
grep -q "replayed from serial $old_serial to $serial" "$work/edge2.log" \
    || fail "edge2 did not replay its journal: $(grep journal "$work/edge2.log")"
[ "$(serial_of edge2)" = "$serial" ] || fail "edge2 restarted with serial $(serial_of edge2)"
answers "$edge2" "$work/changed" > "$work/got-restarted"
diff -q "$work/want-changed" "$work/got-restarted" >/dev/null || fail "edge2's dump + journal differ"
grep "journal" "$work/edge2.log" | sed 's/^/  edge2 (kill -9, restarted): /' >&2

step "the primary comes back with a newer serial: every secondary catches up"
"$bin/cnamed-gen" change --dump "$work/primary.json" --add 1 --prefix back-again
serial=$((serial + 1))
started_at=$(now_ms)
start_primary
for name in edge1 edge2 edge3 knot; do
    for _ in $(seq 1 100); do [ "$(serial_of "$name")" = "$serial" ] && break; sleep 0.1; done
    [ "$(serial_of "$name")" = "$serial" ] || fail "$name did not catch up to $serial"
done
echo "  all four at serial $serial $(($(now_ms) - started_at)) ms after the primary started" >&2
by_ixfr=$(metric edge2 'cnamed_secondary_transfers_total{type="IXFR",result="changed"}')
[ "$by_ixfr" = 1 ] && ! grep -q "AXFR from" "$work/edge2.log" \
    || fail "edge2 did not catch up by IXFR from its journal's serial"
wait_live "$serial"
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
track $!
for _ in $(seq 1 300); do [ "$(serial_of knot-primary)" = "$serial" ] && break; sleep 0.1; done
[ "$(serial_of knot-primary)" = "$serial" ] || fail "Knot as primary serves $(serial_of knot-primary)"
echo "not a dump yet" > "$work/follower.json"
"$bin/cnamed" serve --dump "$work/follower.json" --zone "$zone" --listen "127.0.0.1:$follower_port" \
    --threads 1 --primary "127.0.0.1:$knot_primary_port" --tsig-key-file "$work/key.conf" \
    --metrics 127.0.0.1:0 2>>"$work/follower.log" &
pid_of[follower]=$!
track $!
wait_log follower "serving"
same_answers "$work/sample" "$knot_primary_port" follower
"$bin/cnamed-gen" change --dump "$work/primary.json" --move "$changes" --from-end --shift 3 \
    --names "$work/changed" --every 3
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
