#!/usr/bin/env bash
# Faults survived (issue 24): a cnamed primary taking UPDATEs and two cnamed secondaries (each
# with a journal) as separate hosts, in network namespaces this script creates and removes:
# veth pairs primary<->edge1 (10.77.1.0/24) and primary<->edge2 (10.77.2.0/24), loopback
# otherwise; nothing is sent anywhere else.
#
#   tests/faults.sh [--apps N] [--changes K]     (run as root; .ci/run runs it)
#
#   1. Cut off: edge1's link goes down for 30 s while K updates (default 100) are
#      acknowledged; edge2 follows them; once the link is back edge1 catches up by IXFR
#      within a refresh (SOA REFRESH and RETRY 2 s here) plus the transfer.
#   2. Loss: nftables drops 20% of the packets each way at both edges (`numgen random mod
#      100 < 20 drop`, input and output); K updates are acknowledged, every one reaches
#      both edges, and `cnamed wait` on the primary returns (its time is reported).
#   3. Crash: the primary is killed (-9) in the middle of a stream of updates and
#      restarted (dump + journal): every acknowledged change is served by it and by both
#      edges, no serial went backwards.
# Each phase ends with the apps changed checked on both edges (dig); the summary line gives
# faults injected, changes acknowledged and changes lost.
. "$(dirname "$0")/../tests/lib.sh"

apps=10000
changes=100
parse_flags "[--apps N] [--changes K]" apps changes -- "$@"
need dig:bind9-dnsutils nft:nftables ip:iproute2
build cnamed cnamed-gen

make_work faults
zone=apps.example.com
# Names unique to this run, so that a run killed before its cleanup leaves nothing in the way.
tag=cnf$$
ns_primary=$tag-p ns_edge1=$tag-1 ns_edge2=$tag-2
declare -A ns=([primary]=$ns_primary [edge1]=$ns_edge1 [edge2]=$ns_edge2)
declare -A addr=([edge1]=10.77.1.2 [edge2]=10.77.2.2)
declare -A primary_addr=([edge1]=10.77.1.1 [edge2]=10.77.2.1)
declare -A link=([edge1]=${tag}e1 [edge2]=${tag}e2)
declare -A pid_of
on_exit "ip netns del $ns_primary 2>/dev/null; ip netns del $ns_edge1 2>/dev/null; ip netns del $ns_edge2 2>/dev/null"
now_ms() { date +%s%3N; }
in_ns() { local name=$1; shift; ip netns exec "$name" "$@"; }

step "three hosts: a primary and two edges in namespaces, veth links"
for name in primary edge1 edge2; do
    ip netns add "${ns[$name]}"
    in_ns "${ns[$name]}" ip link set lo up
done
for edge in edge1 edge2; do
    # The edge's end keeps the link's name; the primary's end is named with a "p".
    ip link add "${link[$edge]}" netns "${ns[$edge]}" type veth peer name "${link[$edge]}p" \
        netns "$ns_primary"
    in_ns "${ns[$edge]}" ip addr add "${addr[$edge]}/24" dev "${link[$edge]}"
    in_ns "${ns[$edge]}" ip link set "${link[$edge]}" up
    in_ns "$ns_primary" ip addr add "${primary_addr[$edge]}/24" dev "${link[$edge]}p"
    in_ns "$ns_primary" ip link set "${link[$edge]}p" up
done

# The primary's key file: "xfr" first (it signs NOTIFYs; the edges sign transfers with it),
# then "upd", which may UPDATE. The edges know only "xfr".
printf 'key "xfr" { algorithm hmac-sha256; secret "%s"; };\n' "$(head -c 32 /dev/urandom | base64)" \
    > "$work/xfr.conf"
update_key_file "$work/upd.conf"
cat "$work/xfr.conf" "$work/upd.conf" > "$work/keys.conf"
"$bin/cnamed-gen" dump --apps "$apps" --clusters 8 > "$work/primary.json"

