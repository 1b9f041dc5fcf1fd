// type = "webhook": one JSON request per message to a configurable URL, for gateways with no
// dedicated provider. The body comes from a template whose {{placeholders}} sit inside JSON
// strings; delivery status comes back on status_callback as JSON or form fields.
#include <algorithm>
#include <cctype>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "verifyd/delivery/http_client.h"
#include "verifyd/delivery/providers.h"

namespace verifyd {
namespace {

using Json = nlohmann::json;

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The text of a JSON string literal without its quotes (invalid UTF-8 replaced, not thrown).
std::string jsonEscape(const std::string& value) {
  std::string quoted = Json(value).dump(-1, ' ', false, Json::error_handler_t::replace);
  return quoted.substr(1, quoted.size() - 2);
}

// Which OutgoingMessage field a placeholder names.
using Field = std::string OutgoingMessage::*;
std::optional<Field> placeholderField(std::string_view name) {
  static const std::pair<std::string_view, Field> kFields[] = {
      {"to", &OutgoingMessage::to},
      {"channel", &OutgoingMessage::channel},
      {"text", &OutgoingMessage::text},
      {"code", &OutgoingMessage::code},
      {"locale", &OutgoingMessage::locale},
      {"attempt_sid", &OutgoingMessage::attempt_sid},
      {"verification_sid", &OutgoingMessage::verification_sid},
      {"service_sid", &OutgoingMessage::service_sid},
      {"status_callback", &OutgoingMessage::status_callback},
      {"subject", &OutgoingMessage::subject},
      {"html", &OutgoingMessage::html},
      {"speech", &OutgoingMessage::speech},
      {"speech_language", &OutgoingMessage::speech_language},
      {"friendly_name", &OutgoingMessage::friendly_name},
  };
  for (const auto& [key, field] : kFields)
    if (key == name) return field;
  return std::nullopt;
}

// A body template split once into literal text and placeholders.
class BodyTemplate {
 public:
  static Result<BodyTemplate> parse(std::string_view text) {
    BodyTemplate t;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t open = text.find("{{", pos);
      if (open == std::string_view::npos) {
        t.parts_.emplace_back(std::string(text.substr(pos)));
        break;
      }
      const size_t close = text.find("}}", open + 2);
      if (close == std::string_view::npos)
        return fail(Error::invalid("body", "unterminated {{ placeholder"));
      std::string_view name = text.substr(open + 2, close - open - 2);
      while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
      while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
      const auto field = placeholderField(name);
      if (!field)
        return fail(Error::invalid("body", "unknown placeholder {{" + std::string(name) + "}}"));
      if (open > pos) t.parts_.emplace_back(std::string(text.substr(pos, open - pos)));
      t.parts_.emplace_back(*field);
      pos = close + 2;
    }
    return t;
  }

  std::string render(const OutgoingMessage& message) const {
    std::string out;
    for (const auto& part : parts_) {
      if (const auto* literal = std::get_if<std::string>(&part))
        out += *literal;
      else
        out += jsonEscape(message.*std::get<Field>(part));
    }
    return out;
  }

