// Adversarial child for procfix-run: never ready, ignores SIGTERM, and has a setsid()ed child.
//   cli_never_ready FIFO TOKEN
// Forks a grandchild that calls setsid() and lives forever, then writes "spawned\n" to FIFO (so
// the test knows both exist), then sleeps forever. TOKEN is only there to be found in
// /proc/<pid>/cmdline by the test's survivor check (both processes carry it).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  ::signal(SIGTERM, SIG_IGN);
  const pid_t grandchild = ::fork();
  if (grandchild == 0) {
    ::setsid();
    for (;;) ::pause();
  }
  const int fifo = ::open(argv[1], O_WRONLY | O_CLOEXEC);
  if (fifo < 0 || ::write(fifo, "spawned\n", 8) != 8) return 3;
  ::close(fifo);
  for (;;) ::pause();
}