# Started by `ip netns exec` itself (it execs cnamed, so $! is cnamed's PID), each start's
# log afresh (the one before kept beside it).
start_primary() {
    [ ! -f "$work/primary.log" ] || mv "$work/primary.log" "$work/primary.log.$(now_ms)"
    ip netns exec "$ns_primary" "$bin/cnamed" serve --dump "$work/primary.json" --zone "$zone" \
        --listen 127.0.0.1:53 --listen 10.77.1.1:53 --listen 10.77.2.1:53 --threads 1 \
        --xfr-allow 10.77.0.0/16 --tsig-key-file "$work/keys.conf" --update-key upd \
        --journal "$work/primary.journal" --control "$work/control" --soa-timers 2,2,3600 \
        --notify 10.77.1.2:53 --notify 10.77.2.2:53 2>>"$work/primary.log" &
    pid_of[primary]=$!
    track $!
    wait_serving "$work/primary.log" 30 "the primary"
}
start_edge() {
    ip netns exec "${ns[$1]}" "$bin/cnamed" serve --dump "$work/$1.json" --zone "$zone" \
        --listen "${addr[$1]}:53" --threads 1 --primary "${primary_addr[$1]}:53" \
        --tsig-key-file "$work/xfr.conf" --journal "$work/$1.journal" 2>>"$work/$1.log" &
    pid_of[$1]=$!
    track $!
    wait_serving "$work/$1.log" 60 "$1"
}
# The serial NAME serves (asked from inside its host), empty if it does not answer.
serial_of() {
    local name=$1 where=127.0.0.1
    [ "$name" = primary ] || where=${addr[$name]}
    in_ns "${ns[$name]}" dig @"$where" +short +time=1 +tries=1 "$zone" SOA 2>/dev/null \
        | awk '{print $3}' || true
}
# Waits up to $2 s for NAME to serve serial $1; prints the milliseconds it took.
wait_serial() {
    local serial=$1 limit=$2 name=$3 started
    started=$(now_ms)
    until [ "$(serial_of "$name")" = "$serial" ]; do
        [ $(($(now_ms) - started)) -le $((limit * 1000)) ] \
            || fail "$name not at serial $serial within $limit s (serves $(serial_of "$name"))"
        sleep 0.05
    done
    echo $(($(now_ms) - started))
}
acknowledged=0
lost=0
faults=0
# update APP CLUSTER: one UPDATE, acknowledged (NOERROR) or the script fails; the app and
# its cluster go to $work/acked.
update() {
    in_ns "$ns_primary" "$bin/cnamed" update --zone "$zone" --server 127.0.0.1:53 \
        --tsig-key-file "$work/keys.conf" --update-key upd set "$1" "$2" >/dev/null \
        || return 1
    echo "$1 $2" >> "$work/acked"
}
# Every app of $work/acked answers its last cluster on NAME; counts the ones that do not.
check_acked() {
    local name=$1 where=${addr[$1]:-127.0.0.1} missing
    awk '{last[$1] = $2} END {for (app in last) print app, last[app]}' "$work/acked" | sort > "$work/want"
    cut -d' ' -f1 "$work/want" | sed "s/.*/ws-&.$zone. A/" > "$work/queries"
    in_ns "${ns[$name]}" dig @"$where" +tcp +keepopen +noall +answer -f "$work/queries" \
        | awk '$4 == "CNAME" {split($1, n, "."); sub(/^ws-/, "", n[1]); split($5, t, "."); sub(/^ws-/, "", t[1]); print n[1], t[1]}' \
        | sort -u > "$work/got-$name"
    missing=$(comm -23 "$work/want" "$work/got-$name" | wc -l)
    lost=$((lost + missing))
    [ "$missing" = 0 ] || fail "$name: $missing acknowledged changes not served: $(comm -23 "$work/want" "$work/got-$name" | head -3 | tr '\n' ' ')"
    echo "  $name: all $(wc -l < "$work/want") apps changed so far answered as acknowledged" >&2
}
: > "$work/acked"

step "the primary ($apps apps) and two edges, each edge with a journal"
start_primary
for edge in edge1 edge2; do
    echo "not a dump yet" > "$work/$edge.json"
    start_edge "$edge"
done
serial=$(serial_of primary)
for edge in edge1 edge2; do wait_serial "$serial" 30 "$edge" >/dev/null; done
in_ns "$ns_primary" "$bin/cnamed" wait --control "$work/control" --timeout 30 >/dev/null \
    || fail "cnamed wait: the edges are not live at the start"

step "edge1 cut off for 30 s while $changes updates are acknowledged"
cut_at=$(now_ms)
in_ns "$ns_edge1" ip link set "${link[edge1]}" down
faults=$((faults + 1))
for i in $(seq 1 "$changes"); do update "cut-$i" "c$((i % 5))" || fail "update cut-$i not acknowledged"; done
acknowledged=$((acknowledged + changes))
serial=$(serial_of primary)
echo "  edge2 at serial $serial $(wait_serial "$serial" 60 edge2) ms after the last update" >&2
[ "$(serial_of edge1)" != "$serial" ] || fail "edge1 followed through a link that is down"
sleep $((30 - ($(now_ms) - cut_at) / 1000 > 0 ? 30 - ($(now_ms) - cut_at) / 1000 : 0))
in_ns "$ns_edge1" ip link set "${link[edge1]}" up
took=$(wait_serial "$serial" 60 edge1)
echo "  edge1: serial $serial $took ms after its link came back (SOA REFRESH and RETRY 2 s)" >&2
grep -q "IXFR from .*: serial $serial" "$work/edge1.log" || fail "edge1 did not catch up by IXFR"
check_acked edge1
check_acked edge2

