// Reading the small files of a model folder (configs, vocabularies, images): one place for the
// "missing file" error every loader reports the same way.
#pragma once

#include <string>

#include "common/status.h"

namespace atelier::sd {

// The whole file; not_found naming the path when it cannot be opened.
Result<std::string> read_model_file(const std::string& path);

// A gzip-compressed file, decompressed (at most `max_bytes`; bigger is an error).
Result<std::string> read_gzip_file(const std::string& path, size_t max_bytes = size_t{64} << 20);

// The CLIP vocabulary file Atelier ships (assets/clip/bpe_simple_vocab_16e6.txt.gz): beside an
// installed binary (<prefix>/share/atelier/clip/), else in the source tree it was built from.
std::string shipped_clip_vocab();

}  // namespace atelier::sd
