#include "tests/bench/ws_fanout/fleet.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "tests/support/raw_ws.h"

namespace atelier::bench {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

namespace {

bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// The integer right after the first (or last) occurrence of `key` in `text`; -1 if absent.
int64_t int_after(std::string_view text, std::string_view key, bool last) {
  const size_t at = last ? text.rfind(key) : text.find(key);
  if (at == std::string_view::npos) return -1;
  int64_t value = 0;
  for (size_t i = at + key.size(); i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

Fleet::Fleet() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}

Fleet::~Fleet() {
  stop();
  if (epoll_ >= 0) ::close(epoll_);
}

bool Fleet::open(uint16_t port, const std::string& target, const std::string& auth, size_t n,
                 const std::vector<std::string>& greeting, int cpu) {
  std::string hello;
  for (const auto& m : greeting) hello += testing::ws_client_frame(0x1, m);
  for (size_t i = 0; i < n; ++i) {
    auto c = std::make_unique<Client>();
    std::string error;
    c->fd = testing::ws_connect(port, target, auth, c->in, error);
    if (c->fd < 0) {
      std::fprintf(stderr, "subscriber %zu: %s\n", i, error.c_str());
      return false;
    }
    if (!send_all(c->fd, hello)) return false;
    ::fcntl(c->fd, F_SETFL, ::fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c.get();
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c->fd, &ev);
    clients_.push_back(std::move(c));
  }
  thread_ = std::thread([this, cpu] {
    pin_to_cpu(cpu);
    run();
  });
  return true;
}

bool Fleet::wait_subscribed(bool needed, std::chrono::seconds timeout) {
  if (!needed) return true;
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (subscribed_.load() >= clients_.size()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

void Fleet::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  for (auto& c : clients_) {
    if (c->fd >= 0) ::close(c->fd);
    c->fd = -1;
  }
}

void Fleet::run() {
  epoll_event events[256];
  while (!stopping_.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(epoll_, events, 256, 20);
    for (int i = 0; i < n; ++i) on_readable(*static_cast<Client*>(events[i].data.ptr));
  }
}

void Fleet::on_readable(Client& c) {
  char buf[65536];
  const ssize_t got = ::recv(c.fd, buf, sizeof buf, 0);
  if (got <= 0) {
    if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
      c.closed = true;
      ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
    }
    return;
  }
  c.in.append(buf, static_cast<size_t>(got));
  // Whole frames from the front (servers do not mask and, here, do not fragment).
  size_t at = 0;
  while (auto frame = testing::parse_server_frame(std::string_view(c.in).substr(at))) {
    if (frame->opcode == 0x1 || frame->opcode == 0x2) {
      on_message(c, frame->payload, frame->opcode == 0x1);
    } else if (frame->opcode == 0x9) {
      send_all(c.fd, testing::ws_client_frame(0xA, frame->payload));  // pong
    } else if (frame->opcode == 0x8) {
      c.closed = true;
    }
    at += frame->size;
  }
  c.in.erase(0, at);
}

void Fleet::on_message(Client& c, std::string_view text, bool is_text) {
  if (!is_text) {
    ++previews_;
    preview_bytes_ += text.size();
    return;
  }
  // No JSON parser here: at a thousand subscribers a parse per message made this generator,
  // not the server, the bottleneck (most of all for the ~800-byte event messages). The fields
  // read are found by name; every server under test writes compact JSON.
  if (text.find("\"type\":\"progress\"") != std::string_view::npos) {
    if (!measuring_) return;
    const int64_t received = now_us();
    const int64_t at = int_after(text, "\"at_us\":", false);
    if (at <= 0) return;
    const int64_t skip = skip_job_.load(std::memory_order_relaxed);
    if (skip != 0 && int_after(text, "\"job\":", false) == skip) return;
    const double ms = static_cast<double>(received - at) / 1000.0;
    latencies_.push_back(ms);
    if (trace_) {
      per_step_[int_after(text, "\"job\":", false) * 100 + int_after(text, "\"step\":", false)]
          .push_back(ms);
    }
  } else if (text.rfind("{\"type\":\"event\"", 0) == 0) {
    // The event's own seq: the last "seq" in the message (Atelier's event object lists its
    // keys in order, "data" before "seq"; the references put "seq" first and none in data).
    const int64_t seq = int_after(text, "\"seq\":", true);
    if (c.last_seq != 0 && seq != c.last_seq + 1) ++c.out_of_order;
    c.last_seq = seq;
    ++c.events;
    ++events_;
    event_bytes_ += text.size();
  } else if (text.find("\"type\":\"subscribed\"") != std::string_view::npos) {
    c.subscribed = true;
    subscribed_.fetch_add(1);
  }
}

}  // namespace atelier::bench
