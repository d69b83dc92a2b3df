// Formatting endpoints as protocol v1 "address" strings (see ready.hpp).
#pragma once

#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "procfix/helpers/export.hpp"

namespace procfix {

// "127.0.0.1:43121" for IPv4, "[::1]:43121" for IPv6 (with "%scope" inside the brackets when the
// address has a scope id). Does not throw except std::bad_alloc.
[[nodiscard]] PROCFIX_HELPERS_API std::string to_address(
    const boost::asio::ip::tcp::endpoint& endpoint);

// The socket path of a unix stream endpoint; an abstract name (leading NUL byte) is written with
// a leading '@' instead. Does not throw except std::bad_alloc.
[[nodiscard]] PROCFIX_HELPERS_API std::string to_address(
    const boost::asio::local::stream_protocol::endpoint& endpoint);

}  // namespace procfix
