// Adversarial wrapper for tests/faults/listen_test.cpp: makes one system call fail with EPERM
// (as a container's seccomp profile would) for itself and everything it starts, then execs
// the rest of its command line.  Usage: deny_syscall seccomp|pidfd_getfd PROGRAM ARGS...
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const unsigned int nr = std::strcmp(argv[1], "seccomp") == 0 ? SYS_seccomp : SYS_pidfd_getfd;
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
    std::perror("deny_syscall: seccomp");
    return 2;
  }
  ::execv(argv[2], argv + 2);
  std::perror("deny_syscall: execv");
  return 2;
}
