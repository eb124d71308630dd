// sha256 of model files and the cache that spares re-reading them: reads are counted through
// an injected streamer, so "cached" means "not read", not "fast".
#include "server/inference/file_hash.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/temp_dir.h"

namespace atelier::inference {
namespace {

namespace fs = std::filesystem;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

// sha256("abc") and sha256("") from FIPS 180-2.
constexpr char kAbc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kEmpty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Streams through stream_file() and counts the files and chunks read.
struct CountingStreamer {
  std::shared_ptr<std::atomic<int>> files = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::atomic<int>> chunks = std::make_shared<std::atomic<int>>(0);
  FileStreamer get() const {
    return [files = files, chunks = chunks](const fs::path& path, const ChunkSink& sink) {
      ++*files;
      return stream_file(path, [&](std::string_view c) {
        ++*chunks;
        sink(c);
      });
    };
  }
};

// Moves a file's mtime, as an edit in the same second might not.
void touch(const fs::path& path, std::chrono::seconds delta) {
  fs::last_write_time(path, fs::last_write_time(path) + delta);
}

TEST(FileHashTest, KnownDigests) {
  TempDir dir("atelier-hash-test");
  write_file(dir / "abc", "abc");
  write_file(dir / "empty", "");
  EXPECT_EQ(*sha256_file(dir / "abc"), kAbc);
  EXPECT_EQ(*sha256_file(dir / "empty"), kEmpty);
  auto missing = sha256_file(dir / "none");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(FileHashTest, StreamsInOneMebibyteChunks) {
  TempDir dir("atelier-hash-test");
  std::string big(kHashChunkBytes * 2 + 123, 'x');
  write_file(dir / "big", big);
  CountingStreamer counter;
  auto hash = sha256_file(dir / "big", counter.get());
  ASSERT_TRUE(hash.is_ok());
  EXPECT_EQ(*counter.chunks, 3);
  // The same digest as one read of everything.
  auto whole = sha256_file(dir / "big", [&](const fs::path&, const ChunkSink& sink) {
    sink(big);
    return Status::ok();
  });
  EXPECT_EQ(*hash, *whole);
}

TEST(FileHashTest, ShortForms) {
  EXPECT_EQ(short_model_hash(kAbc), "ba7816bf8f");
  EXPECT_EQ(short_lora_hash(kAbc), "ba7816bf8f01");
  EXPECT_EQ(short_model_hash("abc"), "abc");
}

TEST(FileHashCacheTest, ASecondAskIsAnsweredWithoutReading) {
  TempDir dir("atelier-hash-test");
  write_file(dir / "model.safetensors", "abc");
  CountingStreamer counter;
  FileHashCache cache(dir / "hashes.json", counter.get());
  EXPECT_EQ(*cache.sha256(dir / "model.safetensors"), kAbc);
  EXPECT_EQ(*cache.sha256(dir / "model.safetensors"), kAbc);
  EXPECT_EQ(*counter.files, 1);
  EXPECT_EQ(cache.files_hashed(), 1);
}

TEST(FileHashCacheTest, ARestartReadsTheCacheFileInsteadOfTheModel) {
  TempDir dir("atelier-hash-test");
  write_file(dir / "model.safetensors", "abc");
  {
    FileHashCache first(dir / "hashes.json");
    ASSERT_TRUE(first.sha256(dir / "model.safetensors").is_ok());
  }
  ASSERT_TRUE(fs::exists(dir / "hashes.json"));
  auto doc = nlohmann::json::parse(read_file(dir / "hashes.json"));
  const std::string key = fs::absolute(dir / "model.safetensors").lexically_normal().string();
  ASSERT_TRUE(doc["files"].contains(key)) << doc.dump();
  EXPECT_EQ(doc["files"][key]["sha256"], kAbc);
  EXPECT_EQ(doc["files"][key]["size"], 3);

  CountingStreamer counter;
  FileHashCache second(dir / "hashes.json", counter.get());
  EXPECT_EQ(*second.sha256(dir / "model.safetensors"), kAbc);
  EXPECT_EQ(*counter.files, 0) << "answered from the cache file";
  // A relative spelling of the same file finds the same entry.
  fs::path old = fs::current_path();
  fs::current_path(dir.path());
  auto relative = second.sha256("./sub/../model.safetensors");
  fs::current_path(old);
  EXPECT_EQ(*relative, kAbc);
  EXPECT_EQ(*counter.files, 0);
}

TEST(FileHashCacheTest, AChangedFileIsHashedAgain) {
  TempDir dir("atelier-hash-test");
  write_file(dir / "m", "abc");
  CountingStreamer counter;
  FileHashCache cache(dir / "hashes.json", counter.get());
  EXPECT_EQ(*cache.sha256(dir / "m"), kAbc);

  // Same size, new content and mtime.
  write_file(dir / "m", "abd");
  touch(dir / "m", std::chrono::seconds(5));
  auto changed = cache.sha256(dir / "m");
  EXPECT_NE(*changed, kAbc);
  EXPECT_EQ(*changed, *sha256_file(dir / "m"));
  EXPECT_EQ(*counter.files, 2);

  // A new size.
  write_file(dir / "m", "");
  auto emptied = cache.sha256(dir / "m");
  EXPECT_EQ(*emptied, kEmpty);
  EXPECT_EQ(*counter.files, 3);

  // Only the mtime moves: hashed again (the content could have changed).
  touch(dir / "m", std::chrono::seconds(7));
  EXPECT_EQ(*cache.sha256(dir / "m"), kEmpty);
  EXPECT_EQ(*counter.files, 4);
  EXPECT_EQ(*cache.sha256(dir / "m"), kEmpty);
  EXPECT_EQ(*counter.files, 4);
}

TEST(FileHashCacheTest, ACorruptCacheFileIsIgnoredThenRewritten) {
  TempDir dir("atelier-hash-test");
  write_file(dir / "m", "abc");
  write_file(dir / "hashes.json", "{not json");
  CountingStreamer counter;
  {
    FileHashCache cache(dir / "hashes.json", counter.get());
    EXPECT_EQ(*cache.sha256(dir / "m"), kAbc);
  }
  EXPECT_EQ(*counter.files, 1);
  FileHashCache again(dir / "hashes.json", counter.get());
  EXPECT_EQ(*again.sha256(dir / "m"), kAbc);
  EXPECT_EQ(*counter.files, 1);
}

TEST(FileHashCacheTest, AForgedEntryForAnotherSizeIsNotTrusted) {
  TempDir dir("atelier-hash-test");
  write_file(dir / "m", "abc");
  const std::string key = fs::absolute(dir / "m").lexically_normal().string();
  nlohmann::json doc = {
      {"version", 1},
      {"files", {{key, {{"size", 999}, {"mtime_ns", 0}, {"sha256", std::string(64, 'a')}}}}}};
  write_file(dir / "hashes.json", doc.dump());
  FileHashCache cache(dir / "hashes.json");
  EXPECT_EQ(*cache.sha256(dir / "m"), kAbc);
}

TEST(FileHashCacheTest, EntriesOfDeletedFilesAreDroppedOnTheNextWrite) {
  TempDir dir("atelier-hash-test");
  write_file(dir / "a", "abc");
  write_file(dir / "b", "");
  FileHashCache cache(dir / "hashes.json");
  ASSERT_TRUE(cache.sha256(dir / "a").is_ok());
  fs::remove(dir / "a");
  ASSERT_TRUE(cache.sha256(dir / "b").is_ok());
  auto doc = nlohmann::json::parse(read_file(dir / "hashes.json"));
  EXPECT_EQ(doc["files"].size(), 1u) << doc.dump();
}

TEST(FileHashCacheTest, MissingFilesAndDirectoriesAreErrors) {
  TempDir dir("atelier-hash-test");
  FileHashCache cache("");  // memory only
  EXPECT_EQ(cache.sha256(dir / "none").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(cache.sha256(dir.path()).is_ok());
  EXPECT_EQ(cache.files_hashed(), 0);
}

TEST(FileHashCacheTest, AReadErrorIsReportedAndNothingRemembered) {
  TempDir dir("atelier-hash-test");
  write_file(dir / "m", "abc");
  int calls = 0;
  FileHashCache cache(dir / "hashes.json", [&](const fs::path&, const ChunkSink&) {
    ++calls;
    return Status::io_error("disk on fire");
  });
  EXPECT_EQ(cache.sha256(dir / "m").status().code(), StatusCode::kIoError);
  EXPECT_EQ(cache.sha256(dir / "m").status().code(), StatusCode::kIoError);
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(fs::exists(dir / "hashes.json"));
}

}  // namespace
}  // namespace atelier::inference
