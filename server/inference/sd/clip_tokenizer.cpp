#include "server/inference/sd/clip_tokenizer.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server/inference/sd/model_files.h"

namespace atelier::sd {

namespace {

constexpr std::string_view kBos = "<|startoftext|>";
constexpr std::string_view kEos = "<|endoftext|>";

void append_utf8(std::string& out, UChar32 c) {
  icu::UnicodeString(c).toUTF8String(out);
}

// GPT-2's reversible byte -> printable character table: printable Latin-1 bytes stand for
// themselves, the rest are shifted to 256 and up, so no byte maps to white space or a control.
void byte_symbols(std::string (&table)[256]) {
  bool printable[256] = {};
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    table[b].clear();
    append_utf8(table[b], printable[b] ? b : next++);
  }
}

bool is_space(UChar32 c) {
  // Python's str.isspace(): Unicode white space plus the separators U+001C..U+001F.
  return u_isUWhiteSpace(c) || (c >= 0x1C && c <= 0x1F);
}
bool is_letter(UChar32 c) {
  return (U_GET_GC_MASK(c) & U_GC_L_MASK) != 0;
}
bool is_number(UChar32 c) {
  return (U_GET_GC_MASK(c) & U_GC_N_MASK) != 0;
}

// HTML character references, as Python's html.unescape reads them (numeric ones, and the named
// ones that plausibly appear in prompts).
std::string unescape_html(const std::string& s) {
  static const std::pair<std::string_view, std::string_view> kNamed[] = {
      {"amp;", "&"},         {"lt;", "<"},         {"gt;", ">"},         {"quot;", "\""},
      {"apos;", "'"},        {"nbsp;", "\u00A0"},  {"copy;", "\u00A9"},  {"reg;", "\u00AE"},
      {"hellip;", "\u2026"}, {"mdash;", "\u2014"}, {"ndash;", "\u2013"}, {"amp", "&"},
      {"lt", "<"},           {"gt", ">"},          {"quot", "\""}};
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] != '&') {
      out += s[i++];
      continue;
    }
    const std::string_view rest(s.data() + i + 1, s.size() - i - 1);
    if (!rest.empty() && rest[0] == '#') {
      const bool hex = rest.size() > 1 && (rest[1] == 'x' || rest[1] == 'X');
      size_t j = hex ? 2 : 1;
      long long v = 0;
      const size_t start = j;
      while (j < rest.size() && j - start < 8 &&
             (hex ? std::isxdigit(static_cast<unsigned char>(rest[j]))
                  : std::isdigit(static_cast<unsigned char>(rest[j])))) {
        v = v * (hex ? 16 : 10) + std::stoi(std::string(1, rest[j]), nullptr, 16);
        ++j;
      }
      if (j > start) {
        if (j < rest.size() && rest[j] == ';') ++j;
        if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) v = 0xFFFD;
        append_utf8(out, static_cast<UChar32>(v));
        i += 1 + j;
        continue;
      }
    }
    bool replaced = false;
    for (const auto& [name, text] : kNamed) {
      if (rest.substr(0, name.size()) == name) {
        out += text;
        i += 1 + name.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += s[i++];
  }
  return out;
}

}  // namespace

std::string ClipTokenizer::clean(std::string_view text) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(err);
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  if (U_SUCCESS(err)) u = nfc->normalize(u, err);
  std::string s;
  u.toUTF8String(s);
  s = unescape_html(unescape_html(s));
  // Collapse white space, trim, lower-case.
  u = icu::UnicodeString::fromUTF8(s);
  icu::UnicodeString collapsed;
  bool pending_space = false;
  for (int32_t i = 0; i < u.length();) {
    const UChar32 c = u.char32At(i);
    i += U16_LENGTH(c);
    if (is_space(c)) {
      pending_space = !collapsed.isEmpty();
      continue;
    }
    if (pending_space) collapsed.append(static_cast<UChar>(' '));
    pending_space = false;
    collapsed.append(c);
  }
  collapsed.toLower(icu::Locale::getRoot());
  std::string out;
  collapsed.toUTF8String(out);
  return out;
}

