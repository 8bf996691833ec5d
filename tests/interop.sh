#!/usr/bin/env bash
# Interop with the real servers: Knot, NSD and BIND 9 from the distribution's packages, each
# configured as a secondary of cnamed on loopback, must load the zone by AXFR, answer exactly
# as cnamed does, and follow a change through NOTIFY and IXFR.
#
#   tests/interop.sh [--apps N]     (run as root; .ci/run runs it)
#
# Starts cnamed with N apps (default 100k), --xfr-allow 127.0.0.1, a TSIG key (tsig-keygen
# makes it: transfers, SOA queries and NOTIFYs are signed) and --notify for each secondary,
# then knotd, nsd and named on free loopback ports with configurations in a temp directory
# (nothing listens elsewhere, nothing is sent elsewhere: BIND has recursion off and its query,
# transfer and notify sources pinned to 127.0.0.1). For each secondary:
#   1. its serial matches, its own AXFR has as many records as cnamed's, and 1,000 names
#      (hits, misses, the apex) get the same answers from it as from cnamed (dig);
#   2. after a reload that moves 1% of the apps, adds 1% and removes 1%, it serves the new
#      serial (how soon is reported), by IXFR (cnamed's log and metrics), and the changed names and the
#      sample answer as cnamed does; `cnamed wait` (cnamed's fleet view of its --notify
#      targets) returns once all three serve it;
#   3. `cnamed fetch` (the AXFR client) takes the zone back from it, checking its TSIG
#      signatures, and gets the dump's mapping;
# then UPDATEs (`cnamed update`, a second key) add, move and remove apps on cnamed, and each
# secondary follows them by IXFR (`cnamed wait` sees each catch up) and answers as cnamed
# does; then a wrong key gets NOTAUTH
# (BADSIG) and an address outside --xfr-allow REFUSED, and cnamed keeps serving. Removes
# everything at the end.
. "$(dirname "$0")/../tests/lib.sh"

apps=100000
parse_flags "[--apps N]" apps -- "$@"
need knotd:knot nsd:nsd named:bind9 dig:bind9-dnsutils
build cnamed cnamed-gen
make_work interop
zone=apps.example.com

read -r primary knot_port nsd_port bind_port <<< "$(free_ports 4)"

step "cnamed with $apps apps, a TSIG key from tsig-keygen, NOTIFY to three secondaries"
tsig-keygen -a hmac-sha256 xfr-key > "$work/xfr-key.conf"
secret=$(sed -n 's/.*secret "\(.*\)";/\1/p' "$work/xfr-key.conf")
# cnamed's file also holds the key that may UPDATE (the secondaries know only xfr-key).
cp "$work/xfr-key.conf" "$work/cnamed-keys.conf"
tsig-keygen -a hmac-sha256 upd >> "$work/cnamed-keys.conf"
"$bin/cnamed-gen" dump --apps "$apps" --clusters 8 > "$work/apps.json"
"$bin/cnamed" serve --dump "$work/apps.json" --zone "$zone" --listen "127.0.0.1:$primary" --threads 2 \
    --xfr-allow 127.0.0.1 --tsig-key-file "$work/cnamed-keys.conf" --metrics 127.0.0.1:0 \
    --update-key upd --journal "$work/journal" --control "$work/control" \
    --notify "127.0.0.1:$knot_port" --notify "127.0.0.1:$nsd_port" --notify "127.0.0.1:$bind_port" \
    2>"$work/cnamed.log" &
cnamed_pid=$!
track "$cnamed_pid"
for _ in $(seq 1 100); do grep -q "metrics on" "$work/cnamed.log" && break; sleep 0.1; done
metrics=$(sed -n 's,.*metrics on http://\([0-9.:]*\)/.*,\1,p' "$work/cnamed.log" | head -1)
[ -n "$primary" ] && [ -n "$metrics" ] || fail "cnamed did not start"
key="hmac-sha256:xfr-key:$secret"
serial=$(dig @127.0.0.1 -p "$primary" +short "$zone" SOA | awk '{print $3}')
records=$(dig @127.0.0.1 -p "$primary" -y "$key" "$zone" AXFR \
    | sed -n 's/.*XFR size: \([0-9]*\) records.*/\1/p')
