// The load generator's subscribers for ws_fanout: N WebSocket clients read by one thread with
// epoll, speaking just enough of RFC 6455 for the benchmark (handshake, masked text frames out,
// unmasked frames in, pong for ping). No Beast here on purpose: a general client library spent
// more CPU per message than the servers under test at a few thousand subscribers, and the
// generator must not be the bottleneck.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace atelier::bench {

int64_t now_us();  // wall clock, as the servers stamp `at_us`
void pin_to_cpu(int cpu);

class Fleet {
 public:
  struct Client {
    int fd = -1;
    std::string in;  // bytes received and not yet parsed
    int64_t last_seq = 0;
    uint64_t events = 0;
    uint64_t out_of_order = 0;
    bool subscribed = false;
    bool closed = false;
  };

  Fleet();
  ~Fleet();

  // Connects and handshakes every client (one at a time, blocking), sends each the `greeting`
  // text messages, then starts the reader thread (pinned to `cpu`).
  bool open(uint16_t port, const std::string& target, const std::string& auth, size_t n,
            const std::vector<std::string>& greeting, int cpu);
  // Waits until every client has seen `subscribed` (Atelier) or returns at once (references).
  bool wait_subscribed(bool needed, std::chrono::seconds timeout);
  void start_measuring() { measuring_ = true; }
  void stop_measuring() { measuring_ = false; }
  // Progress of this job is not counted (the warm-up job; its events still are).
  void skip_job(int64_t job) { skip_job_ = job; }
  // Stops the reader and closes every socket.
  void stop();

  std::vector<double>& latencies_ms() { return latencies_; }
  const std::vector<std::unique_ptr<Client>>& clients() const { return clients_; }
  uint64_t preview_bytes() const { return preview_bytes_; }
  uint64_t previews() const { return previews_; }
  uint64_t event_bytes() const { return event_bytes_; }
  uint64_t events() const { return events_; }

  bool trace_ = false;
  std::map<int64_t, std::vector<double>> per_step_;  // job * 100 + step -> latencies

 private:
  void run();
  void on_readable(Client& c);
  void on_message(Client& c, std::string_view payload, bool text);

  int epoll_ = -1;
  std::vector<std::unique_ptr<Client>> clients_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> measuring_{false};
  std::atomic<int64_t> skip_job_{0};
  std::atomic<size_t> subscribed_{0};
  std::vector<double> latencies_;  // reader thread only until stop()
  uint64_t previews_ = 0, preview_bytes_ = 0, events_ = 0, event_bytes_ = 0;
};

}  // namespace atelier::bench
