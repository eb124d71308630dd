// Inpaint, outpaint and img2img from uploaded images through an in-process server: the `null`
// and `cppn` models always, sd-tiny (4-channel) and sd-tiny-inpaint9 (9-channel) when
// ../shared/fixtures has them. Uploads go in as raw PNG bodies; results are decoded and
// compared with the parent pixel by pixel (outside the blurred mask: within one 8-bit level).
// A second member's WebSocket sees the uploads and the jobs from queued to done; the refusals
// name their field and queue nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "common/image.h"
#include "tests/integration/job_test_helpers.h"
#include "tests/support/ws_client.h"

namespace atelier::apitest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
const fs::path kTiny = "../shared/fixtures/sd-tiny";
const fs::path kTiny9 = "../shared/fixtures/sd-tiny-inpaint9";

// A parent with structure everywhere (gradients and a fine pattern), so a pasted-back or shifted
// area would show.
image::Image photo(int w, int h) {
  image::Image img{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.pixels[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / std::max(1, w - 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(1, h - 1));
      p[2] = static_cast<uint8_t>(((x * 7 + y * 13) % 32) * 8);
    }
  }
  return img;
}

struct Rect {
  int x0, y0, x1, y1;  // [x0, x1) x [y0, y1)
};

// White inside `r`, black elsewhere (RGB); or, with `alpha`, opaque black with `r` transparent.
image::Image mask_image(int w, int h, Rect r, bool alpha = false) {
  const int ch = alpha ? 4 : 3;
  image::Image img{w, h, ch, std::vector<uint8_t>(static_cast<size_t>(w) * h * ch, 0)};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const bool in = x >= r.x0 && x < r.x1 && y >= r.y0 && y < r.y1;
      uint8_t* p = &img.pixels[(static_cast<size_t>(y) * w + x) * ch];
      if (alpha) {
        p[3] = in ? 0 : 255;
      } else {
        p[0] = p[1] = p[2] = in ? 255 : 0;
      }
    }
  }
  return img;
}

Reply upload_call(uint16_t port, const std::string& token, int64_t project, const image::Image& img,
                  const std::string& query = "?filename=photo.png") {
  auto png = image::encode_png(img);
  if (!png.is_ok()) throw std::runtime_error(png.status().to_string());
  return call(port, "POST", project_path(project, "/uploads" + query),
              std::string(png->begin(), png->end()),
              header_lines({bearer(token), "Content-Type: image/png"}));
}

nlohmann::json upload(uint16_t port, const std::string& token, int64_t project,
                      const image::Image& img, const std::string& query = "?filename=photo.png") {
  return expect_status(upload_call(port, token, project, img, query), 201, "upload").json["image"];
}

image::Image fetch_png(uint16_t port, const std::string& token, const nlohmann::json& image) {
  auto file = call(port, "GET", image["url"], "", bearer(token));
  auto decoded = image::decode_png(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(file.body.data()), file.body.size()));
  if (!decoded.is_ok()) throw std::runtime_error("result: " + decoded.status().to_string());
  return *decoded;
}

int pixel_diff(const image::Image& a, int ax, int ay, const image::Image& b, int bx, int by) {
  int worst = 0;
  for (int c = 0; c < 3; ++c) {
    const int va = a.pixels[(static_cast<size_t>(ay) * a.width + ax) * a.channels + c];
    const int vb = b.pixels[(static_cast<size_t>(by) * b.width + bx) * b.channels + c];
    worst = std::max(worst, std::abs(va - vb));
  }
  return worst;
}

