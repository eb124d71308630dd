// http_bench_baseline: the ceiling the Atelier server is measured against in http_bench.sh.
//
// A deliberately minimal HTTP/1.1 keep-alive server on raw Boost.Asio (no Beast, no routing, no
// logging, no header parsing): it reads until each "\r\n\r\n" and answers every request with the
// same fixed 200 {"status":"ok"} response. Pipelined requests in one read are answered with one
// write, in order. Request bodies are not supported (wrk's GETs have none).
//
// Usage: http_bench_baseline [THREADS [PORT]]   (defaults: 1 thread, port 0 = pick a free one)
// Listens on 127.0.0.1 only and prints "listening on http://127.0.0.1:PORT" on stdout once ready.
#include <array>
#include <boost/asio.hpp>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 15\r\n"
    "\r\n"
    "{\"status\":\"ok\"}";

// A client that sends this much without finishing a request head is not a benchmark client.
constexpr size_t kMaxPending = 64 * 1024;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() {
    boost::system::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    read();
  }

 private:
  // One operation is outstanding at a time (read, or write then read), so the connection needs no
  // strand even when the io_context runs on several threads.
  void read() {
    socket_.async_read_some(asio::buffer(buf_),
                            [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                              if (!ec) self->on_read(n);
                            });
  }

  void on_read(size_t n) {
    pending_.append(buf_.data(), n);
    out_.clear();
    // Answer every complete request head; keep a partial one for the next read. The leftover is
    // searched again with the new bytes, so a terminator split across reads is still found.
    size_t start = 0;
    for (;;) {
      size_t end = pending_.find("\r\n\r\n", start);
      if (end == std::string::npos) break;
      out_.append(kResponse);
      start = end + 4;
    }
    pending_.erase(0, start);
    if (pending_.size() > kMaxPending) return;  // drop the connection
    if (out_.empty()) {
      read();
      return;
    }
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        if (!ec) self->read();
                      });
  }

  tcp::socket socket_;
  std::array<char, 16 * 1024> buf_;
  std::string pending_;
  std::string out_;
};

void accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](boost::system::error_code ec, tcp::socket socket) {
    if (!ec) std::make_shared<Connection>(std::move(socket))->start();
    if (acceptor.is_open()) accept(acceptor);
  });
}

bool parse_number(const char* text, unsigned long max, unsigned long& out) {
  std::string_view s(text);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && out <= max;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long threads = 1;
  unsigned long port = 0;
  if (argc > 3 || (argc > 1 && (!parse_number(argv[1], 256, threads) || threads == 0)) ||
      (argc > 2 && !parse_number(argv[2], 65535, port))) {
    std::cerr << "usage: " << argv[0] << " [THREADS [PORT]]   (1-256 threads; port 0 = any)\n";
    return 2;
  }

  try {
    asio::io_context io(static_cast<int>(threads));
    tcp::acceptor acceptor(io);
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code, int) {
      boost::system::error_code ignored;
      acceptor.close(ignored);
      io.stop();
    });

    accept(acceptor);
    std::cout << "listening on http://127.0.0.1:" << acceptor.local_endpoint().port() << std::endl;

    std::vector<std::thread> pool;
    for (unsigned long i = 1; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : pool) t.join();
  } catch (const std::exception& e) {
    std::cerr << "http_bench_baseline: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
