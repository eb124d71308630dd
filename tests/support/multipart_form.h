// A multipart/form-data body as curl -F and browsers frame it, for the upload tests.
#pragma once

#include <string>

namespace atelier::testing {

struct MultipartForm {
  std::string boundary = "------------------------d74496d66958873e";
  std::string body;

  // A file part; `type` empty leaves the part without a Content-Type.
  MultipartForm& file(const std::string& name, const std::string& filename, const std::string& type,
                      const std::string& bytes) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name +
            "\"; filename=\"" + filename + "\"\r\n";
    if (!type.empty()) body += "Content-Type: " + type + "\r\n";
    body += "\r\n" + bytes + "\r\n";
    return *this;
  }
  MultipartForm& text(const std::string& name, const std::string& value) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" +
            value + "\r\n";
    return *this;
  }
  std::string content_type() const { return "multipart/form-data; boundary=" + boundary; }
  // The body with its closing delimiter.
  std::string finished() const { return body + "--" + boundary + "--\r\n"; }
};

}  // namespace atelier::testing