// Compares `out` with `parent` placed at (dx, dy) in it: the largest difference over the parent's
// pixels farther than `margin` from `changed` (in parent coordinates), and the largest inside
// `changed` shrunk by `margin`.
struct Comparison {
  int outside = 0;
  int inside = 0;
  int outside_pixels = 0;
};
Comparison compare(const image::Image& parent, const image::Image& out, Rect changed, int margin,
                   int dx = 0, int dy = 0) {
  Comparison c;
  for (int y = 0; y < parent.height; ++y) {
    for (int x = 0; x < parent.width; ++x) {
      const int d = pixel_diff(parent, x, y, out, x + dx, y + dy);
      const bool far = x < changed.x0 - margin || x >= changed.x1 + margin ||
                       y < changed.y0 - margin || y >= changed.y1 + margin;
      const bool deep = x >= changed.x0 + margin && x < changed.x1 - margin &&
                        y >= changed.y0 + margin && y < changed.y1 - margin;
      if (far) {
        c.outside = std::max(c.outside, d);
        ++c.outside_pixels;
      }
      if (deep) c.inside = std::max(c.inside, d);
    }
  }
  return c;
}

// The blurred mask reaches 2.5 x mask_blur pixels (edit.h); two more for rounding and the
// binarised edge.
int margin_for(int mask_blur) {
  return (5 * mask_blur + 1) / 2 + 2;
}

// One server with the null and cppn models (and the sd fixtures when asked), a cast around one
// project, and the viewer's WebSocket subscribed to it.
class EditJobsTest : public ::testing::Test {
 protected:
  void start(bool sd = false) {
    ServerConfig c = test_config(dir_);
    c.enable_null_model = true;
    if (sd) {
      c.models_dir = dir_ / "models";
      fs::create_directories(c.models_dir);
      fs::create_directory_symlink(fs::absolute(kTiny), c.models_dir / "tiny");
      fs::create_directory_symlink(fs::absolute(kTiny9), c.models_dir / "tiny9");
    }
    server_ = std::make_unique<TestServer>(c);
    port_ = server_->port();
    cast_ = make_project_cast(port_);
    ws_ = testing::WsClient::connect(port_, "/api/v1/ws", {{bearer(cast_.viewer.token)}, true});
    ASSERT_TRUE(ws_);
    ws_->send_json({{"type", "hello"}, {"proto", 1}});
    ASSERT_TRUE(ws_->wait_type("welcome"));
    ws_->send_json({{"type", "subscribe"}, {"project", cast_.project}, {"after_seq", 0}});
    ASSERT_TRUE(ws_->wait_type("subscribed"));
  }

  // The event of `type` about job `id` on the viewer's socket (waits for it).
  nlohmann::json job_event(const std::string& type, int64_t id) {
    auto m = ws_->wait_for(
        [&](const testing::WsMessage& m) {
          return !m.binary && m.json.value("type", "") == "event" &&
                 m.json["event"].value("type", "") == type &&
                 m.json["event"]["data"]["job"]["id"] == id;
        },
        30s);
    if (!m) throw std::runtime_error("no " + type + " event for job " + std::to_string(id));
    return m->json["event"]["data"]["job"];
  }

  // Runs a job to done and checks what every edit and img2img job shares: done, the parent's
  // lineage both ways, and the viewer saw it queued, started and done with its images.
  nlohmann::json run(const nlohmann::json& body, std::chrono::seconds timeout = 60s) {
    const int64_t id = submit_ok(port_, cast_.editor.token, cast_.project, body);
    nlohmann::json job = wait_terminal(port_, cast_.editor.token, id, timeout);
    EXPECT_EQ(job["state"], "done") << job.dump();
    if (job["state"] != "done") return job;
    EXPECT_EQ(job["mode"], body["mode"]);
    EXPECT_EQ(job["parent_image_id"], body["parent_image_id"]);
    const nlohmann::json done = job_event("job.done", id);
    job_event("job.queued", id);
    job_event("job.started", id);
    EXPECT_EQ(done["images"].size(), job["images"].size());
    EXPECT_EQ(done["mode"], body["mode"]);
    for (const auto& image : job["images"]) {
      EXPECT_EQ(image["parent_image_id"], body["parent_image_id"]);
      auto child = expect_status(call(port_, "GET", "/api/v1/images/" + image["id"].dump(), "",
                                      bearer(cast_.viewer.token)),
                                 200, "child");
      EXPECT_EQ(child.json["parent"]["id"], body["parent_image_id"]);
      auto parent =
          expect_status(call(port_, "GET", "/api/v1/images/" + body["parent_image_id"].dump(), "",
                             bearer(cast_.viewer.token)),
                        200, "parent");
      bool listed = false;
      for (const auto& kid : parent.json["children"]) listed = listed || kid["id"] == image["id"];
      EXPECT_TRUE(listed) << "the parent lists " << image["id"] << ": " << parent.json.dump();
    }
    return job;
  }

