// Run: one attempt at a job, from the claim that starts it to the completion that ends it. The
// worker that executes it holds this handle; everything the server tracks about runs in
// progress is in RunTable (run_table.h), keyed by job id and fenced by `job.attempt`.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "server/inference/generator.h"
#include "server/jobs/job.h"

namespace atelier::jobs {

struct Run {
  Job job;  // as claimed: state running, `attempt` names this run
  std::optional<inference::ParentImage> parent;
  std::shared_ptr<inference::CancelToken> cancel;
  std::string worker;
  std::string mask_png_path;  // inpaint: the mask image's file ("" when it is gone)
};

}  // namespace atelier::jobs
