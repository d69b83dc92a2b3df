// Not installed. Low-level access to the readiness channel for sample_child's misbehaviour
// switches and for the helpers' unit tests. Servers use ready.hpp only.
#pragma once

#include <string_view>

namespace procfix::detail {

// The readiness fd taken by take_ready_channels(), or -1 if none (or already used).
// Ownership stays with the helpers.
[[nodiscard]] int ready_fd() noexcept;

// Writes `bytes` verbatim (no validation, no size limit) to the readiness fd with the same
// SIGPIPE-safe loop as notify_ready(), then closes it and marks readiness as notified. Returns
// false if there was no readiness fd. Throws procfix::ReadyError if the write fails (fd closed
// anyway).
bool write_raw_ready_bytes(std::string_view bytes);

// Closes the readiness fd without writing and marks readiness as notified. Returns false if
// there was no readiness fd.
bool close_ready_fd_without_message() noexcept;

// Forgets all state (closing a still-open readiness fd) so that a unit test can start over.
void reset_ready_state_for_testing() noexcept;

}  // namespace procfix::detail
