// The smallest useful server: binds 127.0.0.1:0, reports readiness, answers one line per
// connection with "hello", exits 0 on SIGTERM.
#include <signal.h>

#include <boost/asio.hpp>
#include <procfix/helpers/address.hpp>
#include <procfix/helpers/ready.hpp>

int main() {
  procfix::take_ready_channels();
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  asio::signal_set stop{io, SIGTERM, SIGINT};
  stop.async_wait([&](auto, int) { io.stop(); });
  std::function<void()> accept = [&] {
    acceptor.async_accept([&](boost::system::error_code ec, asio::ip::tcp::socket socket) {
      if (!ec) asio::write(socket, asio::buffer(std::string{"hello\n"}), ec);
      accept();
    });
  };
  accept();
  (void)procfix::notify_ready({.address = procfix::to_address(acceptor.local_endpoint())});
  io.run();
  return 0;
}
