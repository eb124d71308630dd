#include "server/api/json_body.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "server/api/errors.h"
#include "server/api/text_checks.h"

namespace atelier::api {
namespace {

using json = nlohmann::json;

Status body_error(std::string message) {
  return Status::invalid_argument(std::move(message), std::string(JsonBody::kBodyField));
}

Status field_error(std::string_view field, std::string_view message) {
  std::string shown = shown_key(field);
  std::string text = "field '" + shown + "' ";
  text += message;
  return Status::invalid_argument(std::move(text), std::move(shown));
}

// Trims HTTP optional whitespace.
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Accepts "application/json" with any parameters, as long as a charset parameter says utf-8
// (the only encoding the parser reads).
bool is_json_media_type(std::string_view value) {
  size_t semi = value.find(';');
  if (!http::iequals(trim(value.substr(0, semi)), "application/json")) return false;
  while (semi != std::string_view::npos) {
    value.remove_prefix(semi + 1);
    semi = value.find(';');
    std::string_view param = trim(value.substr(0, semi));
    size_t eq = param.find('=');
    if (eq == std::string_view::npos) continue;
    if (!http::iequals(trim(param.substr(0, eq)), "charset")) continue;
    std::string_view charset = trim(param.substr(eq + 1));
    if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"') {
      charset = charset.substr(1, charset.size() - 2);
    }
    if (!http::iequals(charset, "utf-8")) return false;
  }
  return true;
}

}  // namespace

// Builds JsonBody::fields_ from SAX events: the top-level values, each object or array with its
// contents in Field::children (the depth limit bounds the nesting). Returning false stops the
// parser; error_ then says why.
class JsonBody::Parser : public nlohmann::json_sax<json> {
 public:
  // `size` is the length of the text being parsed, to tell "unexpected end" from other errors.
  Parser(JsonBody& out, size_t size) : out_(out), size_(size) {}
  Status error() const { return error_; }

  static std::string_view kind_name(Kind kind) {
    switch (kind) {
      case Kind::kNull:
        return "null";
      case Kind::kBool:
        return "a boolean";
      case Kind::kString:
        return "a string";
      case Kind::kObject:
        return "an object";
      case Kind::kArray:
        return "an array";
      case Kind::kInteger:
      case Kind::kOutOfRangeInteger:
      case Kind::kNonInteger:
        break;
    }
    return "a number";
  }

  bool null() override { return scalar(Kind::kNull); }
  bool boolean(bool value) override {
    if (!scalar(Kind::kBool)) return false;
    last_->boolean = value;
    return true;
  }
  bool number_integer(number_integer_t value) override {
    if (!scalar(Kind::kInteger)) return false;
    last_->integer = value;
    last_->number = static_cast<double>(value);
    return true;
  }
  bool number_unsigned(number_unsigned_t value) override {
    constexpr auto kMax = static_cast<number_unsigned_t>(std::numeric_limits<int64_t>::max());
    if (value > kMax) return scalar(Kind::kOutOfRangeInteger);
    return number_integer(static_cast<number_integer_t>(value));
  }
  bool number_float(number_float_t value, const string_t& literal) override {
    // The parser hands integer literals beyond 64 bits over as floats; the literal tells them
    // apart from real fractions, so the message can say which it was.
    bool integer_literal = literal.find_first_of(".eE") == string_t::npos;
    if (!scalar(integer_literal ? Kind::kOutOfRangeInteger : Kind::kNonInteger)) return false;
    last_->number = static_cast<double>(value);
    return true;
  }
  bool string(string_t& value) override {
    if (!scalar(Kind::kString)) return false;
    last_->text = std::move(value);
    return true;
  }
  bool binary(binary_t&) override {  // only binary formats produce it, never JSON text
    return fail(Status::internal("JSON parser reported a binary value"));
  }

