#!/usr/bin/env bash
# UPDATE latency and throughput against the size of the zone (issue 23): a cnamed primary
# with a journal (in target/load, on the same disk as the bare fsync measured beside it).
#
#   benches/update.sh [--sizes "1000000 10000000"] [--count N] [--rounds R] [--ids numeric|named]
#
# The zone's apps are numeric; the UPDATEs add numeric apps too (`--ids named`: string IDs
# `u{N}` beside them, whose overlay entries are larger). For each size: one app per UPDATE at 100 UPDATEs/s over TCP (N of them, default 1000): the
# round trip from send to NOERROR (fsync included) p50/p99; then batches of 500 apps per
# UPDATE, 4 in flight, 200 messages: app changes per second. Then UDP queries (cnamed-load,
# CNAME hits and misses, 10 s) quiet and while 40 UPDATEs of 500 apps a second arrive (20,000
# app changes/s, two folds of the overlay on the way): q/s, their ratio, p99, the folds' times
# and the peak RSS. cnamed has one worker pinned to core 0, the clients run on core 1. First,
# 4 KB append + fdatasync in the same directory: the floor of any durable commit.
. "$(dirname "$0")/../tests/lib.sh"

sizes="1000000 10000000"
count=1000
rounds=1
ids=numeric
parse_flags '[--sizes "N ..."] [--count N] [--rounds R] [--ids numeric|named]' sizes count rounds ids -- "$@"
named=()
[ "$ids" = named ] && named=(--named)
work=$root/target/load
mkdir -p "$work"
build cnamed cnamed-gen cnamed-update-load
read -r port <<< "$(free_ports 1)"
update_key_file "$work/update-keys"

"$bin/cnamed-update-load" --fsync "$work/fsync-probe" --count "$count"
for apps in $sizes; do
    cached_dump "$apps" "$work/apps-$apps.json"
    rm -f "$work/update.journal"
    : > "$work/update.log"
    [ -s "$work/queries-$apps.txt" ] \
        || "$bin/cnamed-gen" queries --apps "$apps" --count 1000000 --mix mixed > "$work/queries-$apps.txt"
    taskset -c 0 "$bin/cnamed" serve --dump "$work/apps-$apps.json" --listen "127.0.0.1:$port" --threads 1 \
        --tsig-key-file "$work/update-keys" --update-key upd --journal "$work/update.journal" \
        2>>"$work/update.log" &
    pid=$!
    track "$pid"
    wait_serving "$work/update.log" 120 cnamed
    echo "== $apps apps" >&2
    "$bin/cnamed-update-load" --server "127.0.0.1:$port" --keys "$work/update-keys" "${named[@]}" \
        --count "$count" --rate 100 --batch 1 --first 1000000000
    "$bin/cnamed-update-load" --server "127.0.0.1:$port" --keys "$work/update-keys" "${named[@]}" \
        --count 200 --rate 0 --batch 500 --pipeline 4 --first 2000000000
    # CPU time in ns: the whole process (every thread, including those gone), the worker.
    cpu_split() {
        local ticks worker
        ticks=$(awk '{print $14 + $15}' "/proc/$1/stat")
        for task in /proc/"$1"/task/*; do
            [ "$(cat "$task/comm")" = cnamed-worker-0 ] && worker=$(awk '{print $1}' "$task/schedstat")
        done
        echo "$(( ticks * 1000000000 / $(getconf CLK_TCK) )) $worker"
    }
    load() {
        taskset -c 1 "$bin/cnamed-load" --server "127.0.0.1:$port" --queries "$work/queries-$apps.txt" \
            --duration 10 --warmup 1
    }
    qps() { sed -n 's/.*qps=\([0-9.]*\).*/\1/p' <<<"$1"; }
    # R rounds of quiet, then busy (each busy window adds 220,000 apps to the zone).
    ratios=()
    for round in $(seq 1 "$rounds"); do
        quiet=$(load)
        echo "  round $round, queries, quiet:        $quiet"
        taskset -c 1 "$bin/cnamed-update-load" --server "127.0.0.1:$port" --keys "$work/update-keys" "${named[@]}" \
            --count 440 --rate 40 --batch 500 --pipeline 4 --first $((3000000000 + round * 1000000)) \
            > "$work/update-during.txt" &
        writer=$!
        sleep 0.5
        cpu_before=$(cpu_split "$pid")
        busy=$(load)
        cpu_after=$(cpu_split "$pid")
        wait "$writer"
        echo "  round $round, queries, with UPDATEs: $busy"
        echo "  UPDATEs meanwhile: $(cat "$work/update-during.txt")"
        read -r total0 worker0 <<< "$cpu_before"
        read -r total1 worker1 <<< "$cpu_after"
        echo "  CPU of core 0 over the window: worker $(( (worker1 - worker0) / 1000000 )) ms," \
            "the rest of cnamed (commits, folds) $(( (total1 - total0 - worker1 + worker0) / 1000000 )) ms"
        ratios+=("$(echo "scale=3; $(qps "$busy") / $(qps "$quiet")" | bc)")
    done
    sorted=($(printf '%s\n' "${ratios[@]}" | sort -n))
    echo "  q/s with UPDATEs / quiet: ${ratios[*]}; median ${sorted[$(( (${#sorted[@]} - 1) / 2 ))]}, range ${sorted[0]}-${sorted[-1]}"
    grep -E "folded" "$work/update.log" | sed 's/^/  /' || true
    echo "  RSS $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") KiB, peak $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") KiB, journal $(stat -c %s "$work/update.journal") bytes"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
