// Reading the small files of a model folder (configs, vocabularies, images): one place for the
// "missing file" error every loader reports the same way.
#pragma once

#include <string>

#include "common/status.h"

namespace atelier::sd {

// The whole file; not_found naming the path when it cannot be opened.
Result<std::string> read_model_file(const std::string& path);

}  // namespace atelier::sd
