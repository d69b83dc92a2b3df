#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <procfix/fixtures/environment.hpp>

class TinyServer : public procfix::ServerTest {
 protected:
  procfix::ServerOptions server_options() const override { return {.executable = TINY_SERVER}; }
};

TEST_F(TinyServer, SaysHello) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket socket{io};
  socket.connect({asio::ip::make_address(endpoint().host()), endpoint().port()});
  asio::streambuf reply;
  asio::read_until(socket, reply, '\n');
  EXPECT_EQ(std::string(asio::buffers_begin(reply.data()), asio::buffers_end(reply.data())),
            "hello\n");
}
