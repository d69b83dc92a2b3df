// sample_child's misbehaviour switches (sample_child --help): what it does wrong on purpose, so
// that the fixtures' failure paths are driven by a real process.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config.hpp"

namespace sample_child {

// Everything the switches ask for before readiness, in the documented order: delay, output,
// exit/signal (does not return then), fork holding the ready fd, notify from outside, notify
// status, zombie. `notify_socket`: NOTIFY_SOCKET as it was when main() started.
void misbehave_before_ready(const Config& config, const std::string& notify_socket);

// Writes the ready message (or the broken one, or none) as configured; errors go to stderr.
void announce_ready(const Config& config, const std::string& address, nlohmann::json fields);

// --leak-grandchild: a process that outlives us. Single-threaded caller (before the io thread).
void leak_grandchild(const std::string& mode);

// Writes `bytes` bytes of text lines to `fd` (blocking while a pipe is full).
void spam(int fd, long bytes);

}  // namespace sample_child