  bool start_object(std::size_t) override { return open(Kind::kObject); }
  bool start_array(std::size_t) override { return open(Kind::kArray); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& key) override {
    if (!frames_.back().keys.insert(key).second) {
      if (depth() == 1) return fail(field_error(key, "appears more than once"));
      return fail(field_error(
          top_key_, "contains an object with the key '" + shown_key(key) + "' more than once"));
    }
    if (depth() == 1) top_key_ = key;
    frames_.back().key = std::move(key);
    return true;
  }

  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    // The library's own message quotes the input it choked on, which may be a secret, so only
    // the position is kept. `position` counts bytes read, the offending one included.
    size_t offset = std::min(position > 0 ? position - 1 : 0, size_);
    if (offset >= size_) {
      return fail(body_error("request body is not valid JSON: unexpected end at byte " +
                             std::to_string(offset)));
    }
    return fail(body_error("request body is not valid JSON: syntax error at byte " +
                           std::to_string(offset)));
  }

 private:
  struct Frame {
    std::unordered_set<std::string> keys;  // stays empty for arrays
    std::string key;                       // an object's member being read
    // The object or array being filled; nullptr for the body itself (its fields go to fields_).
    // Stable while this frame is open: nothing is added to its parent's list meanwhile.
    Field* container = nullptr;
  };

  size_t depth() const { return frames_.size(); }

  bool fail(Status status) {
    error_ = std::move(status);
    return false;
  }

  // A value at the current position. At depth 0 it is the whole body, which must be an object.
  bool scalar(Kind kind) {
    if (depth() == 0) {
      return fail(
          body_error("request body must be a JSON object, got " + std::string(kind_name(kind))));
    }
    Frame& frame = frames_.back();
    if (frame.container == nullptr) {
      out_.fields_.push_back(Field{.name = top_key_, .kind = kind});
      last_ = &out_.fields_.back();
    } else {
      std::string name = frame.container->kind == Kind::kObject ? frame.key : std::string();
      frame.container->children.push_back(Field{.name = std::move(name), .kind = kind});
      last_ = &frame.container->children.back();
    }
    return true;
  }

  bool open(Kind kind) {
    if (depth() == 0 && kind == Kind::kArray) return scalar(kind);
    if (depth() >= static_cast<size_t>(kMaxDepth)) {
      return fail(field_error(top_key_, "nests objects and arrays deeper than " +
                                            std::to_string(kMaxDepth) +
                                            " levels (the body counts as one)"));
    }
    Field* container = nullptr;
    if (depth() > 0) {
      if (!scalar(kind)) return false;
      container = last_;
    }
    frames_.emplace_back();
    frames_.back().container = container;
    return true;
  }

  bool close() {
    frames_.pop_back();
    return true;
  }

  JsonBody& out_;
  std::vector<Frame> frames_;
  std::string top_key_;    // the top-level field whose value is being parsed
  Field* last_ = nullptr;  // the value scalar() added last
  size_t size_;
  Status error_;
};

Result<JsonBody> JsonBody::parse(const http::Request& request, BodyPolicy policy) {
  // An empty body has nothing to misinterpret, so its Content-Type does not matter.
  if (!request.body.empty()) {
    std::optional<std::string_view> type = request.headers.get(kContentTypeField);
    if (type && !is_json_media_type(*type)) {
      return unsupported_media_type(
          "Content-Type must be application/json (with charset utf-8, if one is given)");
    }
  }
  return parse_text(request.body, policy);
}

Result<JsonBody> JsonBody::parse_text(std::string_view text, BodyPolicy policy) {
  JsonBody body;
  if (text.empty()) {
    if (policy == BodyPolicy::kOptional) return body;
    return body_error("request body is required: expected a JSON object");
  }
  if (std::optional<size_t> bad = first_invalid_utf8(text)) {
    return body_error("request body is not valid UTF-8: bad byte at offset " +
                      std::to_string(*bad));
  }
  Parser parser(body, text.size());
  try {
    if (!json::sax_parse(text, &parser, json::input_format_t::json, /*strict=*/true,
                         /*ignore_comments=*/false)) {
      Status error = parser.error();
      if (error.is_ok()) return Status::internal("JSON parser stopped without a reason");
      return error;
    }
  } catch (const std::exception& e) {
    // The SAX interface reports through parse_error; only allocation failures should land here.
    return Status::internal(std::string("JSON parser failed: ") + e.what());
  }
  return body;
}

