#!/usr/bin/env bash
# End to end with updates (issue 24): a cnamed primary at N apps taking UPDATEs (journal,
# control socket, --notify to every edge), three cnamed edges (each with a journal) and a
# Knot secondary, on loopback; `benches/tools/end_to_end.py` sends K single-app UPDATEs, one
# every 100 ms, and reports from each NOERROR until each edge answers the new name (asked
# every 2 ms) and until `cnamed wait --serial` returns: p50/p99/max.
#
#   benches/end-to-end.sh [--apps N] [--updates K] [--knot yes|no]
. "$(dirname "$0")/../tests/lib.sh"

apps=10000000
updates=100
knot=yes
parse_flags "[--apps N] [--updates K] [--knot yes|no]" apps updates knot -- "$@"
need knotd:knot dig:bind9-dnsutils
/usr/bin/python3 -c 'import dns.update' 2>/dev/null || need python3-dnspython-missing:python3-dnspython
build cnamed cnamed-gen
mkdir -p "$root/target/load"
cached_dump "$apps" "$root/target/load/apps-$apps.json"
make_work end-to-end
zone=apps.example.com
read -r primary edge1 edge2 edge3 knot_port <<< "$(free_ports 5)"
update_key_file "$work/key.conf"
secret=$(sed -n 's/.*secret "\(.*\)".*/\1/p' "$work/key.conf")
targets=(--notify "127.0.0.1:$edge1" --notify "127.0.0.1:$edge2" --notify "127.0.0.1:$edge3")
[ "$knot" = yes ] && targets+=(--notify "127.0.0.1:$knot_port")

step "a cnamed primary with $apps apps"
"$bin/cnamed" serve --dump "$root/target/load/apps-$apps.json" --zone "$zone" \
    --listen "127.0.0.1:$primary" --threads 1 --xfr-allow 127.0.0.1 --tsig-key-file "$work/key.conf" \
    --update-key upd --journal "$work/primary.journal" --control "$work/control.sock" \
    "${targets[@]}" 2>"$work/primary.log" &
track $!
wait_serving "$work/primary.log" 300 "the primary"
step "three cnamed edges (AXFR, then IXFR into their journals)"
for port in "$edge1" "$edge2" "$edge3"; do
    echo "not a dump yet" > "$work/edge-$port.json"
    "$bin/cnamed" serve --dump "$work/edge-$port.json" --zone "$zone" --listen "127.0.0.1:$port" \
        --threads 1 --primary "127.0.0.1:$primary" --tsig-key-file "$work/key.conf" \
        --journal "$work/edge-$port.journal" 2>"$work/edge-$port.log" &
    track $!
    wait_serving "$work/edge-$port.log" 300 "edge $port"
done
edges=(--edge "edge1=127.0.0.1:$edge1" --edge "edge2=127.0.0.1:$edge2" --edge "edge3=127.0.0.1:$edge3")
if [ "$knot" = yes ]; then
    step "Knot as a secondary"
    knot_secondary_conf "$work/knot" "$knot_port" "$primary" "$zone" upd "$secret"
    knotd -c "$work/knot/knot.conf" 2>"$work/knot.log" &
    track $!
    serial=$(dig @127.0.0.1 -p "$primary" +short "$zone" SOA | awk '{print $3}')
    for _ in $(seq 1 3000); do
        [ "$(dig @127.0.0.1 -p "$knot_port" +short +time=1 +tries=1 "$zone" SOA 2>/dev/null | awk '{print $3}')" = "$serial" ] && break
        sleep 0.2
    done
    edges+=(--edge "knot=127.0.0.1:$knot_port")
fi
"$bin/cnamed" wait --control "$work/control.sock" --timeout 600 >&2 || fail "the fleet never came up"
sleep 2
step "$updates single-app UPDATEs, one every 100 ms"
/usr/bin/python3 "$root/benches/tools/end_to_end.py" --primary "127.0.0.1:$primary" \
    --key-file "$work/key.conf" --control "$work/control.sock" --cnamed "$bin/cnamed" \
    --count "$updates" --interval 100 "${edges[@]}"
if [ "$knot" = yes ]; then
    # Knot's own time to apply each IXFR ("zone updated, S seconds"): Knot 3.2 walks the
    # whole zone per incremental update (zone_adjust_incremental_update), so it grows with N.
    sed -n 's/.*zone updated, \([0-9.]*\) seconds, serial [0-9]* -> .*/\1/p' "$work/knot.log" |
        sort -n | awk '{v[NR]=$1} END {if (NR) printf "knot applies an IXFR in: median %s s, max %s s over %d\n", v[int((NR+1)/2)], v[NR], NR}'
fi
