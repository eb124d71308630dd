#include "server/http/websocket.h"

#include <gtest/gtest.h>

namespace atelier::http {
namespace {

Request upgrade() {
  Request r;
  r.method = Method::kGet;
  r.version = 11;
  r.headers.set("Upgrade", "websocket");
  r.headers.set("Connection", "keep-alive, Upgrade");
  r.headers.set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
  r.headers.set("Sec-WebSocket-Version", "13");
  return r;
}

TEST(WebSocketUpgradeTest, RecognisesAnUpgradeAsBrowsersSendIt) {
  EXPECT_TRUE(is_websocket_upgrade(upgrade()));
  Request lower = upgrade();
  lower.headers.set("Upgrade", "WebSocket");
  lower.headers.set("Connection", "upgrade");
  EXPECT_TRUE(is_websocket_upgrade(lower)) << "tokens are case-insensitive";
}

TEST(WebSocketUpgradeTest, AnythingLessIsNotOne) {
  Request post = upgrade();
  post.method = Method::kPost;
  EXPECT_FALSE(is_websocket_upgrade(post));
  Request old = upgrade();
  old.version = 10;
  EXPECT_FALSE(is_websocket_upgrade(old));
  for (const char* missing : {"Upgrade", "Connection", "Sec-WebSocket-Key"}) {
    Request r = upgrade();
    r.headers.remove(missing);
    EXPECT_FALSE(is_websocket_upgrade(r)) << "without " << missing;
  }
  Request v8 = upgrade();
  v8.headers.set("Sec-WebSocket-Version", "8");
  EXPECT_FALSE(is_websocket_upgrade(v8));
  Request h2c = upgrade();
  h2c.headers.set("Upgrade", "h2c");
  EXPECT_FALSE(is_websocket_upgrade(h2c));
  Request no_token = upgrade();
  no_token.headers.set("Connection", "keep-alive, upgrades");
  EXPECT_FALSE(is_websocket_upgrade(no_token));
}

}  // namespace
}  // namespace atelier::http
