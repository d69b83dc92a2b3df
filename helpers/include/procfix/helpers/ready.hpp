// procfix readiness, server side: tell the test fixture "I am ready, here is my address".
//
// Protocol v1 (docs/protocol.md, docs/helpers.md): the fixture starts the server with the write
// end of a pipe at fd N and sets PROCFIX_READY_FD=N. The server writes exactly one JSON object on
// one line ending in '\n' (at most 64 KiB including the newline), then closes the fd. Field
// "address" ("host:port", "[v6]:port" or a unix socket path) is required for network servers.
// systemd's NOTIFY_SOCKET is honoured too: READY=1, STATUS=..., STOPPING=1 datagrams.
//
// Process-wide state (documented as the style guide asks): both channels live in the environment,
// which is not thread-safe. Call take_ready_channels() first thing in main(), before any thread
// starts or anything forks. After that, every function here is thread-safe.
//
// Errors: every failure throws procfix::ReadyError, whose what() is one sentence naming the
// variable, fd or socket involved.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "procfix/helpers/export.hpp"
#include "procfix/helpers/protocol.hpp"

namespace procfix {

// kReadyFdVariable and kMaxReadyLineBytes: see protocol.hpp.

// Thrown by every function of this header on failure.
class PROCFIX_HELPERS_API ReadyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What the server announces. Fill with designated initialisers:
//   procfix::notify_ready({.address = procfix::to_address(acceptor.local_endpoint()),
//                          .extra = {{"pid", ::getpid()}}});
struct PROCFIX_HELPERS_API ReadyMessage {
  // "host:port", "[v6]:port" or a unix socket path. Default empty: no "address" field is written
  // (acceptable only for servers that do not listen). See address.hpp for to_address().
  std::string address{};
  // More fields, merged into the JSON object next to "address". Default: empty object. Must be a
  // JSON object (or null); must not contain "address" when `address` is set; strings must be
  // valid UTF-8. Otherwise notify_ready throws ReadyError naming the problem.
  nlohmann::json extra = nlohmann::json::object();
  // Optional STATUS= text sent with READY=1 on NOTIFY_SOCKET. Default empty: no STATUS= line.
  // Must not contain a newline. Not written to PROCFIX_READY_FD (put it in `extra` for that).
  std::string status{};
};

// Which channels notify_ready() used. Both false: the server was not started by a fixture nor by
// systemd (e.g. run by hand), and notify_ready() did nothing.
struct PROCFIX_HELPERS_API ReadyOutcome {
  bool wrote_ready_fd = false;
  bool notified_socket = false;
};

// Takes the readiness channels out of the environment: reads and unsets PROCFIX_READY_FD
// (unset or empty: no readiness fd; otherwise a decimal fd >= 3 that is open for writing, else
// ReadyError naming the variable and value), marks that fd FD_CLOEXEC so the server's own children
// never inherit it across exec, and reads and unsets NOTIFY_SOCKET (an absolute path, or "@name"
// for an abstract socket; else ReadyError). Idempotent: later calls do nothing. On error nothing is
// changed, and the next call throws again. Not thread-safe (it edits the environment): call it
// first in main(), before threads or forks. Does not block.
PROCFIX_HELPERS_API void take_ready_channels();

// Announces readiness: writes {"address": ..., ...extra} as one line to the readiness fd, retrying
// partial writes and EINTR, then closes the fd; then sends "READY=1" (plus "STATUS=...") to
// NOTIFY_SOCKET. Calls take_ready_channels() first if it was not called.
//   - A message over kMaxReadyLineBytes throws ReadyError before anything is written (the fd
//     stays open, so a smaller message may be sent).
//   - A reader that has gone away gives ReadyError (EPIPE), never a death by SIGPIPE: SIGPIPE is
//     blocked in the calling thread around the write and a SIGPIPE it raised is consumed.
//   - A second call throws ReadyError ("readiness was already notified"), even if the first
//     failed while writing or found no channel.
//   - No channel at all: returns {false, false} and writes nothing.
// Blocks only while the reader has not drained the pipe (a message larger than the pipe buffer).
// Thread-safe once take_ready_channels() has run.
[[nodiscard]] PROCFIX_HELPERS_API ReadyOutcome notify_ready(const ReadyMessage& message);

// Sends "STATUS=<status>" to NOTIFY_SOCKET; does nothing without one. Throws ReadyError if the
// status contains a newline or the send fails. Thread-safe once take_ready_channels() has run.
PROCFIX_HELPERS_API void notify_status(std::string_view status);

// Sends "STOPPING=1" to NOTIFY_SOCKET; does nothing without one. Throws ReadyError if the send
// fails. Thread-safe once take_ready_channels() has run.
PROCFIX_HELPERS_API void notify_stopping();

}  // namespace procfix
