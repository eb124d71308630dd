// HttpSession's streaming responses (Response::stream: SSE and other long bodies), apart from
// the request/response cycle in session.cpp. Same strand, same rules (session.h).
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <exception>
#include <sstream>

#include "common/logging.h"
#include "server/http/response_head.h"
#include "server/http/session.h"

namespace atelier::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using detail::copy_headers;

// Streaming responses use chunked transfer-coding on HTTP/1.1 and a close-delimited body on
// HTTP/1.0 (which has no chunking), always with `Connection: close`. Chunking costs a few bytes
// per write but lets a client tell a stream that ended properly (the zero-size last chunk) from
// one cut off by a dropped connection (byte cap, write timeout); `curl -N` and EventSource read
// it like any other body.
void Session::start_stream(Response r, unsigned version) {
  const bool bodiless_status = r.status == 204 || r.status == 304 || r.status < 200;
  const bool has_body = !request_is_head_ && !bodiless_status;
  stream_chunked_ = version >= 11 && !bodiless_status;

  bhttp::response<bhttp::empty_body> head{static_cast<bhttp::status>(r.status), version};
  copy_headers(r, head);
  head.erase(bhttp::field::content_length);
  head.erase(bhttp::field::transfer_encoding);
  // Events must reach the client as they happen, not from some cache's stale copy.
  if (head.find(bhttp::field::cache_control) == head.end()) {
    head.set(bhttp::field::cache_control, "no-cache");
  }
  head.set(bhttp::field::connection, "close");
  // A HEAD answer carries the headers a GET would get, chunking included.
  if (stream_chunked_) head.set(bhttp::field::transfer_encoding, "chunked");
  std::ostringstream header_text;
  header_text << head.base();
  stream_out_.clear();
  stream_out_.push_back(std::move(header_text).str());

  if (!has_body) {
    phase_ = Phase::kWriting;
    stream_.expires_after(state_->options.read_timeout);
    net::async_write(stream_, net::buffer(stream_out_.front()),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->on_written(/*keep_alive=*/false, ec);
                     });
    return;
  }

  phase_ = Phase::kStreaming;
  writer_ =
      std::make_shared<SessionStreamWriter>(weak_from_this(), state_->options.stream_queue_bytes);
  buffer_.consume(buffer_.size());  // anything pipelined after this request goes unanswered
  stream_.expires_never();          // no read or idle timeout; each write sets its own deadline
  watch_for_disconnect();
  write_stream_out(0, StreamWrite::kRaw);  // the header
  auto produce = std::move(r.stream);
  try {
    produce(writer_);
  } catch (const std::exception& e) {
    log::error("stream producer for {} threw: {}", remote_, e.what());
    return close_now();
  } catch (...) {
    log::error("stream producer for {} threw", remote_);
    return close_now();
  }
  // Started while the server drains: the client gets what the producer wrote at once, then the
  // end, like every other open stream.
  if (state_->draining.load()) {
    writer_->stop_accepting();
    pump_stream();
  }
}

void Session::wake_stream() {
  if (state_->io_stopped.load()) return;
  // Weak: a queued wake must not keep the session (and through it the io_context that holds
  // the wake) alive.
  net::post(stream_.get_executor(), [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->pump_stream();
  });
}

void Session::pump_stream() {
  if (phase_ != Phase::kStreaming) return;
  // Checked first: a client that overflows the cap usually has a write stuck in flight, and
  // dropping the connection is what ends it.
  if (writer_->cut_off()) {
    log::warn("stream to {} cut off: the client fell more than {} bytes behind", remote_,
              state_->options.stream_queue_bytes);
    return close_now();
  }
  if (stream_writing_ || stream_done_) return;
  stream_out_.clear();
  auto taken = writer_->take(stream_out_);
  if (taken.bytes > 0) {
    // One chunk per socket write, however many writes the producer made meanwhile.
    return write_stream_out(taken.bytes, stream_chunked_ ? StreamWrite::kChunk : StreamWrite::kRaw);
  }
  if (!taken.closing) return;  // nothing to do until the producer writes or closes
  stream_done_ = true;
  if (!stream_chunked_) return finish_stream();
  write_stream_out(0, StreamWrite::kLastChunk);  // a clean end, not a cut-off
}

void Session::write_stream_out(size_t counted, StreamWrite how) {
  std::vector<net::const_buffer> buffers;
  buffers.reserve(stream_out_.size());
  for (const auto& s : stream_out_) {
    if (!s.empty()) buffers.emplace_back(net::buffer(s));
  }
  stream_writing_ = true;
  // With the disconnect watch pending, this deadline applies to the write alone.
  stream_.expires_after(state_->options.read_timeout);
  auto done = [self = shared_from_this(), counted](beast::error_code ec, size_t) {
    self->on_stream_written(ec, counted);
  };
  // Beast frames the chunks (chunk_encode.hpp): size line, data and CRLF; the last one empty.
  switch (how) {
    case StreamWrite::kRaw:
      return net::async_write(stream_, buffers, std::move(done));
    case StreamWrite::kChunk:
      return net::async_write(stream_, bhttp::make_chunk(std::move(buffers)), std::move(done));
    case StreamWrite::kLastChunk:
      return net::async_write(stream_, bhttp::make_chunk_last(), std::move(done));
  }
}

void Session::on_stream_written(beast::error_code ec, size_t counted) {
  stream_writing_ = false;
  stream_out_.clear();
  writer_->written(counted);
  if (ec) {
    if (ec == beast::error::timeout) log::info("stream to {} dropped: write timed out", remote_);
    return close_now();
  }
  if (phase_ != Phase::kStreaming) return;
  if (stream_done_) return finish_stream();
  pump_stream();
}

void Session::watch_for_disconnect() {
  stream_reading_ = true;
  stream_.async_read_some(
      buffer_.prepare(512),
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_stream_read(ec); });
}

void Session::on_stream_read(beast::error_code ec) {
  stream_reading_ = false;
  if (phase_ != Phase::kStreaming) return;
  if (stream_done_ && !stream_writing_) return close_after_response();  // cancelled to finish
  if (ec) return close_now();  // EOF or reset: the client has gone
  watch_for_disconnect();      // the client sent something; a stream expects nothing, so drop it
}

void Session::finish_stream() {
  end_stream();
  // close_after_response drains with reads of its own, so the watch must end first; its
  // handler then closes.
  if (stream_reading_) return stream_.cancel();
  close_after_response();
}

void Session::end_stream() {
  if (writer_) writer_->end();
}

}  // namespace atelier::http
