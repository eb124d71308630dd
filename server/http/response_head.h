// The headers every response of the HTTP session carries (Server, Date) and the copy of a
// Response's own headers onto a Beast message: shared by session.cpp (plain responses) and
// session_stream.cpp (streaming ones). Internal to server/http.
#pragma once

#include <boost/beast/http/message.hpp>
#include <ctime>
#include <string_view>

#include "server/http/message.h"

namespace atelier::http::detail {

// IMF-fixdate for the Date header, recomputed at most once a second per thread.
inline std::string_view http_date() {
  thread_local std::time_t cached_second = 0;
  thread_local char buf[64];
  thread_local size_t len = 0;
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    len = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return {buf, len};
}

template <class Body>
void copy_headers(const Response& from, boost::beast::http::response<Body>& to) {
  namespace bhttp = boost::beast::http;
  to.set(bhttp::field::server, "atelier");
  to.set(bhttp::field::date, http_date());
  for (const auto& f : from.headers) to.insert(f.name, f.value);
}

}  // namespace atelier::http::detail
