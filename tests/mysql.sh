#!/usr/bin/env bash
# The README's MySQL/MariaDB export recipe, end to end, against a real MariaDB.
#
#   tests/mysql.sh     (run as root; .ci/run runs it)
#
# Starts a private MariaDB in a temp directory as an unprivileged user (nobody), Unix socket
# only, no network; loads 100k apps into the README's table; checks that its constraints
# refuse what would break a dump; exports with the README's exact query; serves the dump and
# checks a sample of names over DNS with dig. Then shows the max_allowed_packet caveat: 2M
# apps (about 36 MB of JSON) do not fit MariaDB's default 16 MB and the export fails loudly;
# with the README's setting they do. Removes everything at the end.
. "$(dirname "$0")/../tests/lib.sh"
parse_flags "" -- "$@"
need mariadbd:mariadb-server mariadb:mariadb-client dig:bind9-dnsutils
build cnamed
cnamed=$bin/cnamed

make_work mysql
chmod 755 "$work"
mkdir "$work/db"
chown nobody "$work/db"

step "a private MariaDB as nobody, Unix socket only"
mariadb-install-db --user=nobody --datadir="$work/db/data" --auth-root-authentication-method=normal \
    --skip-test-db >/dev/null 2>&1
setpriv --reuid=nobody --regid=nogroup --clear-groups mariadbd --no-defaults --datadir="$work/db/data" --socket="$work/db/sock" \
    --skip-networking --pid-file="$work/db/pid" --log-error="$work/db/log" &
track $!
for _ in $(seq 1 100); do [ -S "$work/db/sock" ] && break; sleep 0.1; done
[ -S "$work/db/sock" ] || fail "MariaDB did not start: $(cat "$work/db/log")"
sql() { mariadb --no-defaults --socket="$work/db/sock" -u root "$@"; }
sql -e "CREATE DATABASE service"

# The README's table: a case-insensitive primary key (cnamed compares IDs without case) and
# the ID pattern.
sql service <<'SQL'
CREATE TABLE apps (
    app_id  VARCHAR(56) NOT NULL PRIMARY KEY
            CHECK (app_id REGEXP '^[A-Za-z0-9]([A-Za-z0-9-]{0,54}[A-Za-z0-9])?$'),
    cluster VARCHAR(56) NOT NULL
            CHECK (cluster REGEXP '^[A-Za-z0-9]([A-Za-z0-9-]{0,54}[A-Za-z0-9])?$')
) DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci;
SQL
step "100k apps"
sql service -e "INSERT INTO apps SELECT IF(seq % 10 = 0, CONCAT('app-', seq), seq),
    CONCAT('mt', seq % 4) FROM seq_1_to_100000"
for bad in "('APP-10', 'mt1')" "('-x', 'mt1')" "('ok', 'MT 1')"; do
    if sql service -e "INSERT INTO apps VALUES $bad" 2>/dev/null; then fail "the table accepted $bad"; fi
done

# The README's query, word for word.
export_query="
    SELECT JSON_OBJECT('serial', UNIX_TIMESTAMP(), 'apps', JSON_OBJECTAGG(app_id, cluster))
    FROM apps"
dump=$work/apps.json
sql --batch --raw --skip-column-names -e "$export_query" service > "$dump"
out=$("$cnamed" check --dump "$dump") || fail "check: $out"
case "$out" in *"ok, 100000 apps, 4 clusters"*) ;; *) fail "check: $out" ;; esac

step "serve it, a sample over DNS"
"$cnamed" serve --dump "$dump" --listen 127.0.0.1:0 --threads 1 2>"$work/cnamed.log" &
track $!
for _ in $(seq 1 100); do grep -q serving "$work/cnamed.log" && break; sleep 0.1; done
port=$(sed -n 's/.* on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/cnamed.log" | head -1)
[ -n "$port" ] || fail "cnamed did not start"
sql --batch --skip-column-names service -e "SELECT app_id, cluster FROM apps ORDER BY RAND() LIMIT 500" \
    > "$work/sample"
awk '{print "ws-" $1 ".apps.example.com. CNAME"}' "$work/sample" > "$work/queries"
dig @127.0.0.1 -p "$port" +tcp +noall +answer -f "$work/queries" | awk '{print tolower($1), $5}' \
    | sort > "$work/got"
awk '{print tolower("ws-" $1 ".apps.example.com."), "ws-" $2 ".example.com."}' "$work/sample" \
    | sort > "$work/want"
diff -q "$work/want" "$work/got" >/dev/null || fail "answers differ: $(diff "$work/want" "$work/got" | head -3)"

step "2M apps: over the server's default max_allowed_packet (16 MB), the export fails loudly"
sql service -e "INSERT INTO apps SELECT seq, CONCAT('mt', seq % 4) FROM seq_100001_to_2000000"
sql -e "SELECT @@max_allowed_packet" >&2
# JSON_OBJECTAGG gives NULL (and a warning) past max_allowed_packet: "apps": null, which
# cnamed check refuses. (Wrapped in COALESCE(..., JSON_OBJECT()) it would be an empty dump
# that checks fine and that only the reload guard rails would stop.)
sql --batch --raw --skip-column-names -e "$export_query" service > "$dump"
if out=$("$cnamed" check --dump "$dump" 2>&1); then fail "an oversized export passed the check: $out"; fi
echo "default: $(head -c 80 "$dump") -> $out" >&2
sql -e "SET GLOBAL max_allowed_packet = 1073741824"
sql --max-allowed-packet=1G --batch --raw --skip-column-names -e "$export_query" service > "$dump"
out=$("$cnamed" check --dump "$dump") || fail "check: $out"
case "$out" in *"ok, 2000000 apps"*) ;; *) fail "check: $out" ;; esac
echo "max_allowed_packet 1G (server and client): $out ($(( $(stat -c %s "$dump") / 1000000 )) MB)" >&2
echo "mysql.sh: ok" >&2
