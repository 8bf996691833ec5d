#!/usr/bin/env bash
# A cnamed secondary following UPDATEs at scale (issue 23): a primary with a journal and a
# cnamed secondary (--primary) at N apps; `cnamed update` changes 1 app, then 1,000 apps in
# one UPDATE; for each, the secondary's own log line (IXFR bytes, time to build the snapshot:
# the overlay) and its RSS steady and at peak around the apply (VmHWM, reset before each).
# The secondary starts by AXFR, or (`--from dump`) from a copy of the primary's dump, as a
# secondary restarted while its primary is away does from the dump it wrote (a fast cold
# start by AXFR at 100M apps is the fleet issue's work). With `--journal yes` the secondary
# keeps a journal (--journal) instead of writing its whole dump after each change; either
# way, the bytes it wrote to storage for each change (/proc/PID/io write_bytes, its dump
# writer given time to run).
#
#   benches/update-secondary.sh [--apps N] [--from axfr|dump] [--journal yes|no]
. "$(dirname "$0")/../tests/lib.sh"

apps=10000000
from=axfr
journal=no
parse_flags "[--apps N] [--from axfr|dump] [--journal yes|no]" apps from journal -- "$@"
build cnamed cnamed-gen
work=$root/target/load
mkdir -p "$work"
read -r primary secondary <<< "$(free_ports 2)"
update_key_file "$work/update-keys"
cached_dump "$apps" "$work/apps-$apps.json"
rm -f "$work/secondary.journal" "$work/us-secondary.journal" "$work/us-secondary.journal.checkpoint"
secondary_journal=()
[ "$journal" = yes ] && secondary_journal=(--journal "$work/us-secondary.journal")
: > "$work/us-primary.log"
: > "$work/us-secondary.log"
start_primary() {
    "$bin/cnamed" serve --dump "$work/apps-$apps.json" --listen "127.0.0.1:$primary" --threads 1 \
        --tsig-key-file "$work/update-keys" --update-key upd --journal "$work/secondary.journal" \
        --xfr-allow 127.0.0.1 --notify "127.0.0.1:$secondary" 2>>"$work/us-primary.log" &
    track $!
    wait_serving "$work/us-primary.log" 120 "the primary"
}
start_secondary() {
    "$bin/cnamed" serve --dump "$work/us-secondary.json" --listen "127.0.0.1:$secondary" --threads 1 \
        --primary "127.0.0.1:$primary" --tsig-key-file "$work/update-keys" "${secondary_journal[@]}" \
        2>>"$work/us-secondary.log" &
    pid=$!
    track "$pid"
    wait_serving "$work/us-secondary.log" 900 "the secondary"
}
if [ "$from" = dump ]; then
    # A restart while the primary is away: the secondary serves its dump, and the primary's
    # NOTIFY at start finds it current (same serial).
    cp "$work/apps-$apps.json" "$work/us-secondary.json"
    start_secondary
    start_primary
else
    echo "not a dump yet" > "$work/us-secondary.json"
    start_primary
    start_secondary
fi
sleep 5   # its dump written, memory settled
soa() { dig @127.0.0.1 -p "$1" +short +time=1 +tries=1 apps.example.com SOA | awk '{print $3}'; }
status_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }
seen=0
for batch in 1 1000; do
    steady=$(status_kib VmRSS)
    written=$(awk '$1 == "write_bytes:" {print $2}' "/proc/$pid/io")
    echo 5 > "/proc/$pid/clear_refs"   # VmHWM from here
    # At most 500 apps fit one UPDATE: 1,000 go in two, back to back (one IXFR, or two).
    for first in $(seq 1 500 "$batch"); do
        apps_args=()
        for i in $(seq "$first" $((first + 499 < batch ? first + 499 : batch))); do
            apps_args+=("$((900000000 + batch * 1000 + i))" mt9)
        done
        "$bin/cnamed" update --server "127.0.0.1:$primary" --tsig-key-file "$work/update-keys" \
            --update-key upd set "${apps_args[@]}"
    done
    serial=$(soa "$primary")
    for _ in $(seq 1 500); do [ "$(soa "$secondary")" = "$serial" ] && break; sleep 0.01; done
    [ "$(soa "$secondary")" = "$serial" ] || fail "the secondary is not at $serial"
    grep "IXFR from .*: serial" "$work/us-secondary.log" | tail -n +$((seen + 1)) \
        | sed "s/^cnamed: info: /$apps apps, $batch app(s) changed: /"
    seen=$(grep -c "IXFR from .*: serial" "$work/us-secondary.log")
    echo "  RSS steady $steady KiB, after $(status_kib VmRSS) KiB, peak during the apply $(status_kib VmHWM) KiB"
    sleep 8   # the dump writer's interval and its write, when it writes
    written=$(( $(awk '$1 == "write_bytes:" {print $2}' "/proc/$pid/io") - written ))
    echo "  written to storage by the secondary: $written bytes, $((written / batch)) per changed app (--journal $journal)"
done
