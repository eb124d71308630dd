// ImageStore: content addressing (SHA-256 names), atomic writes that leave no temp files, and the
// start-up sweep of temp files, orphans and their thumbnails.
#include "server/jobs/image_store.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "server/auth/token.h"
#include "tests/support/temp_dir.h"

namespace atelier::jobs {
namespace {

namespace fs = std::filesystem;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

// SHA-256 test vectors (FIPS 180-2).
constexpr std::string_view kShaAbc =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr std::string_view kShaEmpty =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Every regular file under `dir`, recursively, hidden ones included.
std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  return out;
}

size_t count_with_extension(const fs::path& dir, std::string_view ext) {
  size_t n = 0;
  for (const fs::path& p : files_under(dir)) n += p.extension() == ext ? 1 : 0;
  return n;
}

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = ImageStore::open(tmp_ / "media");
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(store).value();
  }

  StoredFile put(std::string_view bytes) {
    auto r = store_->put(as_bytes(bytes));
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : StoredFile{};
  }

  TempDir tmp_{"atelier-image-store-test"};
  std::unique_ptr<ImageStore> store_;
};

TEST(ImageStoreOpenTest, CreatesTheDirectories) {
  TempDir tmp("atelier-image-store-test");
  fs::path root = tmp / "a/b/media";
  ASSERT_FALSE(fs::exists(root));
  auto store = ImageStore::open(root);
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  EXPECT_TRUE(fs::is_directory(root / "images"));
  EXPECT_TRUE(fs::is_directory(root / "thumbs"));
  EXPECT_EQ((*store)->root(), root);
  // Every fan-out directory exists before the first put, so puts never create one.
  int dirs = 0;
  for (const auto& entry : fs::directory_iterator(root / "images")) {
    EXPECT_TRUE(entry.is_directory()) << entry.path();
    EXPECT_EQ(entry.path().filename().string().size(), 2u);
    ++dirs;
  }
  EXPECT_EQ(dirs, 256);
}

TEST(ImageStoreOpenTest, PutRecreatesAFanOutDirectoryRemovedBehindItsBack) {
  TempDir tmp("atelier-image-store-test");
  auto store = ImageStore::open(tmp / "media");
  ASSERT_TRUE(store.is_ok());
  const fs::path dir = (*store)->path_for(auth::sha256_hex("abc")).parent_path();
  ASSERT_TRUE(fs::remove(dir));
  auto put = (*store)->put(as_bytes("abc"));
  ASSERT_TRUE(put.is_ok()) << put.status().to_string();
  EXPECT_EQ(read_file((*store)->path_for(put->sha256)), "abc");
}

TEST(ImageStoreOpenTest, OpensAnExistingStoreKeepingItsFiles) {
  TempDir tmp("atelier-image-store-test");
  std::string sha;
  {
    auto store = ImageStore::open(tmp / "media");
    ASSERT_TRUE(store.is_ok());
    auto put = (*store)->put(as_bytes("abc"));
    ASSERT_TRUE(put.is_ok());
    sha = put->sha256;
  }
  auto again = ImageStore::open(tmp / "media");
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(read_file((*again)->path_for(sha)), "abc");
}

TEST(ImageStoreOpenTest, FailsWhenTheRootIsAFile) {
  TempDir tmp("atelier-image-store-test");
  write_file(tmp / "media", "not a directory");
  auto store = ImageStore::open(tmp / "media");
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), StatusCode::kIoError);
}

TEST_F(ImageStoreTest, PathForUsesTwoHexSubdirectory) {
  EXPECT_EQ(store_->path_for(std::string(kShaAbc)),
            tmp_ / "media" / "images" / "ba" / (std::string(kShaAbc) + ".png"));
}

TEST_F(ImageStoreTest, ThumbPathNamesShaSizeAndExtension) {
  EXPECT_EQ(store_->thumb_path(std::string(kShaAbc), 256, "webp"),
            tmp_ / "media" / "thumbs" / (std::string(kShaAbc) + "-256.webp"));
}

TEST_F(ImageStoreTest, PutReturnsTheSha256AndSize) {
  StoredFile f = put("abc");
  EXPECT_EQ(f.sha256, kShaAbc);
  EXPECT_EQ(f.bytes, 3);
}