  // The upload, as the viewer's socket saw it arrive.
  nlohmann::json upload_seen(const image::Image& img) {
    nlohmann::json image = upload(port_, cast_.owner.token, cast_.project, img);
    EXPECT_EQ(image["source"], "upload");
    EXPECT_TRUE(image["job_id"].is_null());
    auto m = ws_->wait_for(
        [&](const testing::WsMessage& m) {
          return !m.binary && m.json.value("type", "") == "event" &&
                 m.json["event"].value("type", "") == "image.uploaded" &&
                 m.json["event"]["data"]["image"]["id"] == image["id"];
        },
        10s);
    EXPECT_TRUE(m) << "the viewer saw upload " << image["id"];
    return image;
  }

  // Inpaint (whole and masked), outpaint and variation/remix/upscale from an upload with
  // `model`; `extra` goes into every body (steps, sampler).
  void edits_and_img2img_from_an_upload(const std::string& model, const nlohmann::json& extra,
                                        int w, int h) {
    const image::Image parent_px = photo(w, h);
    const Rect hole{w / 4, h / 4, w / 4 + w / 2, h / 4 + h / 2};
    const nlohmann::json parent = upload_seen(parent_px);
    const nlohmann::json mask = upload_seen(mask_image(w, h, hole));
    auto body = [&](nlohmann::json fields) {
      nlohmann::json b = {{"model", model},
                          {"prompt", "a harbour at dusk"},
                          {"parent_image_id", parent["id"]},
                          {"seed", 11}};
      b.update(extra);
      b.update(fields);
      return b;
    };

    for (const char* area : {"whole", "masked"}) {
      SCOPED_TRACE(std::string(model) + " inpaint " + area);
      nlohmann::json job = run(body({{"mode", "inpaint"},
                                     {"mask_image_id", mask["id"]},
                                     {"mask_blur", 2},
                                     {"inpaint_area", area},
                                     {"strength", 1.0}}));
      if (job["state"] != "done") continue;
      EXPECT_EQ(job["mask_image_id"], mask["id"]);
      EXPECT_EQ(job["mask_blur"], 2);
      EXPECT_EQ(job["inpaint_area"], area);
      EXPECT_TRUE(job["extend"].is_null());
      EXPECT_EQ(job["width"], w);
      EXPECT_EQ(job["height"], h);
      image::Image out = fetch_png(port_, cast_.editor.token, job["images"][0]);
      ASSERT_EQ(out.width, w);
      ASSERT_EQ(out.height, h);
      Comparison c = compare(parent_px, out, hole, margin_for(2));
      EXPECT_GT(c.outside_pixels, w * h / 4);
      EXPECT_LE(c.outside, 1) << "outside the blurred mask the parent stays";
      EXPECT_GT(c.inside, 16) << "inside, the model painted";
    }

    {
      SCOPED_TRACE(model + " outpaint");
      nlohmann::json job = run(body({{"mode", "outpaint"},
                                     {"extend", {{"left", 16}, {"top", 8}, {"bottom", 8}}},
                                     {"mask_blur", 0}}));
      if (job["state"] == "done") {
        EXPECT_EQ(job["extend"],
                  (nlohmann::json{{"left", 16}, {"right", 0}, {"top", 8}, {"bottom", 8}}));
        EXPECT_EQ(job["mask_blur"], 0);
        EXPECT_TRUE(job["mask_image_id"].is_null());
        EXPECT_EQ(job["width"], w + 16);
        EXPECT_EQ(job["height"], h + 16);
        image::Image out = fetch_png(port_, cast_.editor.token, job["images"][0]);
        ASSERT_EQ(out.width, w + 16);
        ASSERT_EQ(out.height, h + 16);
        // The whole parent, shifted by the extension, is kept (mask_blur 0: no seam to soften).
        Comparison c = compare(parent_px, out, Rect{-1000, -1000, -999, -999}, 0, 16, 8);
        EXPECT_LE(c.outside, 1);
        EXPECT_EQ(c.outside_pixels, w * h);
      }
    }

    for (const char* mode : {"variation", "remix", "upscale"}) {
      SCOPED_TRACE(model + " " + mode + " of the upload");
      nlohmann::json job = run(body({{"mode", mode}}));
      if (job["state"] != "done") continue;
      const int factor = std::string(mode) == "upscale" ? 2 : 1;
      EXPECT_EQ(job["width"], w * factor);
      EXPECT_EQ(job["height"], h * factor);
      image::Image out = fetch_png(port_, cast_.editor.token, job["images"][0]);
      EXPECT_EQ(out.width, w * factor);
      EXPECT_EQ(out.height, h * factor);
    }
  }

