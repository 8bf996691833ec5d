#!/usr/bin/env bash
# CNAME-hit queries per second with and without a large overlay (issue 23): two cnamed
# servers with the same 1M apps, one worker each on core 0; one of them takes 99,000 app
# changes by UPDATE first (an overlay just short of a fold). cnamed-load (core 1) sends CNAME
# hits to each in turn, R interleaved rounds of S seconds; prints each round and the medians.
#
#   benches/overlay-load.sh [--rounds R] [--seconds S]
. "$(dirname "$0")/../tests/lib.sh"

rounds=5
seconds=8
parse_flags "[--rounds R] [--seconds S]" rounds seconds -- "$@"
build cnamed cnamed-gen cnamed-load cnamed-update-load
work=$root/target/load
mkdir -p "$work"
apps=1000000
read -r plain changed <<< "$(free_ports 2)"
update_key_file "$work/overlay-keys"
cached_dump "$apps" "$work/apps-$apps.json"
"$bin/cnamed-gen" queries --apps "$apps" --count 1000000 --mix hits > "$work/hits-$apps.txt"
for name in plain changed; do
    port=${!name}
    rm -f "$work/overlay-$name.journal"
    taskset -c 0 "$bin/cnamed" serve --dump "$work/apps-$apps.json" --listen "127.0.0.1:$port" \
        --threads 1 --tsig-key-file "$work/overlay-keys" --update-key upd \
        --journal "$work/overlay-$name.journal" 2>"$work/overlay-$name.log" &
    track $!
    for _ in $(seq 1 300); do grep -q serving "$work/overlay-$name.log" && break; sleep 0.1; done
done
# 99,000 apps of the zone moved (IDs 100000 + 10 i: spread over it).
for first in $(seq 0 500 98500); do
    args=()
    for i in $(seq "$first" $((first + 499))); do args+=("$((100000 + 10 * i))" moved); done
    "$bin/cnamed" update --server "127.0.0.1:$changed" --tsig-key-file "$work/overlay-keys" \
        --update-key upd set "${args[@]}" 2>/dev/null
done
grep -q "folded" "$work/overlay-changed.log" && fail "the overlay was folded"
echo "overlay: $(grep -c 'UPDATE from' "$work/overlay-changed.log") UPDATEs, 99000 apps moved" >&2
qps() {
    taskset -c 1 "$bin/cnamed-load" --server "127.0.0.1:$1" --queries "$work/hits-$apps.txt" \
        --duration "$seconds" --warmup 1 | sed -n 's/.*qps=\([0-9]*\).*/\1/p'
}
for round in $(seq 1 "$rounds"); do
    a=$(qps "$plain")
    b=$(qps "$changed")
    echo "round $round: empty overlay $a q/s, 99k-entry overlay $b q/s, ratio $(echo "scale=3; $b / $a" | bc)"
done | tee "$work/overlay-rounds.txt"
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "median ratio $(awk '{print $NF}' "$work/overlay-rounds.txt" | median), range $(awk '{print $NF}' "$work/overlay-rounds.txt" | sort -n | sed -n '1p;$p' | paste -sd-)"