TEST_F(ImageStoreTest, PutOfNoBytesUsesTheEmptyDigest) {
  StoredFile f = put("");
  EXPECT_EQ(f.sha256, kShaEmpty);
  EXPECT_EQ(f.bytes, 0);
  EXPECT_TRUE(fs::is_regular_file(store_->path_for(f.sha256)));
  EXPECT_EQ(fs::file_size(store_->path_for(f.sha256)), 0u);
}

TEST_F(ImageStoreTest, FileLandsAtPathForWithExactlyTheBytes) {
  std::string bytes("\x89PNG\r\n\x1a\n\0\0binary\xff", 16);
  StoredFile f = put(bytes);
  fs::path p = store_->path_for(f.sha256);
  ASSERT_TRUE(fs::is_regular_file(p));
  EXPECT_EQ(read_file(p), bytes);
  EXPECT_EQ(f.bytes, static_cast<int64_t>(bytes.size()));
}

TEST_F(ImageStoreTest, IdenticalBytesAreStoredOnce) {
  StoredFile a = put("same bytes");
  StoredFile b = put("same bytes");
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_EQ(a.bytes, b.bytes);
  std::vector<fs::path> files = files_under(tmp_ / "media" / "images");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0], store_->path_for(a.sha256));
}

TEST_F(ImageStoreTest, DifferentBytesGetDifferentFiles) {
  StoredFile a = put("one");
  StoredFile b = put("two");
  EXPECT_NE(a.sha256, b.sha256);
  EXPECT_EQ(read_file(store_->path_for(a.sha256)), "one");
  EXPECT_EQ(read_file(store_->path_for(b.sha256)), "two");
}

TEST_F(ImageStoreTest, PutLeavesNoTempFiles) {
  for (int i = 0; i < 20; ++i) put("image " + std::to_string(i));
  EXPECT_EQ(count_with_extension(tmp_ / "media", ".tmp"), 0u);
  EXPECT_EQ(count_with_extension(tmp_ / "media" / "images", ".png"), 20u);
}

TEST_F(ImageStoreTest, PutRepairsATruncatedFileAtTheAddress) {
  // A file of the wrong length at the address (not written by put) is replaced by the content.
  fs::path p = store_->path_for(std::string(kShaAbc));
  write_file(p, "a");
  StoredFile f = put("abc");
  EXPECT_EQ(f.sha256, kShaAbc);
  EXPECT_EQ(read_file(p), "abc");
}

TEST_F(ImageStoreTest, PutThumbWritesTheBytesAndNoTempFile) {
  StoredFile f = put("abc");
  fs::path thumb = store_->thumb_path(f.sha256, 128, "jpg");
  ASSERT_TRUE(store_->put_thumb(thumb, as_bytes("thumb v1")).is_ok());
  EXPECT_EQ(read_file(thumb), "thumb v1");
  // Replacing an existing thumbnail swaps the whole file.
  ASSERT_TRUE(store_->put_thumb(thumb, as_bytes("v2")).is_ok());
  EXPECT_EQ(read_file(thumb), "v2");
  EXPECT_EQ(count_with_extension(tmp_ / "media", ".tmp"), 0u);
  EXPECT_EQ(files_under(tmp_ / "media" / "thumbs").size(), 1u);
}

TEST_F(ImageStoreTest, PutThumbIntoAMissingDirectoryFailsAndLeavesNothing) {
  fs::path thumb = tmp_ / "media" / "nowhere" / "x-1.png";
  Status st = store_->put_thumb(thumb, as_bytes("x"));
  EXPECT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_FALSE(fs::exists(thumb));
}

TEST_F(ImageStoreTest, SweepOfAnEmptyStoreRemovesNothing) {
  auto report = store_->sweep({});
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_EQ(report->temp_files_removed, 0);
  EXPECT_EQ(report->orphans_removed, 0);
  EXPECT_EQ(report->thumbs_removed, 0);
}