std::vector<std::string> ClipTokenizer::split_words(std::string_view cleaned) {
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(
      icu::StringPiece(cleaned.data(), static_cast<int32_t>(cleaned.size())));
  std::vector<std::string> words;
  const auto at = [&](int32_t i) { return i < u.length() ? u.char32At(i) : U_SENTINEL; };
  const auto starts_with = [&](int32_t i, std::u16string_view lit) {
    return u.length() - i >= static_cast<int32_t>(lit.size()) &&
           u.compare(i, static_cast<int32_t>(lit.size()), lit.data(), 0,
                     static_cast<int32_t>(lit.size())) == 0;
  };
  static const std::u16string_view kLiterals[] = {
      u"<|startoftext|>", u"<|endoftext|>", u"'s", u"'t", u"'re", u"'ve", u"'m", u"'ll", u"'d"};
  int32_t i = 0;
  while (i < u.length()) {
    const UChar32 c = at(i);
    int32_t end = i;
    for (const auto lit : kLiterals) {
      if (starts_with(i, lit)) {
        end = i + static_cast<int32_t>(lit.size());
        break;
      }
    }
    if (end == i) {
      if (is_letter(c)) {
        while (end < u.length() && is_letter(at(end))) end += U16_LENGTH(at(end));
      } else if (is_number(c)) {
        end += U16_LENGTH(c);
      } else if (!is_space(c)) {
        while (end < u.length() && !is_space(at(end)) && !is_letter(at(end)) && !is_number(at(end)))
          end += U16_LENGTH(at(end));
      } else {
        i += U16_LENGTH(c);  // a space separates words
        continue;
      }
    }
    std::string word;
    u.tempSubStringBetween(i, end).toUTF8String(word);
    words.push_back(std::move(word));
    i = end;
  }
  return words;
}

Result<ClipTokenizer> ClipTokenizer::from_strings(const std::string& vocab_json,
                                                  const std::string& merges_txt,
                                                  std::string_view pad_token, int max_length) {
  ClipTokenizer t;
  byte_symbols(t.byte_symbol_);
  auto vocab = nlohmann::json::parse(vocab_json, nullptr, false);
  if (vocab.is_discarded() || !vocab.is_object()) {
    return Status::invalid_argument("tokenizer: vocab.json is not a JSON object");
  }
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer()) {
      return Status::invalid_argument("tokenizer: vocab.json entry '" + token +
                                      "' is not an integer id");
    }
    t.vocab_[token] = id.get<int64_t>();
  }
  std::istringstream lines(merges_txt);
  std::string line;
  int rank = 0, number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (number == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      return Status::invalid_argument("tokenizer: merges.txt line " + std::to_string(number) +
                                      " is not two symbols separated by a space");
    }
    t.ranks_.emplace(line, rank++);
  }
  for (const auto& [name, slot] : {std::pair{kBos, &t.bos_}, std::pair{kEos, &t.eos_}}) {
    auto it = t.vocab_.find(std::string(name));
    if (it == t.vocab_.end()) {
      return Status::invalid_argument("tokenizer: vocab.json has no " + std::string(name));
    }
    *slot = it->second;
  }
  auto pad = t.vocab_.find(std::string(pad_token));
  if (pad == t.vocab_.end()) {
    return Status::invalid_argument("tokenizer: the padding token '" + std::string(pad_token) +
                                    "' is not in vocab.json");
  }
  t.pad_ = pad->second;
  if (max_length < 2) return Status::invalid_argument("tokenizer: model_max_length below 2");
  t.max_length_ = max_length;
  return t;
}

Result<ClipTokenizer> ClipTokenizer::load(const std::string& dir) {
  auto vocab = read_model_file(dir + "/vocab.json");
  if (!vocab.is_ok()) return vocab.status();
  auto merges = read_model_file(dir + "/merges.txt");
  if (!merges.is_ok()) return merges.status();
  std::string pad(kEos);
  int max_length = 77;
  if (auto config = read_model_file(dir + "/tokenizer_config.json"); config.is_ok()) {
    auto j = nlohmann::json::parse(*config, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return Status::invalid_argument("tokenizer: " + dir + "/tokenizer_config.json is not JSON");
    }
    if (auto p = j.find("pad_token"); p != j.end()) {
      if (p->is_string()) pad = p->get<std::string>();
      if (p->is_object() && p->contains("content") && (*p)["content"].is_string())
        pad = (*p)["content"].get<std::string>();
    }
    if (auto m = j.find("model_max_length"); m != j.end() && m->is_number_integer() &&
                                             m->get<int64_t>() >= 2 && m->get<int64_t>() <= 4096) {
      max_length = static_cast<int>(m->get<int64_t>());
    }
  }
  auto t = from_strings(*vocab, *merges, pad, max_length);
  if (t.is_ok() && pad != kEos && pad != kBos) t->split_token_ = pad;
  return t;
}