JsonBody::Field* JsonBody::declare(std::string_view field) {
  if (std::find(declared_.begin(), declared_.end(), field) == declared_.end()) {
    declared_.emplace_back(field);
  }
  for (Field& f : fields_) {
    if (f.name == field) {
      f.declared = true;
      return &f;
    }
  }
  return nullptr;
}

namespace {

std::string describe_text(const TextRule& rule) {
  std::string max = std::to_string(rule.max_chars);
  if (rule.min_chars == 0) return "a string of at most " + max + " characters";
  if (rule.min_chars == rule.max_chars) return "a string of exactly " + max + " characters";
  return "a string of " + std::to_string(rule.min_chars) + " to " + max + " characters";
}

std::string describe_int(int64_t lo, int64_t hi) {
  return "an integer between " + std::to_string(lo) + " and " + std::to_string(hi);
}

std::string describe_enum(std::initializer_list<std::string_view> allowed) {
  std::string out = "one of ";
  bool first = true;
  for (std::string_view a : allowed) {
    if (!first) out += ", ";
    first = false;
    out += '\'';
    out += a;
    out += '\'';
  }
  return out;
}

}  // namespace

Result<JsonBody::Field*> JsonBody::find_present(std::string_view field, bool required,
                                                const std::string& expected) {
  Field* f = declare(field);
  if (f != nullptr && f->kind != Kind::kNull) return f;
  if (!required) return static_cast<Field*>(nullptr);
  if (f == nullptr) return field_error(field, "is required: expected " + expected);
  return field_error(field, "must be " + expected + ", got null");
}

Result<JsonBody::Field*> JsonBody::find_string(std::string_view field, bool required,
                                               const std::string& expected) {
  Result<Field*> found = find_present(field, required, expected);
  if (!found.is_ok() || *found == nullptr) return found;
  if ((*found)->kind != Kind::kString) {
    return field_error(
        field, "must be " + expected + ", got " + std::string(Parser::kind_name((*found)->kind)));
  }
  return found;
}

Result<std::optional<std::string>> JsonBody::read_string(std::string_view field,
                                                         const TextRule& rule, bool required) {
  if (rule.max_chars == 0 || rule.min_chars > rule.max_chars) {
    return Status::internal("string field '" + std::string(field) + "' declared with bad bounds");
  }
  std::string expected = describe_text(rule);
  Result<Field*> found = find_string(field, required, expected);
  if (!found.is_ok()) return found.status();
  Field* f = *found;
  if (f == nullptr) return std::optional<std::string>();
  size_t chars = count_chars(f->text);
  if (chars < rule.min_chars) {
    return field_error(
        field, "must be " + expected + (chars == 0 ? ", got an empty one" : ", got a shorter one"));
  }
  if (chars > rule.max_chars)
    return field_error(field, "must be " + expected + ", got a longer one");
  if (has_control_chars(f->text, rule.multiline)) {
    return field_error(field, rule.multiline ? "must not contain control characters other than "
                                               "tab, line feed and carriage return"
                                             : "must not contain control characters");
  }
  return std::optional<std::string>(f->text);
}

Result<std::optional<int64_t>> JsonBody::read_int(std::string_view field, int64_t lo, int64_t hi,
                                                  bool required) {
  if (lo > hi) {
    return Status::internal("integer field '" + std::string(field) + "' declared with lo > hi");
  }
  std::string expected = describe_int(lo, hi);
  Result<Field*> found = find_present(field, required, expected);
  if (!found.is_ok()) return found.status();
  Field* f = *found;
  if (f == nullptr) return std::optional<int64_t>();
  switch (f->kind) {
    case Kind::kInteger:
      if (f->integer < lo || f->integer > hi) {
        return field_error(field, "must be " + expected + ", got an integer outside that range");
      }
      return std::optional<int64_t>(f->integer);
    case Kind::kOutOfRangeInteger:
      return field_error(field, "must be " + expected + ", got an integer outside that range");
    case Kind::kNonInteger:
      return field_error(field,
                         "must be " + expected + ", got a number with a fraction or exponent");
    default:
      return field_error(
          field, "must be " + expected + ", got " + std::string(Parser::kind_name(f->kind)));
  }
}