TEST_F(ImageStoreTest, SweepRemovesTempFilesOrphansAndTheirThumbs) {
  StoredFile kept = put("kept");
  StoredFile orphan1 = put("orphan one");
  StoredFile orphan2 = put("orphan two");
  fs::path kept_thumb = store_->thumb_path(kept.sha256, 256, "webp");
  fs::path orphan_thumb_a = store_->thumb_path(orphan1.sha256, 256, "webp");
  fs::path orphan_thumb_b = store_->thumb_path(orphan1.sha256, 64, "png");
  ASSERT_TRUE(store_->put_thumb(kept_thumb, as_bytes("k")).is_ok());
  ASSERT_TRUE(store_->put_thumb(orphan_thumb_a, as_bytes("o")).is_ok());
  ASSERT_TRUE(store_->put_thumb(orphan_thumb_b, as_bytes("o")).is_ok());

  // Temp files a crash left behind: hidden ones (put's own naming) in the 2-hex directories of
  // existing and of otherwise empty prefixes, and a plain one.
  fs::path images = tmp_ / "media" / "images";
  std::vector<fs::path> temps = {
      images / kept.sha256.substr(0, 2) / ".123-4.tmp",
      images / "0f" / ".77-0.tmp",
      images / "0f" / ".77-1.tmp",
      images / "aa" / "half-written.tmp",
  };
  for (const fs::path& t : temps) write_file(t, "partial");

  auto report = store_->sweep({kept.sha256});
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_EQ(report->temp_files_removed, 4);
  EXPECT_EQ(report->orphans_removed, 2);
  EXPECT_EQ(report->thumbs_removed, 2);

  for (const fs::path& t : temps) EXPECT_FALSE(fs::exists(t)) << t;
  EXPECT_FALSE(fs::exists(store_->path_for(orphan1.sha256)));
  EXPECT_FALSE(fs::exists(store_->path_for(orphan2.sha256)));
  EXPECT_FALSE(fs::exists(orphan_thumb_a));
  EXPECT_FALSE(fs::exists(orphan_thumb_b));
  EXPECT_EQ(read_file(store_->path_for(kept.sha256)), "kept");
  EXPECT_EQ(read_file(kept_thumb), "k");
  EXPECT_EQ(count_with_extension(tmp_ / "media", ".tmp"), 0u);

  // A second sweep finds nothing left to do.
  auto again = store_->sweep({kept.sha256});
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->temp_files_removed, 0);
  EXPECT_EQ(again->orphans_removed, 0);
  EXPECT_EQ(again->thumbs_removed, 0);
}

TEST_F(ImageStoreTest, SweepKeepsEveryReferencedFile) {
  std::unordered_set<std::string> referenced;
  for (int i = 0; i < 10; ++i) referenced.insert(put("img" + std::to_string(i)).sha256);
  auto report = store_->sweep(referenced);
  ASSERT_TRUE(report.is_ok());
  EXPECT_EQ(report->orphans_removed, 0);
  for (const std::string& sha : referenced) EXPECT_TRUE(fs::exists(store_->path_for(sha)));
}

TEST_F(ImageStoreTest, SweepWithNothingReferencedRemovesAllImages) {
  put("a");
  put("b");
  put("c");
  auto report = store_->sweep({});
  ASSERT_TRUE(report.is_ok());
  EXPECT_EQ(report->orphans_removed, 3);
  EXPECT_EQ(count_with_extension(tmp_ / "media" / "images", ".png"), 0u);
}

TEST_F(ImageStoreTest, SweepRemovesTempFilesInTheThumbsDirectory) {
  StoredFile kept = put("kept");
  fs::path temp = tmp_ / "media" / "thumbs" / ".9-9.tmp";
  write_file(temp, "partial thumb");
  auto report = store_->sweep({kept.sha256});
  ASSERT_TRUE(report.is_ok());
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_EQ(report->orphans_removed, 0);
}

TEST_F(ImageStoreTest, PutAfterSweepStoresTheFileAgain) {
  StoredFile f = put("comes back");
  ASSERT_TRUE(store_->sweep({}).is_ok());
  ASSERT_FALSE(fs::exists(store_->path_for(f.sha256)));
  StoredFile g = put("comes back");
  EXPECT_EQ(g.sha256, f.sha256);
  EXPECT_EQ(read_file(store_->path_for(f.sha256)), "comes back");
}

}  // namespace
}  // namespace atelier::jobs