Result<ClipTokenizer> ClipTokenizer::from_openai_bpe(const std::string& bpe_text,
                                                     std::string_view pad_token, int max_length) {
  constexpr size_t kMerges = 49152 - 256 - 2;  // simple_tokenizer.py: merges[1:49152-256-2+1]
  std::istringstream lines(bpe_text);
  std::string line, merges = "#version: 0.2\n";
  std::vector<std::string> merged;
  std::getline(lines, line);  // the header
  while (merged.size() < kMerges && std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t space = line.find(' ');
    if (space == std::string::npos) {
      return Status::invalid_argument("tokenizer: BPE merge " + std::to_string(merged.size() + 1) +
                                      " is not two symbols");
    }
    merged.push_back(line.substr(0, space) + line.substr(space + 1));
    merges += line + "\n";
  }
  if (merged.size() < kMerges) return Status::invalid_argument("tokenizer: BPE file is short");
  // Ids in simple_tokenizer.py's order: the printable bytes' symbols first (bytes_to_unicode's
  // dict order), then the others, then all of them again with </w>.
  std::string table[256];
  byte_symbols(table);
  std::vector<std::string> symbols;
  for (int pass = 0; pass < 2; ++pass) {
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      if (printable == (pass == 0)) symbols.push_back(table[b]);
    }
  }
  nlohmann::json vocab = nlohmann::json::object();
  int64_t id = 0;
  for (const auto& sym : symbols) vocab[sym] = id++;
  for (const auto& sym : symbols) vocab[sym + "</w>"] = id++;
  for (const auto& m : merged) vocab[m] = id++;
  vocab[std::string(kBos)] = id++;
  vocab[std::string(kEos)] = id++;
  auto t = from_strings(vocab.dump(), merges, pad_token, max_length);
  if (t.is_ok() && pad_token != kEos && pad_token != kBos) t->split_token_ = pad_token;
  return t;
}

void ClipTokenizer::bpe_word(const std::string& word, std::vector<int64_t>& out) const {
  if (word == kBos || word == kEos) {
    out.push_back(word == kBos ? bos_ : eos_);
    return;
  }
  std::vector<std::string> symbols;
  for (unsigned char b : word) symbols.push_back(byte_symbol_[b]);
  if (symbols.empty()) return;
  symbols.back() += "</w>";
  // Merge the adjacent pair of lowest rank, everywhere it occurs, until none is left.
  std::string key;
  while (symbols.size() > 1) {
    int best = INT_MAX;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      key.assign(symbols[i]).append(" ").append(symbols[i + 1]);
      auto it = ranks_.find(key);
      if (it != ranks_.end() && it->second < best) best = it->second;
    }
    if (best == INT_MAX) break;
    std::vector<std::string> merged;
    merged.reserve(symbols.size());
    for (size_t i = 0; i < symbols.size(); ++i) {
      if (i + 1 < symbols.size()) {
        key.assign(symbols[i]).append(" ").append(symbols[i + 1]);
        auto it = ranks_.find(key);
        if (it != ranks_.end() && it->second == best) {
          merged.push_back(symbols[i] + symbols[i + 1]);
          ++i;
          continue;
        }
      }
      merged.push_back(symbols[i]);
    }
    symbols.swap(merged);
  }
  for (const auto& s : symbols) {
    auto it = vocab_.find(s);
    // Every byte symbol is in a CLIP vocabulary; a folder whose is not loses that piece.
    if (it != vocab_.end()) out.push_back(it->second);
  }
}

std::vector<int64_t> ClipTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids{bos_};
  // Each piece between special tokens is cleaned and split on its own, as transformers does.
  size_t at = 0;
  while (true) {
    const size_t next = split_token_.empty() ? std::string_view::npos : text.find(split_token_, at);
    for (const auto& word : split_words(clean(text.substr(at, next - at)))) bpe_word(word, ids);
    if (next == std::string_view::npos) break;
    ids.push_back(pad_);
    at = next + split_token_.size();
  }
  ids.push_back(eos_);
  return ids;
}

std::vector<int64_t> ClipTokenizer::encode_padded(std::string_view text) const {
  std::vector<int64_t> ids = encode(text);
  const auto max = static_cast<size_t>(max_length_);
  if (ids.size() > max) {
    ids.resize(max);
    ids.back() = eos_;
  }
  ids.resize(max, pad_);
  return ids;
}

}  // namespace atelier::sd