[ "$records" -eq $((apps * 3 + 3)) ] || fail "cnamed's AXFR has $records records"

step "Knot as a secondary"
knot_secondary_conf "$work/knot" "$knot_port" "$primary" "$zone" xfr-key "$secret"
knotd -c "$work/knot/knot.conf" 2>"$work/knot.log" &
track $!

step "NSD as a secondary"
mkdir -p "$work/nsd"
cat > "$work/nsd/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1
    port: $nsd_port
    username: ""
    chroot: ""
    zonesdir: "$work/nsd"
    database: ""
    pidfile: "$work/nsd/nsd.pid"
    xfrdfile: "$work/nsd/xfrd.state"
    zonelistfile: "$work/nsd/zone.list"
    xfrdir: "$work/nsd"
    verbosity: 2
remote-control:
    control-enable: no
key:
    name: xfr-key
    algorithm: hmac-sha256
    secret: "$secret"
zone:
    name: $zone
    zonefile: "$zone.zone"
    request-xfr: 127.0.0.1@$primary xfr-key
    allow-notify: 127.0.0.1 xfr-key
    provide-xfr: 127.0.0.1 NOKEY
    provide-xfr: 127.0.0.1 xfr-key
CONF
nsd -d -c "$work/nsd/nsd.conf" 2>"$work/nsd.log" &
track $!

