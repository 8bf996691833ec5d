#!/usr/bin/env bash
# Instructions per UDP query of the whole server (socket batch, pipeline, answer, counters),
# counted by callgrind, for this tree and a baseline commit, in the same run: instruction
# counts repeat to the instruction whatever else the machine does, where queries per second
# move by several percent.
#
#   benches/server-callgrind.sh [--baseline REF] [--apps N] [--flags "CNAMED FLAGS"]
#                               [--variant-flags "MORE FLAGS"]
#
# With --variant-flags, no baseline is built: this tree with --flags is compared with this
# tree with --flags and the variant's (e.g. "--dnstap /tmp/none.sock --dnstap-sample 100").
#
# Each binary serves N apps (default 100k) from one worker under callgrind while cnamed-load
# sends the mixed query file for 3 s, then for 9 s; instructions per query is the difference
# of the two runs' totals over the difference of their answered queries (start-up cancels).
# Loopback only.
. "$(dirname "$0")/../tests/lib.sh"

baseline=be43cb6
apps=100000
flags=
variant_flags=
parse_flags "[--baseline REF] [--apps N] [--flags \"CNAMED FLAGS\"] [--variant-flags \"MORE FLAGS\"]" \
    baseline apps flags variant-flags -- "$@"
read -ra cnamed_flags <<< "$flags"
read -ra more_flags <<< "$variant_flags"
need valgrind:valgrind callgrind_annotate:valgrind
build cnamed cnamed-gen cnamed-load

# Kept between runs: generated data and the baseline's build are reused.
work=$root/target/load
mkdir -p "$work"
dump=$work/apps-$apps.json
queries=$work/queries-$apps.txt
cached_dump "$apps" "$dump"
[ -s "$queries" ] || "$bin/cnamed-gen" queries --apps "$apps" --count 1000000 --mix mixed > "$queries"

baseline_bin=$work/callgrind-$baseline/release/cnamed
[ -n "$variant_flags" ] || build_at "$baseline" "$work/callgrind-$baseline" cnamed
port=$(free_ports 1)

# run BINARY SECONDS [MORE FLAGS]: "instructions answered" of one server life under callgrind.
run() {
    local out=$work/callgrind.out log=$work/callgrind.log line pid binary=$1 seconds=$2
    shift 2
    valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" serve --dump "$dump" \
        --listen "127.0.0.1:$port" --threads 1 "${cnamed_flags[@]}" "$@" 2>"$log" &
    pid=$!
    track "$pid"
    for _ in $(seq 1 600); do grep -q serving "$log" && break; sleep 0.1; done
    grep -q serving "$log" || fail "the server did not start: $(tail -3 "$log")"
    line=$("$bin/cnamed-load" --server "127.0.0.1:$port" --queries "$queries" --duration "$seconds" \
        --warmup 0 --sockets 2 --window 8 --timeout-ms 2000)
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    echo "$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}') \
$(sed -n 's/.* answered=\([0-9]*\) .*/\1/p' <<< " $line")"
}

names=(baseline current)
[ -z "$variant_flags" ] || names=(current variant)
for name in "${names[@]}"; do
    binary=$bin/cnamed
    [ "$name" = baseline ] && binary=$baseline_bin
    extra=()
    [ "$name" = variant ] && extra=("${more_flags[@]}")
    read -r short_total short_answered <<< "$(run "$binary" 3 "${extra[@]}")"
    read -r long_total long_answered <<< "$(run "$binary" 9 "${extra[@]}")"
    [ -n "${short_answered:-}" ] && [ -n "${long_answered:-}" ] \
        && [ "$long_answered" -gt "$short_answered" ] || fail "$name: no queries answered"
    per_query=$(( (long_total - short_total) / (long_answered - short_answered) ))
    shown="${flags:-default flags}"
    [ "$name" = variant ] && shown="$shown $variant_flags"
    echo "$name: $per_query instructions per query ($shown)"
done
