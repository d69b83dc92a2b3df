"""Using procfix-run from Python's subprocess (e.g. in a pytest fixture)."""
import json
import socket
import subprocess
import sys


def main(procfix_run: str, server: str) -> int:
    run = subprocess.Popen([procfix_run, "--", server],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(run.stdout.readline())          # the server is ready at this point
    host, port = ready["address"].rsplit(":", 1)
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(b"ping\n")
        assert connection.makefile().readline().strip() == "pong"
    run.stdin.close()                                  # teardown: stop the server
    report = json.loads(run.stdout.readline())
    return run.wait() if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
