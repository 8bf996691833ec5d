#!/usr/bin/env bash
# A secondary's cold start by AXFR beside a dump load of the same mapping (issue 24), same
# run, R interleaved rounds: launch to the "serving" line and RSS after, for
#   dump      `cnamed serve --dump` of the primary's dump (this tree),
#   baseline  the same with the loader of be43cb6 (before the load-speed issue), built once,
#   axfr      `cnamed serve --primary` (the dump file not a dump: the zone comes by AXFR).
# The primary (one worker) serves N apps on 8 clusters, 3 services (3N CNAMEs): numeric IDs,
# or string IDs (`--ids strings`: 8-30 bytes, cnamed-gen's).
#
#   benches/cold-start.sh [--apps N] [--rounds R] [--ids numbers|strings]
#                                                    (default 10M numeric apps, 5 rounds)
. "$(dirname "$0")/../tests/lib.sh"

apps=10000000
rounds=5
ids=numbers
parse_flags "[--apps N] [--rounds R] [--ids numbers|strings]" apps rounds ids -- "$@"
build cnamed cnamed-gen
baseline_dir="$root/target/baseline-be43cb6"
build_at be43cb6 "$baseline_dir" cnamed
make_work cold-start
mkdir -p "$root/target/load"
dump="$root/target/load/apps-$apps.json"
if [ "$ids" = strings ]; then
    dump="$root/target/load/apps-$apps-strings.json"
    [ -s "$dump" ] || "$bin/cnamed-gen" dump --apps "$apps" --clusters 8 --ids strings > "$dump"
else
    cached_dump "$apps" "$dump"
fi
read -r primary_port edge_port <<< "$(free_ports 2)"
"$bin/cnamed" serve --dump "$dump" --listen "127.0.0.1:$primary_port" --threads 1 \
    --xfr-allow 127.0.0.1 2> "$work/primary.log" &
track $!
wait_serving "$work/primary.log" 300 "the primary"

# Launches BINARY with ARGS; prints "milliseconds RSS-kB" once it serves, then stops it.
launch() {
    local binary=$1 started pid rss; shift
    : > "$work/edge.log"
    started=$(date +%s%3N)
    "$binary" serve --listen "127.0.0.1:$edge_port" --threads 1 "$@" 2> "$work/edge.log" &
    pid=$!
    track $pid
    wait_serving "$work/edge.log" 600 "$binary $*"
    local ms=$(($(date +%s%3N) - started))
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    kill $pid; wait $pid 2>/dev/null || true
    echo "$ms $rss"
}
echo "not a dump" > "$work/secondary.json"
declare -A ms rss
for round in $(seq 1 "$rounds"); do
    for kind in dump baseline axfr; do
        case $kind in
            dump) read -r t r <<< "$(launch "$bin/cnamed" --dump "$dump")" ;;
            baseline) read -r t r <<< "$(launch "$baseline_dir/release/cnamed" --dump "$dump")" ;;
            axfr)
                echo "not a dump" > "$work/secondary.json"
                read -r t r <<< "$(launch "$bin/cnamed" --dump "$work/secondary.json" \
                    --primary "127.0.0.1:$primary_port")" ;;
        esac
        ms[$kind]+="$t "; rss[$kind]+="$r "
        echo "round $round $kind: $t ms, RSS $r kB" >&2
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
spread() { tr ' ' '\n' | grep . | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "-" hi}'; }
for kind in dump baseline axfr; do
    printf '%-8s launch to serving median %s ms (%s), RSS median %s kB (%s bytes an app)\n' \
        "$kind" "$(median <<< "${ms[$kind]}")" "$(spread <<< "${ms[$kind]}")" \
        "$(median <<< "${rss[$kind]}")" \
        "$(( $(median <<< "${rss[$kind]}") * 1024 / apps ))"
done
awk -v a="$(median <<< "${ms[axfr]}")" -v b="$(median <<< "${ms[baseline]}")" \
    -v d="$(median <<< "${ms[dump]}")" \
    'BEGIN {printf "axfr / baseline %.2f (goal <= 1.5), axfr / dump %.2f\n", a / b, a / d}'