  testing::TempDir dir_;
  std::unique_ptr<TestServer> server_;
  uint16_t port_ = 0;
  ProjectCast cast_;
  std::unique_ptr<testing::WsClient> ws_;
};

TEST_F(EditJobsTest, NullModelEditsAndImg2ImgFromAnUpload) {
  start();
  edits_and_img2img_from_an_upload("null", {{"steps", 2}}, 96, 64);
}

TEST_F(EditJobsTest, CppnModelEditsAndImg2ImgFromAnUpload) {
  start();
  edits_and_img2img_from_an_upload("cppn", {{"steps", 2}}, 96, 64);
}

// img2img from an upload honours strength: the further from 0, the further from the parent.
TEST_F(EditJobsTest, StrengthDecidesHowFarImg2ImgFromAnUploadGoes) {
  start();
  const image::Image parent_px = photo(96, 64);
  const nlohmann::json parent = upload_seen(parent_px);
  for (const char* model : {"null", "cppn"}) {
    std::vector<double> change;
    for (double strength : {0.0, 0.3, 0.9}) {
      SCOPED_TRACE(std::string(model) + " strength " + std::to_string(strength));
      nlohmann::json job = run({{"model", model},
                                {"prompt", "ocean"},
                                {"mode", "variation"},
                                {"parent_image_id", parent["id"]},
                                {"strength", strength},
                                {"steps", 2},
                                {"seed", 3}});
      ASSERT_EQ(job["state"], "done");
      image::Image out = fetch_png(port_, cast_.editor.token, job["images"][0]);
      ASSERT_EQ(out.width, 96);
      double sum = 0;
      for (size_t i = 0; i < out.pixels.size(); ++i) {
        sum += std::abs(int(out.pixels[i]) - int(parent_px.pixels[i]));
      }
      change.push_back(sum / static_cast<double>(out.pixels.size()));
    }
    EXPECT_LE(change[0], 1.0) << model << ": strength 0 keeps the upload";
    EXPECT_LT(change[0], change[1]) << model;
    EXPECT_LT(change[1], change[2]) << model;
  }
}