step "20% packet loss each way at both edges: $changes updates"
for edge in edge1 edge2; do
    in_ns "${ns[$edge]}" nft add table inet faults
    in_ns "${ns[$edge]}" nft add chain inet faults in '{ type filter hook input priority 0; }'
    in_ns "${ns[$edge]}" nft add chain inet faults out '{ type filter hook output priority 0; }'
    for chain in in out; do
        in_ns "${ns[$edge]}" nft add rule inet faults "$chain" numgen random mod 100 '<' 20 drop
    done
done
faults=$((faults + 1))
started=$(now_ms)
for i in $(seq 1 "$changes"); do update "lossy-$i" "c$((i % 7))" || fail "update lossy-$i not acknowledged"; done
acknowledged=$((acknowledged + changes))
serial=$(serial_of primary)
updated=$(now_ms)
in_ns "$ns_primary" "$bin/cnamed" wait --control "$work/control" --serial "$serial" --timeout 120 \
    || fail "cnamed wait: the edges did not reach serial $serial through 20% loss"
echo "  cnamed wait: both edges live at serial $serial $(($(now_ms) - updated)) ms after the last update ($((updated - started)) ms for the $changes updates)" >&2
# Checked without the loss (dig's retries through it would only slow the check down).
for edge in edge1 edge2; do in_ns "${ns[$edge]}" nft delete table inet faults; done
check_acked edge1
check_acked edge2

step "the primary killed (-9) in the middle of a stream of updates, restarted"
before_edge1=$(serial_of edge1) before_edge2=$(serial_of edge2)
# A stream far longer than the time to the kill: it ends at the first update not answered.
(
    for i in $(seq 1 $((changes * 20))); do update "crash-$i" "c$((i % 3))" || break; done
) &
stream=$!
# Half as many updates in as the other phases, then the crash.
for _ in $(seq 1 3000); do [ "$(grep -c '^crash-' "$work/acked")" -ge $((changes / 2)) ] && break; sleep 0.01; done
kill -9 "${pid_of[primary]}"
wait "${pid_of[primary]}" 2>/dev/null || true
wait "$stream" 2>/dev/null || true
faults=$((faults + 1))
crashed=$(grep -c '^crash-' "$work/acked" || true)
acknowledged=$((acknowledged + crashed))
[ "$crashed" -lt $((changes * 20)) ] || fail "the stream ended before the kill"
echo "  $crashed updates acknowledged before the kill, the stream cut off by it" >&2
start_primary
serial=$(serial_of primary)
in_ns "$ns_primary" "$bin/cnamed" wait --control "$work/control" --serial "$serial" --timeout 60 \
    || fail "cnamed wait: the edges did not reach the restarted primary's serial $serial"
for edge in edge1 edge2; do
    before=before_$edge
    now=$(serial_of "$edge")
    # Serials here are dates (2026120501...), far from wrapping: plain comparison.
    [ "$now" -ge "${!before}" ] || fail "$edge went back from serial ${!before} to $now"
    echo "  $edge: serial ${!before} before the crash, $now after" >&2
done
# The primary serves every acknowledged change too.
awk '{last[$1] = $2} END {for (app in last) print app, last[app]}' "$work/acked" | sort > "$work/want"
cut -d' ' -f1 "$work/want" | sed "s/.*/ws-&.$zone. A/" > "$work/queries"
in_ns "$ns_primary" dig @127.0.0.1 +tcp +keepopen +noall +answer -f "$work/queries" \
    | awk '$4 == "CNAME" {split($1, n, "."); sub(/^ws-/, "", n[1]); split($5, t, "."); sub(/^ws-/, "", t[1]); print n[1], t[1]}' \
    | sort -u > "$work/got-primary"
missing=$(comm -23 "$work/want" "$work/got-primary" | wc -l)
lost=$((lost + missing))
[ "$missing" = 0 ] || fail "the restarted primary lost $missing acknowledged changes"
echo "  primary: restarted at serial $serial with every acknowledged change" >&2
check_acked edge1
check_acked edge2

echo "faults injected: $faults (a link down 30 s, 20% loss each way, kill -9 of the primary); changes acknowledged: $acknowledged; changes lost: $lost" >&2
