#include "tests/support/ws_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace atelier::testing {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class WsClient::Impl {
 public:
  Impl() : ws_(ioc_) {}
  ~Impl() {
    drop();
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }

  bool connect(uint16_t port, const std::string& target, const Options& options, Refused* refused) {
    beast::error_code ec;
    tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
    beast::get_lowest_layer(ws_).connect(ep, ec);
    if (ec) return false;
    ws_.set_option(websocket::stream_base::decorator(
        [headers = options.headers](websocket::request_type& req) {
          for (const auto& line : headers) {
            auto colon = line.find(':');
            if (colon == std::string::npos) continue;
            std::string value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            req.set(line.substr(0, colon), value);
          }
        }));
    ws_.read_message_max(64 << 20);
    websocket::response_type res;
    ws_.handshake(res, "127.0.0.1:" + std::to_string(port), target, ec);
    if (ec) {
      if (refused) *refused = Refused{static_cast<int>(res.result_int()), res.body()};
      return false;
    }
    if (options.read) read_next();
    work_.emplace(ioc_.get_executor());
    thread_ = std::thread([this] { ioc_.run(); });
    return true;
  }

  void read_next() {
    ws_.async_read(buffer_, [this](beast::error_code ec, size_t) {
      if (ec) return end(ec);
      WsMessage m;
      m.binary = !ws_.got_text();
      m.data = beast::buffers_to_string(buffer_.data());
      buffer_.consume(buffer_.size());
      m.received = std::chrono::steady_clock::now();
      if (!m.binary) m.json = nlohmann::json::parse(m.data, nullptr, false);
      {
        std::lock_guard lock(mu_);
        messages_.push_back(std::move(m));
      }
      cv_.notify_all();
      read_next();
    });
  }

  void end(beast::error_code ec) {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    if (ec == websocket::error::closed) close_code_ = static_cast<uint16_t>(ws_.reason().code);
    cv_.notify_all();
  }

  void send(std::string data, bool binary) {
    net::post(ioc_, [this, d = std::move(data), binary]() mutable {
      queue_.push_back({std::move(d), binary});
      if (queue_.size() == 1) write_next();
    });
  }

  void write_next() {
    if (queue_.empty()) return;
    ws_.binary(queue_.front().second);
    ws_.async_write(net::buffer(queue_.front().first), [this](beast::error_code ec, size_t) {
      queue_.pop_front();
      if (ec) {
        queue_.clear();
        return;
      }
      write_next();
    });
  }

  void close() {
    net::post(ioc_,
              [this] { ws_.async_close(websocket::close_code::normal, [](beast::error_code) {}); });
    wait_closed(std::chrono::seconds(2));
  }

  void drop() {
    net::post(ioc_, [this] {
      beast::error_code ec;
      beast::get_lowest_layer(ws_).shutdown(tcp::socket::shutdown_both, ec);
      beast::get_lowest_layer(ws_).close(ec);
    });
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    if (!thread_.joinable()) {
      beast::error_code ec;
      beast::get_lowest_layer(ws_).close(ec);
    }
    cv_.notify_all();
  }

  std::optional<uint16_t> wait_closed(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return closed_; })) return std::nullopt;
    return close_code_;
  }

  net::io_context ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::pair<std::string, bool>> queue_;  // io thread only
  std::thread thread_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<WsMessage> messages_;  // guarded by mu_
  bool closed_ = false;              // guarded by mu_
  uint16_t close_code_ = 0;          // guarded by mu_
};

WsClient::WsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WsClient::~WsClient() = default;

std::unique_ptr<WsClient> WsClient::connect(uint16_t port, const std::string& target,
                                            Options options, Refused* refused) {
  auto impl = std::make_unique<Impl>();
  if (!impl->connect(port, target, options, refused)) return nullptr;
  return std::unique_ptr<WsClient>(new WsClient(std::move(impl)));
}

void WsClient::send_text(const std::string& text) {
  impl_->send(text, false);
}

void WsClient::send_binary(const std::string& bytes) {
  impl_->send(bytes, true);
}

std::vector<WsMessage> WsClient::messages() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->messages_;
}

std::optional<WsMessage> WsClient::wait_for(const std::function<bool(const WsMessage&)>& pred,
                                            std::chrono::milliseconds timeout, size_t from,
                                            size_t* index) const {
  std::unique_lock lock(impl_->mu_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t next = from;
  for (;;) {
    for (; next < impl_->messages_.size(); ++next) {
      if (pred(impl_->messages_[next])) {
        if (index) *index = next;
        return impl_->messages_[next];
      }
    }
    if (impl_->closed_) return std::nullopt;
    if (impl_->cv_.wait_until(lock, deadline) == std::cv_status::timeout &&
        next >= impl_->messages_.size()) {
      return std::nullopt;
    }
  }
}

std::optional<nlohmann::json> WsClient::wait_json(
    const std::function<bool(const nlohmann::json&)>& pred, std::chrono::milliseconds timeout,
    size_t from) const {
  auto m =
      wait_for([&](const WsMessage& m) { return !m.binary && m.json.is_object() && pred(m.json); },
               timeout, from);
  if (!m) return std::nullopt;
  return m->json;
}

std::optional<nlohmann::json> WsClient::wait_type(const std::string& type,
                                                  std::chrono::milliseconds timeout,
                                                  size_t from) const {
  return wait_json([&](const nlohmann::json& j) { return j.value("type", "") == type; }, timeout,
                   from);
}

std::optional<uint16_t> WsClient::wait_closed(std::chrono::milliseconds timeout) const {
  return impl_->wait_closed(timeout);
}

bool WsClient::closed() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->closed_;
}

void WsClient::close() {
  impl_->close();
}

void WsClient::start_reading() {
  net::post(impl_->ioc_, [impl = impl_.get()] { impl->read_next(); });
}

void WsClient::drop() {
  impl_->drop();
}

}  // namespace atelier::testing
