#pragma once
// Message content: the default texts for sms, whatsapp, call and email in Twilio's 35 locales,
// the locale a destination country gets, and the built-in templates (Twilio's HJ templates).
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "verifyd/common/result.h"

namespace verifyd {

// `&<>"'` as entities, for HTML and XML (TwiML) alike.
std::string escapeHtml(std::string_view text);

// Twilio's locale tags in its spelling: af ar ca cs da de el en en-GB es fi fr he hi hr hu id it
// ja ko ms nb nl pl pt pt-BR ro ru sv th tl tr vi zh zh-CN zh-HK.
const std::vector<std::string>& supportedLocales();
// The supported tag matching `tag` case-insensitively ("PT-br" -> "pt-BR"), or nullopt.
std::optional<std::string> canonicalLocale(std::string_view tag);
// The locale for a destination region (ISO alpha-2): "FR" -> "fr", "BR" -> "pt-BR",
// "MX" -> "es", "GB" -> "en-GB", "HK" -> "zh-HK", ...; "en" when no supported locale fits.
std::string localeForRegion(std::string_view region);

// What every text is made from.
struct MessageVars {
  std::string locale = "en";  // a supported tag
  std::string friendly_name;  // the service's name or CustomFriendlyName
  std::string code;
  bool do_not_share = false;                 // the service's do_not_share_warning_enabled
  std::optional<std::string> amount, payee;  // PSD2: both set, or neither
  std::string app_hash;                      // sms: Android SMS Retriever hash, when given
  int ttl_minutes = 10;
};

// sms and whatsapp: e.g. "Your Acme verification code is: 123456" (the locale's own sentence),
// plus the do-not-share sentence, the PSD2 sentence naming amount and payee, and with an app hash
// the SMS Retriever form "<#> ...\n<hash>".
std::string smsText(const MessageVars& vars);

// call: what the voice says, in the locale, with the digits one by one ("1, 2, 3, 4, 5, 6") and
// the code said twice; `language` is the TTS language for <Say language="..."> (e.g. "fr-FR").
struct Speech {
  std::string text;
  std::string language;
};
Speech callSpeech(const MessageVars& vars);

// email: subject, plain text and HTML (UTF-8; every variable HTML-escaped in `html`).
// `substitutions` (from ChannelConfiguration.substitutions) fill {{name}} placeholders of the
// form used by Twilio e-mail templates; unknown placeholders are left out.
struct EmailContent {
  std::string subject;
  std::string text;
  std::string html;
};
EmailContent emailContent(const MessageVars& vars,
                          const std::map<std::string, std::string>& substitutions);

// A built-in template, as GET /v2/Templates lists it. Texts use {{friendly_name}}, {{code}},
// {{ttl}} and, for custom ones, other {{names}} filled from TemplateCustomSubstitutions.
struct MessageTemplate {
  std::string sid;  // HJ + 32 hex, fixed
  std::string friendly_name;
  std::vector<std::string> channels;                // "sms", "voice"
  std::map<std::string, std::string> translations;  // locale -> text; always has "en"
};
const std::vector<MessageTemplate>& builtinTemplates();
const MessageTemplate* findTemplate(std::string_view sid);
// The template's text for `vars.locale` (or "en" when it has no such translation) with every
// placeholder filled; kInvalidArgument (Error::invalid) naming the first placeholder with no value.
Result<std::string> renderTemplate(const MessageTemplate& t, const MessageVars& vars,
                                   const std::map<std::string, std::string>& custom);

}  // namespace verifyd
