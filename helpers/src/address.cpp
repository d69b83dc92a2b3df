#include "procfix/helpers/address.hpp"

namespace procfix {

std::string to_address(const boost::asio::ip::tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  const std::string port = std::to_string(endpoint.port());
  if (address.is_v6())
    return std::string{"["}.append(address.to_string()).append("]:").append(port);
  return address.to_string() + ":" + port;
}

std::string to_address(const boost::asio::local::stream_protocol::endpoint& endpoint) {
  std::string path = endpoint.path();
  if (!path.empty() && path.front() == '\0') path.front() = '@';
  return path;
}

}  // namespace procfix
