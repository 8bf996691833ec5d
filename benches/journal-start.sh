#!/usr/bin/env bash
# A start with a journal (issue 23): a primary of N apps (default 10M) takes C app changes by
# UPDATE (default 100,000: new apps, 500 a message), stops, and starts again with the same
# flags; prints its start-up lines: the dump's load, then the journal's records replayed on it
# and how long that took, and the whole start, launch to serving.
#
#   benches/journal-start.sh [--apps N] [--changes C]
. "$(dirname "$0")/../tests/lib.sh"

apps=10000000
changes=100000
parse_flags "[--apps N] [--changes C]" apps changes -- "$@"
build cnamed cnamed-gen cnamed-update-load
work=$root/target/load
mkdir -p "$work"
read -r port <<< "$(free_ports 1)"
update_key_file "$work/js-keys"
cached_dump "$apps" "$work/apps-$apps.json"
rm -f "$work/js.journal" "$work/js.journal.checkpoint"
start() {
    : > "$work/js.log"
    local began
    began=$(date +%s%N)
    "$bin/cnamed" serve --dump "$work/apps-$apps.json" --listen "127.0.0.1:$port" --threads 1 \
        --tsig-key-file "$work/js-keys" --update-key upd --journal "$work/js.journal" \
        2>>"$work/js.log" &
    pid=$!
    track "$pid"
    wait_serving "$work/js.log" 30 cnamed
    echo "  launch to serving: $(( ($(date +%s%N) - began) / 1000000 )) ms"
}
start
"$bin/cnamed-update-load" --server "127.0.0.1:$port" --keys "$work/js-keys" \
    --count $((changes / 500)) --rate 0 --batch 500 --pipeline 4 --first 6000000000
kill "$pid"
wait "$pid" 2>/dev/null || true
echo "restart, $apps apps, journal of $(stat -c %s "$work/js.journal") bytes:"
start
grep -E "loaded|journal" "$work/js.log" | sed 's/^/  /'
kill "$pid"
wait "$pid" 2>/dev/null || true