step "BIND 9 as a secondary"
mkdir -p "$work/bind"
cat > "$work/bind/named.conf" <<CONF
options {
    directory "$work/bind";
    pid-file "$work/bind/named.pid";
    listen-on port $bind_port { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    query-source address 127.0.0.1;
    transfer-source 127.0.0.1;
    notify explicit;
    dnssec-validation no;
    allow-transfer { 127.0.0.1; };
};
controls { };
$(cat "$work/xfr-key.conf")
zone "$zone" {
    type secondary;
    primaries { 127.0.0.1 port $primary key xfr-key; };
    file "$work/bind/$zone.db";
};
CONF
named -g -4 -u root -c "$work/bind/named.conf" 2>"$work/bind.log" &
track $!

# check NAME PORT: the secondary serves cnamed's serial, the same number of records, and the
# same answers for a sample of names.
"$bin/cnamed-gen" queries --apps "$apps" --count 1000 --mix mixed --seed 7 \
    | awk '{print $1, $2}' > "$work/sample"
printf '%s SOA\n%s NS\n' "$zone" "$zone" >> "$work/sample"
# Over TCP, one connection for all (+keepopen: a connection per name would leave thousands
# in TIME-WAIT and run out of ports): what is checked here are the answers; UDP has its own
# tests (a batch over UDP once got a stray packet dig warned about, "query response not set",
# under investigation). The answer records (TTL aside: a secondary counts it down) sorted,
# then each name's RCODE and AA flag in order.
answers() {
    dig @127.0.0.1 -p "$1" +tcp +keepopen +noall +answer +comments +nocmd -f "$work/sample" \
        > "$work/raw-$1"
    grep -v -e '^;' -e '^$' "$work/raw-$1" | awk '{$2 = ""; print tolower($0)}' | sort
    grep -E -o 'status: [A-Z]+|flags: [a-z ]+;|no servers could be reached' "$work/raw-$1" \
        | tr '\n' ' ' | sed 's/status/\nstatus/g'
}
answers "$primary" > "$work/want"
[ "$(grep -c NXDOMAIN "$work/want")" -gt 10 ] && [ "$(grep -c ' cname ' "$work/want")" -gt 500 ] \
    || fail "the sample needs hits and misses"
# The serial NAME's secondary on PORT serves.
serial_of() {
    dig @127.0.0.1 -p "$1" +short +time=1 +tries=1 "$zone" SOA 2>/dev/null | awk '{print $3}'
}
check() {
    local name=$1 port=$2 got=""
    for _ in $(seq 1 300); do
        got=$(serial_of "$port")
        [ "$got" = "$serial" ] && break
        sleep 0.2
    done
    [ "$got" = "$serial" ] || fail "$name serves serial '$got', not $serial"
    local count
    count=$(dig @127.0.0.1 -p "$port" "$zone" AXFR | sed -n 's/.*XFR size: \([0-9]*\) records.*/\1/p')
    [ "$count" = "$records" ] || fail "$name has $count records, cnamed $records"
    answers "$port" > "$work/got-$name"
    diff -q "$work/want" "$work/got-$name" >/dev/null \
        || fail "$name answers differently: $(diff "$work/want" "$work/got-$name" | head -4)"
    echo "$name: serial $serial, $count records, $(grep -c '^status' "$work/want") sampled names answered identically" >&2
}
check knot "$knot_port"
check nsd "$nsd_port"
check bind "$bind_port"

step "a reload moving 1% of the apps, adding 1% and removing 1%: NOTIFY, IXFR, cnamed wait"
old_serial=$serial
# 1% of the apps each: moved, removed and added ("new0"...); every tenth changed name kept.
changed=$((apps / 100 > 0 ? apps / 100 : 1))
"$bin/cnamed-gen" change --dump "$work/apps.json" --move "$changed" --remove "$changed" \
    --add "$changed" --prefix new --names "$work/changes" --every 10 --services ws,sockjs,api
serial=$((old_serial + 1))
cat "$work/changes" >> "$work/sample"
kill -HUP "$cnamed_pid"
# The reload may wait up to 5 s for idle CPU on a busy box: the clock starts once it is done.
for _ in $(seq 1 600); do grep -q "serial $serial" "$work/cnamed.log" && break; sleep 0.05; done
grep -q "serial $serial" "$work/cnamed.log" || fail "cnamed did not reload to serial $serial"
reloaded_at=$(date +%s%3N)
grep "reloaded" "$work/cnamed.log" | tail -1 >&2
declare -A ports=([knot]=$knot_port [nsd]=$nsd_port [bind]=$bind_port)
# follow SINCE_MS WHAT: waits until every secondary serves $serial and says how long after
# SINCE_MS (the time of WHAT) each did. A property, not a speed: the times are reported
# (milliseconds when idle); the bound only ends a run whose secondaries never follow.
follow() {
    local since=$1 what=$2 elapsed name still pending=(knot nsd bind)
    declare -A caught_up
    while [ ${#pending[@]} -gt 0 ]; do
        elapsed=$(($(date +%s%3N) - since))
        [ "$elapsed" -le 60000 ] || fail "${pending[*]} not at serial $serial within 60 s"
        still=()
        for name in "${pending[@]}"; do
            if [ "$(serial_of "${ports[$name]}")" = "$serial" ]; then
                caught_up[$name]=$elapsed
            else
                still+=("$name")
            fi
        done
        pending=("${still[@]}")
        sleep 0.05
    done
    for name in knot nsd bind; do
        echo "$name: serial $serial served ${caught_up[$name]} ms after $what" >&2
    done
}
# wait_live WHAT: `cnamed wait` on the primary's control socket returns once its fleet
# view (SOA polls after each NOTIFY, IXFR requests) has Knot, NSD and BIND at $serial.
wait_live() {
    local started=$(date +%s%3N)
    "$bin/cnamed" wait --control "$work/control" --serial "$serial" --timeout 60 \
        || fail "cnamed wait: not every --notify target live at serial $serial"
    echo "cnamed wait: Knot, NSD and BIND live at serial $serial, returned $(($(date +%s%3N) - started)) ms after $1" >&2
    "$bin/cnamed" status --control "$work/control" | grep "notify_targets" | sed 's/^/  /' >&2
}
wait_live "the reload"
follow "$reloaded_at" "the reload"
answers "$primary" > "$work/want"
incremental=$(grep -c "IXFR from $old_serial (incremental)" "$work/cnamed.log" || true)
grep "IXFR from $old_serial" "$work/cnamed.log" | sed 's/^/  /' >&2
[ "$incremental" -ge 3 ] || fail "only $incremental incremental IXFRs from serial $old_serial"
records=$(dig @127.0.0.1 -p "$primary" -y "$key" "$zone" AXFR \
    | sed -n 's/.*XFR size: \([0-9]*\) records.*/\1/p')
check knot "$knot_port"
check nsd "$nsd_port"
check bind "$bind_port"
curl -s "http://$metrics/metrics" | grep -E '^cnamed_(xfr_bytes|xfr_transfers|ixfr_answers|notifies)_total' \
    | grep -v ' 0$' | sed 's/^/  /' >&2

step "cnamed fetch takes the zone back from each secondary, their TSIG signatures checked"
for name in knot nsd bind; do
    "$bin/cnamed" fetch --zone "$zone" --primary "127.0.0.1:${ports[$name]}" \
        --tsig-key-file "$work/xfr-key.conf" > "$work/fetched-$name.json" 2>"$work/fetch-$name.log" \
        || fail "fetch from $name: $(cat "$work/fetch-$name.log")"
    same=$("$bin/cnamed-gen" same-apps "$work/apps.json" "$work/fetched-$name.json" 2>&1) \
        || fail "fetch from $name: the mapping differs: $same"
    echo "$name: fetched by cnamed (TSIG checked), $(grep -c '": "' "$work/fetched-$name.json") apps, the dump's mapping" >&2
done

step "UPDATEs: Knot, NSD and BIND follow each by IXFR, and cnamed wait sees it"
old_serial=$serial
update() {
    "$bin/cnamed" update --zone "$zone" --server "127.0.0.1:$primary" \
        --tsig-key-file "$work/cnamed-keys.conf" --update-key upd "$@" \
        || fail "cnamed update $*"
}
# Three new apps, one moved, one removed: three UPDATEs, three serials.
update set upd-1 upd1 upd-2 upd1 upd-3 upd2
moved=$(sed -n '2s/^"\([^"]*\)".*/\1/p' "$work/apps.json")
[ -n "$moved" ] || fail "no app to move in the dump"
update set "$moved" upd2
update delete upd-2
serial=$((old_serial + 3))
[ "$(serial_of "$primary")" = "$serial" ] || fail "cnamed serves $(serial_of "$primary"), not $serial"
for app in upd-1 upd-2 upd-3 "$moved"; do
    for service in ws sockjs api; do echo "$service-$app.$zone CNAME"; done
done >> "$work/sample"
updated_at=$(date +%s%3N)
wait_live "the last UPDATE"
follow "$updated_at" "the last UPDATE"
grep -E "UPDATE from|serial $serial," "$work/cnamed.log" | tail -8 | sed 's/^/  /' >&2
incremental=$(grep -c "(incremental) to .*: serial $serial," "$work/cnamed.log" || true)
[ "$incremental" -ge 3 ] || fail "only $incremental incremental IXFRs to serial $serial"
if grep -A1000 "serial $((old_serial + 1))" "$work/cnamed.log" | grep -q "^cnamed: info: AXFR to"; then
    fail "a secondary needed an AXFR after the UPDATEs"
fi
answers "$primary" > "$work/want"
grep -q "ws-upd-1.$zone.* ws-upd1.example.com." "$work/want" || fail "cnamed does not answer upd-1"
records=$(dig @127.0.0.1 -p "$primary" -y "$key" "$zone" AXFR \
    | sed -n 's/.*XFR size: \([0-9]*\) records.*/\1/p')
check knot "$knot_port"
check nsd "$nsd_port"
check bind "$bind_port"

step "a wrong key and an address outside --xfr-allow get nothing"
out=$(kdig @127.0.0.1 -p "$primary" -y "hmac-sha256:xfr-key:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" "$zone" AXFR 2>&1 || true)
echo "$out" | grep -q BADSIG || fail "a wrong key: $out"
[ "$(echo "$out" | grep -c 'IN.CNAME')" = 0 ] || fail "a wrong key got records"
out=$(kdig @127.0.0.1 -p "$primary" -y "hmac-sha256:xfr-key:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" "$zone" IXFR=$old_serial 2>&1 || true)
echo "$out" | grep -q BADSIG || fail "a wrong key (IXFR): $out"
out=$(dig @127.0.0.1 -p "$primary" -b 127.0.0.2 -y "$key" "$zone" AXFR 2>&1 || true)
echo "$out" | grep -q "Transfer failed" || fail "outside --xfr-allow: $out"
out=$(dig @127.0.0.1 -p "$primary" -b 127.0.0.2 +tcp -y "$key" "$zone" AXFR +noall +comments 2>&1 || true)
echo "$out" | grep -q "status: REFUSED" || fail "outside --xfr-allow: $out"
[ "$(serial_of "$primary")" = "$serial" ] || fail "cnamed stopped serving"
echo "interop.sh: ok" >&2
