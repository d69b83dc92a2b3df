// The constants of the procfix readiness protocol v1 (docs/protocol.md), shared by the server side
// (ready.hpp) and the fixtures that read the message: one definition for both ends.
#pragma once

#include <cstddef>
#include <string_view>

namespace procfix {

// The environment variable carrying the readiness fd number (protocol v1).
inline constexpr std::string_view kReadyFdVariable = "PROCFIX_READY_FD";

// Largest ready line protocol v1 allows, in bytes, including the terminating newline.
inline constexpr std::size_t kMaxReadyLineBytes = 64 * 1024;

}  // namespace procfix