 private:
  std::vector<std::variant<std::string, Field>> parts_;
};

std::string defaultBody(const OutgoingMessage& m) {
  nlohmann::ordered_json body = {{"to", m.to},
                                 {"channel", m.channel},
                                 {"text", m.text},
                                 {"code", m.code},
                                 {"locale", m.locale},
                                 {"attempt_sid", m.attempt_sid},
                                 {"status_callback", m.status_callback}};
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

OutgoingMessage dummyMessage() {
  // Quotes and backslashes: a placeholder outside a JSON string cannot render to valid JSON.
  const std::string v = "x\"y\\z";
  OutgoingMessage m;
  for (std::string* field :
       {&m.attempt_sid, &m.account_sid, &m.service_sid, &m.verification_sid, &m.channel, &m.to,
        &m.locale, &m.code, &m.friendly_name, &m.text, &m.speech, &m.speech_language, &m.subject,
        &m.html, &m.from, &m.from_name, &m.messaging_service_sid, &m.status_callback})
    *field = v;
  return m;
}

class WebhookSender final : public Sender {
 public:
  struct Options {
    std::string url;
    std::string method;
    std::optional<BodyTemplate> body;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string basic_user, basic_password;
    std::optional<Json::json_pointer> id_field;
    int timeout_ms = 10000;
  };

  explicit WebhookSender(Options options) : options_(std::move(options)) {}

  SendResult send(const OutgoingMessage& message) override {
    SendResult result;
    HttpRequest request;
    request.method = options_.method;
    request.url = options_.url;
    request.headers = options_.headers;
    request.headers.emplace_back("Idempotency-Key", message.attempt_sid);
    request.body = options_.body ? options_.body->render(message) : defaultBody(message);
    if (options_.body && !Json::accept(request.body)) {
      result.outcome = SendOutcome::kPermanent;
      result.error_message = "webhook body template did not render to valid JSON";
      return result;
    }
    request.basic_user = options_.basic_user;
    request.basic_password = options_.basic_password;
    request.timeout_ms = options_.timeout_ms;
    request.connect_timeout_ms = std::min(options_.timeout_ms, 3000);
    const HttpResponse response = httpCall(request);

    if (response.status == 0) {
      result.outcome = response.not_sent ? SendOutcome::kTransient : SendOutcome::kUnknown;
      result.error_message = "webhook request failed: " + response.error;
      return result;
    }
    const int status = response.status;
    if (status >= 200 && status < 300) {
      result.outcome = SendOutcome::kAccepted;
      result.status = "sent";
      if (options_.id_field) {
        const Json body = Json::parse(response.body, nullptr, false);
        if (!body.is_discarded() && body.contains(*options_.id_field)) {
          const Json& id = body.at(*options_.id_field);
          if (id.is_string())
            result.provider_message_id = id.get<std::string>();
          else if (id.is_number())
            result.provider_message_id = id.dump();
        }
      }
      return result;
    }
    result.outcome = (status == 408 || status == 429 || status >= 500) ? SendOutcome::kTransient
                                                                       : SendOutcome::kPermanent;
    result.error_code = status;
    result.error_message = "webhook answered HTTP " + std::to_string(status);
    return result;
  }

 private:
  Options options_;
};

}  // namespace

Result<std::unique_ptr<Sender>> makeWebhookSender(const ProviderConfig& config) {
  WebhookSender::Options options;
  const auto get = [&](const std::string& key) -> std::string {
    auto it = config.settings.find(key);
    return it == config.settings.end() ? std::string() : it->second;
  };

  options.url = get("url");
  if (options.url.empty()) return fail(Error::invalid("url", "required"));
  if (!startsWith(options.url, "http://") && !startsWith(options.url, "https://"))
    return fail(Error::invalid("url", "must be an http:// or https:// URL"));

  options.method = get("method");
  std::transform(options.method.begin(), options.method.end(), options.method.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (options.method.empty()) options.method = "POST";
  if (options.method != "POST" && options.method != "PUT")
    return fail(Error::invalid("method", "POST or PUT"));

  if (auto it = config.settings.find("body"); it != config.settings.end()) {
    auto body = BodyTemplate::parse(it->second);
    if (!body) return fail(body.error());
    if (!Json::accept(body->render(dummyMessage())))
      return fail(Error::invalid(
          "body", "the template is not valid JSON once filled (placeholders go inside strings)"));
    options.body = std::move(*body);
  }

  bool has_content_type = false;
  for (const auto& [key, value] : config.settings) {
    if (!startsWith(key, "headers.")) continue;
    const std::string name = key.substr(8);
    const bool bad_name = name.empty() || std::any_of(name.begin(), name.end(), [](char c) {
                            return c == ':' || static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
                          });
    if (bad_name) return fail(Error::invalid(key, "not a valid header name"));
    if (value.find_first_of("\r\n") != std::string::npos)
      return fail(Error::invalid(key, "header values cannot hold line breaks"));
    if (equalsIgnoreCase(name, "Content-Type")) has_content_type = true;
    options.headers.emplace_back(name, value);
  }
  if (!has_content_type) {
    std::string content_type = get("content_type");
    if (content_type.empty()) content_type = "application/json";
    if (content_type.find_first_of("\r\n") != std::string::npos)
      return fail(Error::invalid("content_type", "cannot hold line breaks"));
    options.headers.emplace_back("Content-Type", content_type);
  }
  options.headers.emplace_back("Expect", "");  // no 100-continue round trip for large bodies

  options.basic_user = get("basic_user");
  options.basic_password = get("basic_password");
  if (options.basic_user.empty() && !options.basic_password.empty())
    return fail(Error::invalid("basic_user", "required with basic_password"));

  if (const std::string pointer = get("id_field"); !pointer.empty()) {
    try {
      options.id_field = Json::json_pointer(pointer);
    } catch (const Json::exception&) {
      return fail(Error::invalid("id_field", "not a JSON pointer such as /id or /data/id"));
    }
  }

  if (config.timeout_ms <= 0) return fail(Error::invalid("timeout_ms", "must be positive"));
  options.timeout_ms = config.timeout_ms;
  return std::make_unique<WebhookSender>(std::move(options));
}

}  // namespace verifyd