Result<std::optional<double>> JsonBody::optional_number(std::string_view field, double lo,
                                                        double hi) {
  char range[96];
  std::snprintf(range, sizeof(range), "a number between %g and %g", lo, hi);
  std::string expected = range;
  Result<Field*> found = find_present(field, false, expected);
  if (!found.is_ok()) return found.status();
  Field* f = *found;
  if (f == nullptr) return std::optional<double>();
  switch (f->kind) {
    case Kind::kInteger:
    case Kind::kNonInteger:
    case Kind::kOutOfRangeInteger:
      // NaN fails both comparisons, so it cannot slip through.
      if (!(f->number >= lo && f->number <= hi)) {
        return field_error(field, "must be " + expected + ", got a number outside that range");
      }
      return std::optional<double>(f->number);
    default:
      return field_error(
          field, "must be " + expected + ", got " + std::string(Parser::kind_name(f->kind)));
  }
}

Result<std::optional<bool>> JsonBody::read_bool(std::string_view field, bool required) {
  std::string expected = "a boolean";
  Result<Field*> found = find_present(field, required, expected);
  if (!found.is_ok()) return found.status();
  Field* f = *found;
  if (f == nullptr) return std::optional<bool>();
  if (f->kind != Kind::kBool) {
    return field_error(field,
                       "must be " + expected + ", got " + std::string(Parser::kind_name(f->kind)));
  }
  return std::optional<bool>(f->boolean);
}

Result<std::optional<std::string>> JsonBody::read_enum(
    std::string_view field, std::initializer_list<std::string_view> allowed, bool required) {
  if (allowed.size() == 0) {
    return Status::internal("enum field '" + std::string(field) + "' declared with no values");
  }
  std::string expected = describe_enum(allowed);
  Result<Field*> found = find_string(field, required, expected);
  if (!found.is_ok()) return found.status();
  Field* f = *found;
  if (f == nullptr) return std::optional<std::string>();
  if (std::find(allowed.begin(), allowed.end(), f->text) == allowed.end()) {
    return field_error(field, "must be " + expected + ", got another string");
  }
  return std::optional<std::string>(f->text);
}

Result<std::string> JsonBody::required_string(std::string_view field, const TextRule& rule) {
  auto r = read_string(field, rule, true);
  if (!r.is_ok()) return r.status();
  return std::move(**r);
}

Result<std::optional<std::string>> JsonBody::optional_string(std::string_view field,
                                                             const TextRule& rule) {
  return read_string(field, rule, false);
}

Result<int64_t> JsonBody::required_int(std::string_view field, int64_t lo, int64_t hi) {
  auto r = read_int(field, lo, hi, true);
  if (!r.is_ok()) return r.status();
  return **r;
}

Result<std::optional<int64_t>> JsonBody::optional_int(std::string_view field, int64_t lo,
                                                      int64_t hi) {
  return read_int(field, lo, hi, false);
}

Result<bool> JsonBody::required_bool(std::string_view field) {
  auto r = read_bool(field, true);
  if (!r.is_ok()) return r.status();
  return **r;
}

Result<std::optional<bool>> JsonBody::optional_bool(std::string_view field) {
  return read_bool(field, false);
}

Result<std::string> JsonBody::required_enum(std::string_view field,
                                            std::initializer_list<std::string_view> allowed) {
  auto r = read_enum(field, allowed, true);
  if (!r.is_ok()) return r.status();
  return std::move(**r);
}

Result<std::optional<std::string>> JsonBody::optional_enum(
    std::string_view field, std::initializer_list<std::string_view> allowed) {
  return read_enum(field, allowed, false);
}

