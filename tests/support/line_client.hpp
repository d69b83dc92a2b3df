// Test support: talk to a line-protocol server (sample_child) at a reported endpoint.
#pragma once

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <istream>
#include <string>
#include <string_view>

#include "procfix/fixtures/endpoint.hpp"

namespace procfix::testing {

// A blocking TCP connection to `endpoint` that sends lines and reads line replies.
class LineClient {
 public:
  explicit LineClient(const Endpoint& endpoint) : socket_{io_} {
    boost::asio::ip::tcp::endpoint target{boost::asio::ip::make_address(endpoint.host()),
                                          endpoint.port()};
    socket_.connect(target);
    // A reply that never comes fails the test instead of hanging it (a bound, not a delay).
    const timeval timeout{30, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }

  void send(std::string_view line) {
    std::string data{line};
    data += '\n';
    boost::asio::write(socket_, boost::asio::buffer(data));
  }

  // The next line (without '\n'); throws on EOF.
  std::string receive() {
    boost::asio::read_until(socket_, buffer_, '\n');
    std::istream in{&buffer_};
    std::string line;
    std::getline(in, line);
    return line;
  }

  std::string exchange(std::string_view line) {
    send(line);
    return receive();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::streambuf buffer_;
};

// One request, one reply, on a fresh connection.
inline std::string exchange_line(const Endpoint& endpoint, std::string_view line) {
  return LineClient{endpoint}.exchange(line);
}

}  // namespace procfix::testing
