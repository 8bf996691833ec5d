#!/usr/bin/env bash
# A fold at scale (issue 23): a primary with N apps (default 100M) takes as many app changes
# as start a fold (the larger of 100,000 and sqrt(2 * apps * 16384), apps counting the new
# ones: 1.83M at 100M apps)
# by UPDATE as fast as it answers (500 per message), so that the overlay is folded into new
# tables; UDP queries (cnamed-load, 1 s windows) run from before the changes until after
# the fold. Prints the fold's time from the log, RSS steady and peak (VmHWM), and each
# window's q/s and p99. cnamed on core 0 (one worker; the fold shares it), clients on core 1.
#
#   benches/fold.sh [--apps N]
. "$(dirname "$0")/../tests/lib.sh"

apps=100000000
parse_flags "[--apps N]" apps -- "$@"
build cnamed cnamed-gen cnamed-load cnamed-update-load
# Messages of 500 new apps past the fold threshold (snapshot::fold_at), which grows with
# the zone they join: m new apps start a fold once m >= sqrt(2 * 16384 * (n + m)).
messages=$(awk -v n="$apps" 'BEGIN { k = 2 * 16384; f = (k + sqrt(k * k + 4 * k * n)) / 2;
    if (f < 100000) f = 100000; print int(f / 500) + 10 }')
work=$root/target/load
mkdir -p "$work"
read -r port <<< "$(free_ports 1)"
update_key_file "$work/fold-keys"
cached_dump "$apps" "$work/apps-$apps.json"
[ -s "$work/queries-$apps.txt" ] \
    || "$bin/cnamed-gen" queries --apps "$apps" --count 1000000 --mix mixed > "$work/queries-$apps.txt"
rm -f "$work/fold.journal"
taskset -c 0 "$bin/cnamed" serve --dump "$work/apps-$apps.json" --listen "127.0.0.1:$port" \
    --threads 1 --tsig-key-file "$work/fold-keys" --update-key upd --journal "$work/fold.journal" \
    2>"$work/fold.log" &
pid=$!
track "$pid"
wait_serving "$work/fold.log" 300 cnamed
sleep 2
steady=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
window() {
    taskset -c 1 "$bin/cnamed-load" --server "127.0.0.1:$port" --queries "$work/queries-$apps.txt" \
        --duration 1 | sed -n 's/.*qps=\([0-9]*\).*p99_us=\([0-9]*\).*/q\/s \1, p99 \2 us/p'
}
echo "before: $(window)"
taskset -c 1 "$bin/cnamed-update-load" --server "127.0.0.1:$port" --keys "$work/fold-keys" \
    --count "$messages" --rate 0 --batch 500 --pipeline 4 --first 5000000000
for second in $(seq 1 600); do
    echo "second $second: $(window)"
    grep -q folded "$work/fold.log" && break
done
echo "after: $(window)"
grep folded "$work/fold.log" || echo "no fold finished within 600 s"
echo "RSS steady $steady KiB, now $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") KiB, peak $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") KiB"
