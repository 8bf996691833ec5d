#!/usr/bin/env bash
# The Debian package, for real: builds it with `cargo deb`, installs it on this machine, runs
# the installed binary with the installed defaults as the unit would, checks the installed
# unit with systemd-analyze, and purges it again.
#
#   tests/package.sh     (run as root on Debian 12; .ci/run runs it)
#
# Refuses to run where a cnamed package is already installed: it would remove it.
. "$(dirname "$0")/../tests/lib.sh"
parse_flags "" -- "$@"

if dpkg -s cnamed >/dev/null 2>&1; then
    fail "a cnamed package is installed here already; not touching it"
fi
need systemd-analyze:systemd man:man-db dig:bind9-dnsutils adduser:adduser
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0

step "cargo deb"
deb=$(cargo deb --locked 2>/dev/null | tail -1)
[ -f "$deb" ] || fail "no package built"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

on_exit 'dpkg -s cnamed >/dev/null 2>&1 && dpkg --purge cnamed >/dev/null 2>&1'

step "install $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$deb" >/dev/null \
    || dpkg -i "$deb"
dpkg -s cnamed | grep -q '^Status: install ok installed' || fail "not installed"

step "the installed binary, defaults and files"
[ "$(/usr/bin/cnamed --version)" = "cnamed $version" ] || fail "--version"
getent passwd cnamed >/dev/null || fail "no cnamed user"
getent group cnamed >/dev/null || fail "no cnamed group"
[ "$(stat -c '%U:%G %a' /var/lib/cnamed)" = "cnamed:cnamed 2770" ] \
    || fail "/var/lib/cnamed is $(stat -c '%U:%G %a' /var/lib/cnamed)"
dpkg-query -W -f='${Conffiles}\n' cnamed | grep -q /etc/default/cnamed || fail "not a conffile"
man -w cnamed >/dev/null || fail "no man page"
# shellcheck disable=SC1091
. /etc/default/cnamed
as_cnamed=(setpriv --reuid=cnamed --regid=cnamed --init-groups)
# shellcheck disable=SC2086
out=$("${as_cnamed[@]}" /usr/bin/cnamed check $CNAMED_OPTS) || fail "check: $out"
[ "$out" = "/var/lib/cnamed/apps.json: ok, 0 apps, 0 clusters, serial 1" ] || fail "check: $out"

step "systemd-analyze verify and security on the installed unit"
unit=$(dpkg -L cnamed | grep '/cnamed\.service$')
report=$(systemd-analyze verify "$unit" 2>&1) || fail "verify: $report"
[ -z "$report" ] || fail "verify reports: $report"
systemd-analyze security --offline=true "$unit" | tail -1 >&2
[ -L /etc/systemd/system/multi-user.target.wants/cnamed.service ] || fail "not enabled"

step "serve as the unit would, reload a dump a deploy job (group cnamed, not root) drops"
mkdir -p /run/cnamed
chown cnamed:cnamed /run/cnamed
chmod 750 /run/cnamed
# The unit's ExecStart, on a free loopback port instead of :53 (no capability needed).
opts=${CNAMED_OPTS//--listen 127.0.0.1:53/--listen 127.0.0.1:0}
log=$(mktemp)
# shellcheck disable=SC2086
"${as_cnamed[@]}" /usr/bin/cnamed serve --control /run/cnamed/control $opts 2>"$log" &
server=$!
track "$server"
for _ in $(seq 1 50); do grep -q serving "$log" && break; sleep 0.1; done
port=$(sed -n 's/.* on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log" | head -1)
[ -n "$port" ] || fail "did not start: $(cat "$log")"
[ "$(stat -c '%a' /run/cnamed/control)" = 660 ] || fail "socket mode"
deploy=(setpriv --reuid=nobody --regid=nogroup --groups="$(getent group cnamed | cut -d: -f3)")
"${deploy[@]}" sh -c 'umask 007; printf "{\"serial\": 2, \"apps\": {\"123\": \"mt1\"}}\n" > /var/lib/cnamed/.new && mv /var/lib/cnamed/.new /var/lib/cnamed/apps.json' \
    || fail "a member of the cnamed group cannot drop a dump"
line=$("${deploy[@]}" /usr/bin/cnamed reload --control /run/cnamed/control) || fail "reload: $line"
echo "$line" >&2
[ "$(dig @127.0.0.1 -p "$port" +short ws-123.apps.example.com CNAME)" = "ws-mt1.example.com." ] \
    || fail "the new mapping is not served"
kill "$server"
wait "$server" || fail "serve did not stop cleanly"
server=
[ ! -e /run/cnamed/control ] || fail "the control socket is left behind"
rm -f "$log"
rmdir /run/cnamed

step "purge"
dpkg --purge cnamed >/dev/null
for path in /usr/bin/cnamed "$unit" /etc/default/cnamed /var/lib/cnamed \
    /usr/share/man/man8/cnamed.8.gz /etc/systemd/system/multi-user.target.wants/cnamed.service; do
    [ ! -e "$path" ] || fail "$path is left after purge"
done
echo "package.sh: ok" >&2
