#!/usr/bin/env bash
# Using procfix-run from a shell test: start a server, talk to it, stop it, check the report.
# Usage: procfix-run-example.sh PROCFIX_RUN SERVER   (CI runs it with procfix-run and sample_child)
set -euo pipefail
procfix_run=$1
server=$2

# procfix-run's stdin is our lifeline to it: when we close it (or die), the server is stopped.
# Plain fifos rather than `coproc`: bash unsets a coproc's variables as soon as it has exited, so
# "${RUN[0]}" and "$RUN_PID" would race with a procfix-run that ends early (a failed start).
fifos=$(mktemp -d)
trap 'rm -rf "$fifos"' EXIT
mkfifo "$fifos/in" "$fifos/out"
"$procfix_run" --stop-grace=2000 -- "$server" <"$fifos/in" >"$fifos/out" &
run_pid=$!
exec {run_in}>"$fifos/in" {run_out}<"$fifos/out"
read -r ready <&"$run_out"                        # {"ready":true,"pid":...,"address":"127.0.0.1:PORT",...}
address=$(sed -E 's/.*"address":"([^"]+)".*/\1/' <<<"$ready")
host=${address%:*}
port=${address##*:}

exec 3<>"/dev/tcp/$host/$port"                    # bash's built-in TCP client
echo ping >&3
read -r reply <&3
exec 3>&-
[[ $reply == pong ]] || { echo "expected pong, got '$reply'" >&2; exit 1; }

exec {run_in}>&-                                  # close procfix-run's stdin: stop the server
read -r report <&"$run_out"                       # {"stopped":true,"ok":true,...}
wait "$run_pid"                                   # exit status 0 only if the server behaved
echo "server answered '$reply'; $report"
