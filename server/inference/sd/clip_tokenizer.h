// ClipTokenizer: CLIP's byte-level BPE tokenizer, as Stable Diffusion's text encoder expects its
// input, loaded from a model folder's `tokenizer/vocab.json` and `merges.txt`.
//
// It follows OpenAI's reference tokenizer (CLIP's simple_tokenizer.py, which the fast Hugging
// Face tokenizer matches): the text is cleaned (NFC, HTML entities unescaped, runs of white space
// collapsed to one space, trimmed, lower-cased), split into words by CLIP's pattern (the special
// tokens, the contractions 's 't 're 've 'm 'll 'd, runs of letters, single digits, runs of
// anything else that is not a space), each word's UTF-8 bytes are mapped to printable symbols,
// `</w>` marks its end, and merges are applied lowest rank first. No torch; ICU supplies the
// Unicode data (normalisation, case, character classes).
//
// Contract: load() refuses folders with missing or malformed files (naming the file and line);
// a loaded tokenizer is immutable and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace atelier::sd {

class ClipTokenizer {
 public:
  // `dir` holds vocab.json and merges.txt; tokenizer_config.json, when present, names the
  // padding token (`pad_token`: `<|endoftext|>` in SD 1.x folders, `!` in SD 2.x) and the
  // length (`model_max_length`, 77). A padding token other than the end token is split out of
  // the text as transformers does (see split_token_); from_strings() keeps OpenAI's behaviour.
  static Result<ClipTokenizer> load(const std::string& dir);
  // From the two files' contents (tests).
  static Result<ClipTokenizer> from_strings(const std::string& vocab_json,
                                            const std::string& merges_txt,
                                            std::string_view pad_token = "<|endoftext|>",
                                            int max_length = 77);

  // From OpenAI's `bpe_simple_vocab_16e6.txt` (its text, decompressed): the vocabulary CLIP's
  // simple_tokenizer.py derives from it (byte symbols, the same with `</w>`, the first 48,894
  // merges, then the start and end tokens): what single-file checkpoints, which carry no
  // tokenizer, are tokenized with. Atelier ships that file (assets/clip/).
  static Result<ClipTokenizer> from_openai_bpe(const std::string& bpe_text,
                                               std::string_view pad_token = "<|endoftext|>",
                                               int max_length = 77);

  // Start token, every word's BPE ids, end token; no length limit.
  std::vector<int64_t> encode(std::string_view text) const;
  // What the text encoder takes: max_length() ids, truncated keeping the end token last, padded.
  std::vector<int64_t> encode_padded(std::string_view text) const;

  // The cleaned text and its words, before BPE (exposed for tests).
  static std::string clean(std::string_view text);
  static std::vector<std::string> split_words(std::string_view cleaned);

  int64_t bos_id() const { return bos_; }
  int64_t eos_id() const { return eos_; }
  int64_t pad_id() const { return pad_; }
  int max_length() const { return max_length_; }
  size_t vocab_size() const { return vocab_.size(); }

 private:
  ClipTokenizer() = default;
  void bpe_word(const std::string& word, std::vector<int64_t>& out) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<std::string, int> ranks_;  // "left right" -> rank
  std::string byte_symbol_[256];                // each byte as its printable symbol (UTF-8)
  int64_t bos_ = 0, eos_ = 0, pad_ = 0;
  // transformers registers the padding token as a special token: where it is not the end token
  // (`!` in SD 2.x and SDXL's second tokenizer), each occurrence in the text becomes its id
  // before BPE ("wow!" -> "wow", "!" rather than "wow", "!</w>"), as diffusers' pipelines see it.
  std::string split_token_;
  int max_length_ = 77;
};

}  // namespace atelier::sd
