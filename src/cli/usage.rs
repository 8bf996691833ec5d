//! The text of `cnamed --help`; the tests in `cli` hold it, the README's table and the man
//! page to the same flags.

pub const USAGE: &str = "\
cnamed: authoritative DNS for {service}-{app}.{zone} -> {service}-{cluster}.{suffix}

Usage:
  cnamed [serve] [OPTIONS]    answer queries over UDP and TCP (the default)
  cnamed check [OPTIONS]      load and validate the dump, print app and cluster counts
  cnamed zonefile [OPTIONS]   print the zone as an RFC 1035 master file
  cnamed fetch --primary ADDR:PORT [OPTIONS]
                              transfer the zone (AXFR) from a primary, check its shape,
                              print it as a dump
  cnamed reload [--force]     ask the running server to reload the dump; waits for the
                              outcome: exit 0 when the new mapping is live (or unchanged),
                              1 when refused or failed, 2 when the server cannot be reached
  cnamed status [--json]      print what the running server serves
  cnamed wait [--serial N] [--timeout SECONDS]
                              wait until every --notify target of the running server serves
                              serial N or newer [default: the serial it serves now; 30 s]:
                              exit 0 when they do, 1 on timeout (naming those behind), 2 when
                              the server cannot be reached
  cnamed update [--server ADDR:PORT] [--key NAME] [--serial N] set APP CLUSTER [APP CLUSTER ...]
  cnamed update [--server ADDR:PORT] [--key NAME] [--serial N] delete APP [APP ...]
                              send one DNS UPDATE (RFC 2136) signed with a key of
                              --tsig-key-file: set adds or moves apps, delete removes them;
                              exit 0 on NOERROR, 1 when refused (the RCODE says why), 2 when
                              the server cannot be reached; with --wait [--timeout SECONDS],
                              then as `cnamed wait` for the serial the update made (run it on
                              the primary's host: it asks the --control socket)
  cnamed keygen [--algorithm hmac-sha256|hmac-sha512] [--format bind|knot] NAME
                              print a new TSIG key from the kernel's random source, as a key
                              file cnamed and BIND read (bind), or Knot's key: section,
                              which cnamed reads too (knot; its first line is the
                              ALGORITHM:NAME:SECRET of kdig -y and dig -y)

Options:
  --dump PATH                JSON dump of app -> cluster [default: data/apps.json]
  --zone NAME                zone apex [default: apps.example.com]
  --target TEMPLATE          CNAME target, {service} and {cluster} substituted
                             [default: {service}-{cluster}.example.com]
  --services LIST            comma-separated service names, no '-' [default: ws,sockjs,api]
  --listen ADDR:PORT         UDP and TCP address, repeatable; port 0 picks a free one
                             [default: 127.0.0.1:5353]
  --threads N                worker threads [default: available CPUs]
  --ttl SECONDS              CNAME TTL [default: 300]
  --negative-ttl SECONDS     SOA minimum and negative-answer TTL [default: 60]
  --soa-timers R,T,E         SOA REFRESH, RETRY and EXPIRE in seconds, what secondaries
                             go by [default: 3600,600,604800]
  --ns NAME                  apex NS name, repeatable; the first is the SOA MNAME
                             [default: ns1.example.com]
  --hostmaster NAME          SOA RNAME [default: hostmaster.<zone>]
  --identity TEXT            answer to CHAOS id.server and NSID [default: host name]
  --version-string TEXT      answer to CHAOS version.bind; none refuses it
                             [default: cnamed <version>]
  --tcp-idle-timeout SECONDS close TCP connections idle this long [default: 10]
  --tcp-io-timeout MS        close TCP connections stalled mid-message this long [default: 500]
  --tcp-max-connections N    TCP connections per worker [default: 1024]
  --metrics ADDR:PORT        serve Prometheus metrics on http://ADDR:PORT/metrics [default: off]
  --rrl-rate N               UDP responses per second per client /24 or /56 [default: off]
  --rrl-slip N               send every Nth limited response truncated, 0 never [default: 2]
  --cookie-secret-file PATH  DNS cookie secrets, 32 hex digits a line: the first makes
                             cookies, a second is also accepted [default: a random secret]
  --max-dump-size BYTES      refuse a larger dump before reading it [default: 4 GiB]
  --last-good PATH           keep a copy of the last dump installed there (written after
                             each dump load); at start, serve it when the dump is
                             unreadable, invalid, empty or refused by the guard rails
                             against it [default: off]
  --dnstap PATH              log queries and responses to a dnstap collector's Unix
                             socket (Frame Streams), reconnecting when it goes away; a
                             slow or absent collector costs frames, never answers
                             [default: off]
  --dnstap-sample N          log one query in N [default: 1, every query]
  --dnstap-messages WHICH    queries, responses or both [default: both]
  --max-shrink PERCENT       refuse a reload that removes more of the live apps [default: 10]
  --clusters LIST            comma-separated clusters apps may map to; a dump naming
                             another is refused [default: any]
  --control PATH             the control socket: `serve` listens there (mode 0660),
                             `reload` and `status` connect there [default: off for serve,
                             /run/cnamed/control for reload and status]
  --xfr-allow PREFIX         who may transfer the zone (AXFR over TCP), repeatable:
                             192.0.2.0/24, ::1/128, or an address [default: nobody]
  --tsig-key-file PATH       TSIG keys (tsig-keygen / keymgr -t format): a transfer must
                             then be signed with one of them [default: none]
  --ixfr-history N           reloads whose differences are kept for IXFR [default: 32]
  --update-key NAME          a key of --tsig-key-file that may change apps by DNS UPDATE
                             (RFC 2136), repeatable; needs --journal [default: none, every
                             UPDATE is REFUSED]
  --journal PATH             the journal of acknowledged UPDATEs, each fsynced before it
                             is answered, replayed on the dump at start; on a secondary,
                             of the differences its primaries sent, instead of a dump
                             written after each [default: none]
  --journal-max-size BYTES   past this size the zone is written beside the journal as a
                             checkpoint and the records it holds dropped [default: 100 MiB]
  --notify ADDR:PORT         secondary sent a NOTIFY after each new serial, repeatable
                             (signed with the first TSIG key, if any) [default: none]
  --primary ADDR:PORT        a primary to transfer the zone from, repeatable, tried in
                             order, signed with the first TSIG key if any; serve: AXFR at
                             start, then IXFR on its NOTIFY, on reload and every SOA
                             REFRESH (RETRY after a failure) instead of reading the dump,
                             which is then written (and served when no primary answers
                             at start)
  --max-transfer-time-in SECONDS
                             abandon a transfer in that takes longer and try the next
                             primary (at start: then the dump) [default: 600]
  --max-transfer-time-out SECONDS
                             cut off a transfer out that takes longer [default: 600]
  --min-transfer-rate BYTES  cut off a transfer, in or out, that moves fewer bytes a second
                             over 30 s; 0 never [default: 1024]
  --max-transfers-per-address N
                             transfers out at once to one client address, beyond them
                             REFUSED; 0 no cap but the total of 4 [default: 0]
  --max-ixfr-ratio PERCENT   an IXFR whose difference has more CNAMEs than PERCENT of the
                             zone's records is answered with the whole zone; unlimited:
                             never [default: 50]
  --min-refresh SECONDS      a secondary refreshes at most this often on NOTIFYs that do
                             not announce a newer serial, and on SOA timers set lower
                             [default: 2]
  --on-expire serve|servfail once no primary confirmed the zone for the SOA EXPIRE time:
                             keep answering from the last mapping, loudly (logs, status,
                             metrics, /ready fails), or answer SERVFAIL [default: serve]
  --force                    reload: override the guard rails (serial rollback, empty,
                             shrink), for this reload only
  --json                     status: one JSON object
  --server ADDR:PORT         update: the primary to send it to [default: the first --listen]
  --key NAME                 update: the key to sign with [default: the first --update-key,
                             else the first key of --tsig-key-file]
  --serial N                 update: also set the zone's serial to N (an SOA in the update;
                             a serial not greater than the zone's is ignored); wait: the
                             serial to wait for [default: the one served]
  --wait                     update: then wait until every --notify target serves it
  --timeout SECONDS          wait, update --wait: how long [default: 30]
  --algorithm NAME           keygen: hmac-sha256 or hmac-sha512 [default: hmac-sha256]
  --format bind|knot         keygen: the key file's form [default: bind]
  -h, --help                 print this help
  -V, --version              print the version

Signals: SIGHUP reloads the dump (a secondary refreshes from its primaries instead), the
cookie secret file and the TSIG key file (if any is bad, or the guard rails refuse the new
mapping, the error is logged and the old ones keep serving); SIGTERM and SIGINT stop
accepting, finish the TCP answers already asked for (at most 1 s) and exit.
";
