#pragma once
// A minimal compact JSON writer for the hot responses (verification create and check), where
// building an nlohmann::ordered_json tree cost more than the rest of the encoding. Strings are
// escaped per RFC 8259; callers guarantee UTF-8 (form input is validated on the way in).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace verifyd::twilio {

class JsonWriter {
 public:
  JsonWriter() { out_.reserve(768); }
  JsonWriter& begin() { return open('{'); }
  JsonWriter& end() { return close('}'); }
  JsonWriter& beginArray(std::string_view key) { return this->key(key).open('['); }
  JsonWriter& endArray() { return close(']'); }
  JsonWriter& beginObject(std::string_view key) { return this->key(key).open('{'); }
  JsonWriter& beginObject() { return comma().open('{'); }
  JsonWriter& field(std::string_view key, std::string_view value) {
    this->key(key);
    string(value);
    return *this;
  }
  JsonWriter& field(std::string_view key, const std::string& value) {
    return field(key, std::string_view(value));
  }
  JsonWriter& field(std::string_view key, const char* value) {
    return field(key, std::string_view(value));
  }
  JsonWriter& field(std::string_view key, const std::optional<std::string>& value) {
    if (!value) return null(key);
    return field(key, std::string_view(*value));
  }
  JsonWriter& field(std::string_view key, bool value) {
    this->key(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  JsonWriter& field(std::string_view key, std::int64_t value) {
    this->key(key);
    out_ += std::to_string(value);
    return *this;
  }
  JsonWriter& null(std::string_view key) {
    this->key(key);
    out_ += "null";
    return *this;
  }
  JsonWriter& raw(std::string_view key, std::string_view json) {
    this->key(key);
    out_ += json;
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  JsonWriter& comma() {
    if (need_comma_) out_ += ',';
    need_comma_ = false;
    return *this;
  }
  JsonWriter& open(char c) {
    out_ += c;
    need_comma_ = false;
    return *this;
  }
  JsonWriter& close(char c) {
    out_ += c;
    need_comma_ = true;
    return *this;
  }
  JsonWriter& key(std::string_view k) {
    comma();
    string(k);
    out_ += ':';
    need_comma_ = true;
    return *this;
  }
  void string(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out_ += '"';
    for (char ch : s) {
      unsigned char c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        case '\b':
          out_ += "\\b";
          break;
        case '\f':
          out_ += "\\f";
          break;
        default:
          if (c < 0x20) {
            out_ += "\\u00";
            out_ += kHex[c >> 4];
            out_ += kHex[c & 15];
          } else {
            out_ += ch;
          }
      }
    }
    out_ += '"';
    need_comma_ = true;
  }

  std::string out_;
  bool need_comma_ = false;
};

}  // namespace verifyd::twilio