TEST_F(EditJobsTest, ATransparentMaskMarksWhatToRegenerate) {
  start();
  const image::Image parent_px = photo(64, 64);
  const Rect hole{16, 16, 48, 48};
  const nlohmann::json parent = upload_seen(parent_px);
  // Kept with its alpha: transparent = regenerate (as OpenAI's edits API).
  const nlohmann::json mask = upload(port_, cast_.owner.token, cast_.project,
                                     mask_image(64, 64, hole, /*alpha=*/true), "?alpha=keep");
  nlohmann::json job = run({{"model", "null"},
                            {"prompt", "x"},
                            {"mode", "inpaint"},
                            {"parent_image_id", parent["id"]},
                            {"mask_image_id", mask["id"]},
                            {"mask_blur", 1},
                            {"strength", 1.0}});
  ASSERT_EQ(job["state"], "done");
  Comparison c =
      compare(parent_px, fetch_png(port_, cast_.editor.token, job["images"][0]), hole, 4);
  EXPECT_LE(c.outside, 1);
  EXPECT_GT(c.inside, 16);
}

TEST_F(EditJobsTest, RefusalsNameTheirFieldAndQueueNothing) {
  start();
  const std::string& token = cast_.editor.token;
  const int64_t project = cast_.project;
  const int64_t parent = upload(port_, token, project, photo(96, 64))["id"];
  const int64_t mask = upload(port_, token, project, mask_image(96, 64, {8, 8, 40, 40}))["id"];
  const int64_t small_mask =
      upload(port_, token, project, mask_image(64, 64, {8, 8, 40, 40}))["id"];
  const int64_t black = upload(port_, token, project, mask_image(96, 64, {0, 0, 0, 0}))["id"];
  const int64_t wide = upload(port_, token, project, photo(8000, 8))["id"];
  const int64_t other_project = create_project(port_, cast_.owner.token, "Elsewhere");
  const int64_t foreign_mask =
      upload(port_, cast_.owner.token, other_project, mask_image(96, 64, {8, 8, 40, 40}))["id"];

  const nlohmann::json inpaint = {{"model", "null"},
                                  {"prompt", "x"},
                                  {"mode", "inpaint"},
                                  {"parent_image_id", parent},
                                  {"mask_image_id", mask}};
  const nlohmann::json outpaint = {{"model", "null"},
                                   {"prompt", "x"},
                                   {"mode", "outpaint"},
                                   {"parent_image_id", parent},
                                   {"extend", {{"right", 32}}}};
  auto with = [](nlohmann::json body, const nlohmann::json& change) {
    for (auto it = change.begin(); it != change.end(); ++it) {
      if (it.value().is_null()) {
        body.erase(it.key());
      } else {
        body[it.key()] = it.value();
      }
    }
    return body;
  };
  struct Case {
    nlohmann::json body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {with(inpaint, {{"mask_image_id", small_mask}}), "mask_image_id"},  // wrong size
      {with(inpaint, {{"mask_image_id", black}}), "mask_image_id"},       // empty
      {with(inpaint, {{"mask_image_id", foreign_mask}}), "mask_image_id"},
      {with(inpaint, {{"mask_image_id", 999999}}), "mask_image_id"},
      {with(inpaint, {{"mask_image_id", nullptr}}), "mask_image_id"},  // missing
      {with(inpaint, {{"width", 96}}), "width"},
      {with(inpaint, {{"height", 64}}), "height"},
      {with(inpaint, {{"extend", {{"left", 8}}}}), "extend"},
      {with(inpaint, {{"mask_blur", 65}}), "mask_blur"},
      {with(inpaint, {{"inpaint_area", "everything"}}), "inpaint_area"},
      {with(outpaint, {{"extend", nullptr}}), "extend"},  // missing
      {with(outpaint, {{"extend", {{"left", 0}}}}), "extend"},
      {with(outpaint, {{"extend", {{"left", 2049}}}}), "extend"},
      {with(outpaint, {{"extend", {{"up", 8}}}}), "extend"},
      {with(outpaint, {{"parent_image_id", wide}, {"extend", {{"right", 200}}}}), "extend"},
      {with(outpaint, {{"width", 128}}), "width"},
      {with(outpaint, {{"mask_image_id", mask}}), "mask_image_id"},
      {{{"model", "null"}, {"prompt", "x"}, {"mask_blur", 4}}, "mask_blur"},  // txt2img
      {{{"model", "null"}, {"prompt", "x"}, {"mask_image_id", mask}}, "mask_image_id"},
      {{{"model", "null"}, {"prompt", "x"}, {"extend", {{"left", 8}}}}, "extend"},
      {{{"model", "null"},
        {"prompt", "x"},
        {"mode", "variation"},
        {"parent_image_id", parent},
        {"inpaint_area", "masked"}},
       "inpaint_area"},
  };
  for (const Case& c : cases) {
    auto r = submit(port_, token, project, c.body);
    EXPECT_EQ(r.status, 400) << c.body.dump() << " -> " << r.body;
    EXPECT_EQ(r.error_field(), c.field) << c.body.dump() << " -> " << r.body;
  }
  // An empty mask says so.
  auto empty = submit(port_, token, project, with(inpaint, {{"mask_image_id", black}}));
  EXPECT_NE(empty.body.find("empty"), std::string::npos) << empty.body;
  // The viewer may not submit (the matrix covers the rest), and the mask is not read for them.
  EXPECT_EQ(submit(port_, cast_.viewer.token, project, inpaint).status, 403);
  EXPECT_EQ(submit(port_, cast_.stranger.token, project, inpaint).status, 404);
  // Nothing was queued by any of them.
  auto jobs = expect_status(call(port_, "GET", project_path(project, "/jobs"), "", bearer(token)),
                            200, "list");
  EXPECT_EQ(jobs.json["jobs"].size(), 0u) << jobs.json.dump();

  // The edit fields are part of what an Idempotency-Key retry must repeat.
  const std::string key = "Idempotency-Key: edit-1";
  ASSERT_EQ(submit(port_, token, project, inpaint, key).status, 202);
  EXPECT_EQ(submit(port_, token, project, inpaint, key).header("idempotent-replayed"), "true");
  EXPECT_EQ(submit(port_, token, project, with(inpaint, {{"mask_blur", 9}}), key).status, 422);
}