Result<std::optional<std::vector<int64_t>>> JsonBody::optional_int_array(std::string_view field,
                                                                         size_t count, int64_t lo,
                                                                         int64_t hi) {
  std::string expected = "an array of " + std::to_string(count) + " integers between " +
                         std::to_string(lo) + " and " + std::to_string(hi);
  Result<Field*> found = find_present(field, false, expected);
  if (!found.is_ok()) return found.status();
  Field* f = *found;
  if (f == nullptr) return std::optional<std::vector<int64_t>>();
  if (f->kind != Kind::kArray) {
    return field_error(field,
                       "must be " + expected + ", got " + std::string(Parser::kind_name(f->kind)));
  }
  if (f->children.size() != count) {
    return field_error(
        field, "must be " + expected + ", got " + std::to_string(f->children.size()) + " elements");
  }
  std::vector<int64_t> out;
  for (size_t i = 0; i < f->children.size(); ++i) {
    const Field& e = f->children[i];
    if (e.kind != Kind::kInteger || e.integer < lo || e.integer > hi) {
      std::string got = e.kind == Kind::kInteger || e.kind == Kind::kOutOfRangeInteger
                            ? "an integer outside that range"
                        : e.kind == Kind::kNonInteger ? "a number with a fraction or exponent"
                                                      : std::string(Parser::kind_name(e.kind));
      return field_error(field,
                         "must be " + expected + ", got " + got + " at index " + std::to_string(i));
    }
    out.push_back(e.integer);
  }
  return std::optional<std::vector<int64_t>>(std::move(out));
}

Result<std::optional<std::vector<JsonBody>>> JsonBody::optional_object_array(std::string_view field,
                                                                             size_t max_items) {
  std::string expected = "an array of at most " + std::to_string(max_items) + " objects";
  Result<Field*> found = find_present(field, false, expected);
  if (!found.is_ok()) return found.status();
  Field* f = *found;
  if (f == nullptr) return std::optional<std::vector<JsonBody>>();
  if (f->kind != Kind::kArray) {
    return field_error(field,
                       "must be " + expected + ", got " + std::string(Parser::kind_name(f->kind)));
  }
  if (f->children.size() > max_items) {
    return field_error(field,
                       "must be " + expected + ", got " + std::to_string(f->children.size()));
  }
  std::vector<JsonBody> out;
  for (size_t i = 0; i < f->children.size(); ++i) {
    const Field& e = f->children[i];
    std::string prefix = std::string(field) + "[" + std::to_string(i) + "]";
    if (e.kind != Kind::kObject) {
      return field_error(prefix,
                         "must be an object, got " + std::string(Parser::kind_name(e.kind)));
    }
    JsonBody element;
    for (const Field& member : e.children) {
      Field copy = member;
      copy.name = prefix + "." + member.name;
      element.fields_.push_back(std::move(copy));
    }
    out.push_back(std::move(element));
  }
  return std::optional<std::vector<JsonBody>>(std::move(out));
}

Result<std::optional<JsonBody>> JsonBody::optional_object(std::string_view field) {
  Result<Field*> found = find_present(field, false, "an object");
  if (!found.is_ok()) return found.status();
  Field* f = *found;
  if (f == nullptr) return std::optional<JsonBody>();
  if (f->kind != Kind::kObject) {
    return field_error(field, "must be an object, got " + std::string(Parser::kind_name(f->kind)));
  }
  JsonBody out;
  for (const Field& member : f->children) {
    Field copy = member;
    copy.name = std::string(field) + "." + member.name;
    out.fields_.push_back(std::move(copy));
  }
  return std::optional<JsonBody>(std::move(out));
}

Status JsonBody::finish() const {
  for (const Field& f : fields_) {
    if (f.declared) continue;
    if (declared_.empty())
      return field_error(f.name, "is not accepted: this request takes no fields");
    std::string accepted;
    for (const std::string& d : declared_) {
      if (!accepted.empty()) accepted += ", ";
      accepted += d;
    }
    return field_error(f.name, "is not accepted here; accepted fields: " + accepted);
  }
  return Status::ok();
}

}  // namespace atelier::api
