#!/bin/sh
# The PostgreSQL of the shared-server demo: a fresh cluster in DIR (initdb), then postgres on a
# unix socket in DIR only. Run as an unprivileged user (procfix's --user / ServerOptions::user);
# readiness through NOTIFY_SOCKET (postgres calls sd_notify READY=1). Usage: postgres_server.sh DIR
set -eu
dir=$1
bin=/usr/lib/postgresql/15/bin
# Data directories of earlier per-process runs whose test process is gone (see the test's main).
for stale in /tmp/procfix-pg-demo-*; do
  [ -d "$stale" ] || continue
  [ -d "/proc/${stale##*-}" ] || rm -rf "$stale"
done
rm -rf "$dir"
mkdir -p "$dir"
"$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }
exec "$bin/postgres" -D "$dir/data" -k "$dir" -c listen_addresses= -c fsync=off \
  -c full_page_writes=off -c synchronous_commit=off
