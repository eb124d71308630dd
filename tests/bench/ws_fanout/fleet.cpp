#include "tests/bench/ws_fanout/fleet.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

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

// A client frame (clients must mask; a zero key leaves the payload as it is).
std::string client_frame(uint8_t opcode, std::string_view payload) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  f.append(4, '\0');
  f.append(payload);
  return f;
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
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n";
  if (!auth.empty()) request += "Authorization: " + auth + "\r\n";
  request += "\r\n";
  std::string hello;
  for (const auto& m : greeting) hello += client_frame(0x1, m);
  for (size_t i = 0; i < n; ++i) {
    auto c = std::make_unique<Client>();
    c->fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || ::connect(c->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::fprintf(stderr, "connect %zu: %s\n", i, std::strerror(errno));
      return false;
    }
    const int one = 1;
    ::setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!send_all(c->fd, request)) return false;
    // The response, up to its blank line; anything after it is the first frames.
    char buf[4096];
    while (c->in.find("\r\n\r\n") == std::string::npos) {
      const ssize_t got = ::recv(c->fd, buf, sizeof buf, 0);
      if (got <= 0) {
        std::fprintf(stderr, "handshake %zu: connection closed\n", i);
        return false;
      }
      c->in.append(buf, static_cast<size_t>(got));
    }
    if (c->in.rfind("HTTP/1.1 101", 0) != 0) {
      std::fprintf(stderr, "handshake %zu: %s\n", i, c->in.substr(0, c->in.find('\r')).c_str());
      return false;
    }
    c->in.erase(0, c->in.find("\r\n\r\n") + 4);
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
  for (;;) {
    const size_t avail = c.in.size() - at;
    if (avail < 2) break;
    const auto* p = reinterpret_cast<const uint8_t*>(c.in.data() + at);
    const uint8_t opcode = p[0] & 0x0f;
    uint64_t len = p[1] & 0x7f;
    size_t header = 2;
    if (len == 126) {
      if (avail < 4) break;
      len = (uint64_t{p[2]} << 8) | p[3];
      header = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int k = 0; k < 8; ++k) len = (len << 8) | p[2 + k];
      header = 10;
    }
    if (avail < header + len) break;
    const std::string_view payload(c.in.data() + at + header, len);
    if (opcode == 0x1 || opcode == 0x2) {
      on_message(c, payload, opcode == 0x1);
    } else if (opcode == 0x9) {
      send_all(c.fd, client_frame(0xA, payload));  // pong
    } else if (opcode == 0x8) {
      c.closed = true;
    }
    at += header + len;
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