// Stable Diffusion: the 4-channel sd-tiny inpaints (whole and masked), outpaints and runs
// img2img from an upload; the 9-channel sd-tiny-inpaint9 inpaints and refuses a variation.
TEST_F(EditJobsTest, SdTinyEditsAndImg2ImgFromAnUpload) {
  if (!fs::exists(kTiny) || !fs::exists(kTiny9 / "unet")) {
    GTEST_SKIP() << "../shared/fixtures/sd-tiny or sd-tiny-inpaint9 is absent";
  }
  start(/*sd=*/true);
  edits_and_img2img_from_an_upload("tiny", {{"steps", 3}, {"sampler", "ddim"}}, 64, 64);

  const image::Image parent_px = photo(64, 64);
  const Rect hole{20, 12, 44, 40};
  const nlohmann::json parent = upload_seen(parent_px);
  const nlohmann::json mask = upload_seen(mask_image(64, 64, hole));
  nlohmann::json job = run({{"model", "tiny9"},
                            {"prompt", "a cat sitting on a wooden bench"},
                            {"mode", "inpaint"},
                            {"parent_image_id", parent["id"]},
                            {"mask_image_id", mask["id"]},
                            {"mask_blur", 2},
                            {"strength", 0.75},
                            {"steps", 3},
                            {"sampler", "euler"}});
  ASSERT_EQ(job["state"], "done") << job.dump();
  Comparison c = compare(parent_px, fetch_png(port_, cast_.editor.token, job["images"][0]), hole,
                         margin_for(2));
  EXPECT_LE(c.outside, 1);
  EXPECT_GT(c.inside, 16);
  auto refused = submit(port_, cast_.editor.token, cast_.project,
                        {{"model", "tiny9"},
                         {"prompt", "x"},
                         {"mode", "variation"},
                         {"parent_image_id", parent["id"]}});
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(refused.error_field(), "mode") << refused.body;
}

}  // namespace
}  // namespace atelier::apitest
