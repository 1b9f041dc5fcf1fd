#include "verifyd/delivery/templates.h"

#include <gtest/gtest.h>

#include <set>

namespace verifyd {
namespace {

MessageVars english(std::string locale = "en") {
  MessageVars v;
  v.locale = std::move(locale);
  v.friendly_name = "Acme";
  v.code = "123456";
  return v;
}

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

// The position of every ASCII digit of `code` in `text`, in order, or npos.
bool digitsInOrder(const std::string& text, const std::string& code) {
  std::size_t at = 0;
  for (char c : code) {
    at = text.find(c, at);
    if (at == std::string::npos) return false;
    ++at;
  }
  return true;
}

// ---- locales ----

// The brief and the header speak of 35 tags, but the list they give has 36.
TEST(TemplatesLocales, ExactlyTheListedTwilioTags) {
  const std::vector<std::string> want{"af", "ar", "ca", "cs", "da", "de", "el", "en",    "en-GB",
                                      "es", "fi", "fr", "he", "hi", "hr", "hu", "id",    "it",
                                      "ja", "ko", "ms", "nb", "nl", "pl", "pt", "pt-BR", "ro",
                                      "ru", "sv", "th", "tl", "tr", "vi", "zh", "zh-CN", "zh-HK"};
  ASSERT_EQ(want.size(), 36u);
  EXPECT_EQ(supportedLocales(), want);
}

TEST(TemplatesLocales, CanonicalLocaleIgnoresCaseAndUnderscore) {
  EXPECT_EQ(canonicalLocale("pt_br"), "pt-BR");
  EXPECT_EQ(canonicalLocale("PT-br"), "pt-BR");
  EXPECT_EQ(canonicalLocale("EN-gb"), "en-GB");
  EXPECT_EQ(canonicalLocale("zh_hk"), "zh-HK");
  EXPECT_EQ(canonicalLocale("ZH-CN"), "zh-CN");
  EXPECT_EQ(canonicalLocale("FR"), "fr");
  EXPECT_EQ(canonicalLocale("nb"), "nb");
  EXPECT_EQ(canonicalLocale("no"), std::nullopt);
  EXPECT_EQ(canonicalLocale("en-US"), std::nullopt);
  EXPECT_EQ(canonicalLocale("pt-"), std::nullopt);
  EXPECT_EQ(canonicalLocale(""), std::nullopt);
  EXPECT_EQ(canonicalLocale("xx"), std::nullopt);
  for (const auto& tag : supportedLocales()) EXPECT_EQ(canonicalLocale(tag), tag);
}

TEST(TemplatesLocales, LocaleForRegion) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"US", "en"},    {"GB", "en-GB"}, {"IE", "en-GB"}, {"FR", "fr"},    {"BE", "nl"},
      {"BR", "pt-BR"}, {"PT", "pt"},    {"MX", "es"},    {"AR", "es"},    {"ES", "es"},
      {"DE", "de"},    {"AT", "de"},    {"CH", "de"},    {"CN", "zh-CN"}, {"TW", "zh"},
      {"HK", "zh-HK"}, {"MO", "zh-HK"}, {"JP", "ja"},    {"KR", "ko"},    {"RU", "ru"},
      {"UA", "en"},    {"IL", "he"},    {"IN", "en"},    {"ID", "id"},    {"MY", "ms"},
      {"PH", "tl"},    {"TH", "th"},    {"VN", "vi"},    {"TR", "tr"},    {"NL", "nl"},
      {"SE", "sv"},    {"NO", "nb"},    {"DK", "da"},    {"FI", "fi"},    {"PL", "pl"},
      {"CZ", "cs"},    {"HR", "hr"},    {"HU", "hu"},    {"RO", "ro"},    {"MD", "ro"},
      {"GR", "el"},    {"CY", "el"},    {"ZA", "en"},    {"SA", "ar"},    {"AE", "ar"},
      {"EG", "ar"},    {"AD", "ca"},    {"IT", "it"},    {"CA", "en"},    {"AU", "en"},
      {"br", "pt-BR"}, {"Fr", "fr"},
  };
  for (const auto& [region, locale] : cases) EXPECT_EQ(localeForRegion(region), locale) << region;
  EXPECT_EQ(localeForRegion(""), "en");
  EXPECT_EQ(localeForRegion("ZZ"), "en");
  EXPECT_EQ(localeForRegion("XK"), "en");
  EXPECT_EQ(localeForRegion("FRA"), "en");
  EXPECT_EQ(localeForRegion("R"), "en");
  EXPECT_EQ(localeForRegion(" F"), "en");
  EXPECT_EQ(localeForRegion("E "), "en");  // not a half-match of a listed region
}

TEST(TemplatesLocales, EveryRegionMapsToASupportedLocale) {
  for (char a = 'A'; a <= 'Z'; ++a) {
    for (char b = 'A'; b <= 'Z'; ++b) {
      std::string region{a, b};
      EXPECT_TRUE(canonicalLocale(localeForRegion(region)).has_value()) << region;
    }
  }
}

// ---- sms ----

TEST(TemplatesSms, EnglishBaseSentence) {
  EXPECT_EQ(smsText(english()), "Your Acme verification code is: 123456");
  EXPECT_EQ(smsText(english("en-GB")), "Your Acme verification code is: 123456");
}

TEST(TemplatesSms, EnglishDoNotShare) {
  auto v = english();
  v.do_not_share = true;
  EXPECT_EQ(smsText(v),
            "Your Acme verification code is: 123456. Don't share this code with anyone; our "
            "employees will never ask for the code.");
}

TEST(TemplatesSms, EnglishPsd2) {
  auto v = english();
  v.amount = "€39.99";
  v.payee = "Acme Shop";
  EXPECT_EQ(smsText(v),
            "Your Acme verification code is: 123456. You are about to pay €39.99 to Acme Shop.");
  v.do_not_share = true;
  EXPECT_EQ(smsText(v),
            "Your Acme verification code is: 123456. You are about to pay €39.99 to Acme Shop. "
            "Don't share this code with anyone; our employees will never ask for the code.");
}

TEST(TemplatesSms, Psd2NeedsBothAmountAndPayee) {
  auto v = english();
  v.amount = "10 EUR";
  EXPECT_EQ(smsText(v), "Your Acme verification code is: 123456");
}

TEST(TemplatesSms, AppHashUsesTheSmsRetrieverForm) {
  auto v = english();
  v.app_hash = "FA+9qCX9VSu";
  EXPECT_EQ(smsText(v), "<#> Your Acme verification code is: 123456\nFA+9qCX9VSu");
  v.do_not_share = true;
  EXPECT_EQ(smsText(v),
            "<#> Your Acme verification code is: 123456. Don't share this code with anyone; our "
            "employees will never ask for the code.\nFA+9qCX9VSu");
  for (const auto& tag : supportedLocales()) {
    v.locale = tag;
    std::string text = smsText(v);
    EXPECT_EQ(text.rfind("<#> ", 0), 0u) << tag;
    EXPECT_EQ(text.substr(text.size() - 12), "\nFA+9qCX9VSu") << tag;
  }
}

TEST(TemplatesSms, VariablesAreVerbatimInSms) {
  auto v = english();
  v.friendly_name = "A&B <Bank> {code}";
  v.amount = "{{ttl}}";
  v.payee = "O'Brien & \"Sons\"";
  EXPECT_EQ(smsText(v),
            "Your A&B <Bank> {code} verification code is: 123456. You are about to pay {{ttl}} to "
            "O'Brien & \"Sons\".");
}

TEST(TemplatesSms, EveryLocaleHasItsOwnTextWithTheCode) {
  std::set<std::string> texts;
  for (const auto& tag : supportedLocales()) {
    auto v = english(tag);
    v.code = "987654";
    v.friendly_name = "Zorblax";
    std::string base = smsText(v);
    EXPECT_NE(base.find("987654"), std::string::npos) << tag;
    EXPECT_NE(base.find("Zorblax"), std::string::npos) << tag;
    EXPECT_EQ(base.find('{'), std::string::npos) << tag << ": " << base;
    if (tag != "en-GB") {
      EXPECT_TRUE(texts.insert(base).second) << tag << " repeats " << base;
    }

    v.do_not_share = true;
    std::string warned = smsText(v);
    EXPECT_EQ(warned.rfind(base, 0), 0u) << tag;
    EXPECT_GT(warned.size(), base.size() + 10) << tag;

    v.amount = "12,34 €";
    v.payee = "Payee Ltd";
    std::string psd2 = smsText(v);
    EXPECT_EQ(psd2.rfind(base, 0), 0u) << tag;
    EXPECT_NE(psd2.find("12,34 €"), std::string::npos) << tag;
    EXPECT_NE(psd2.find("Payee Ltd"), std::string::npos) << tag;
    EXPECT_LT(psd2.find("Payee Ltd"), psd2.size() - (warned.size() - base.size())) << tag;
    EXPECT_EQ(psd2.find('{'), std::string::npos) << tag;
  }
}

TEST(TemplatesSms, SentencePunctuationFollowsTheLanguage) {
  auto v = english("zh-CN");
  v.do_not_share = true;
  std::string zh = smsText(v);
  EXPECT_NE(zh.find("123456。"), std::string::npos) << zh;
  EXPECT_EQ(zh.find(". "), std::string::npos) << zh;

  v.locale = "ja";
  std::string ja = smsText(v);
  EXPECT_NE(ja.find("です。"), std::string::npos) << ja;

  v.locale = "th";
  std::string th = smsText(v);
  EXPECT_NE(th.find("123456 "), std::string::npos) << th;
  EXPECT_EQ(th.find('.'), std::string::npos) << th;

  v.locale = "fr";
  std::string fr = smsText(v);
  EXPECT_NE(fr.find("123456. "), std::string::npos) << fr;
}

TEST(TemplatesSms, UnknownLocaleFallsBackToEnglishAndCaseIsIgnored) {
  EXPECT_EQ(smsText(english("xx")), "Your Acme verification code is: 123456");
  EXPECT_EQ(smsText(english("PT_br")), smsText(english("pt-BR")));
}

// ---- call ----

TEST(TemplatesCall, EnglishSpeechSpellsTheDigitsTwice) {
  Speech s = callSpeech(english());
  EXPECT_EQ(s.text,
            "Your Acme verification code is: 1, 2, 3, 4, 5, 6. Once again, your code is: 1, 2, 3, "
            "4, 5, 6.");
  EXPECT_EQ(s.language, "en-US");
  EXPECT_EQ(callSpeech(english("en-GB")).language, "en-GB");
}

TEST(TemplatesCall, TtsLanguages) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"fr", "fr-FR"},     {"pt-BR", "pt-BR"},  {"pt", "pt-PT"}, {"es", "es-ES"},
      {"zh-CN", "cmn-CN"}, {"zh-HK", "yue-HK"}, {"ja", "ja-JP"}, {"ar", "arb"},
      {"de", "de-DE"},     {"nb", "nb-NO"},     {"tl", "fil-PH"}};
  for (const auto& [tag, lang] : cases) EXPECT_EQ(callSpeech(english(tag)).language, lang) << tag;
  for (const auto& tag : supportedLocales()) {
    EXPECT_FALSE(callSpeech(english(tag)).language.empty()) << tag;
  }
}

TEST(TemplatesCall, EveryLocaleSaysTheDigitsTwice) {
  for (const auto& tag : supportedLocales()) {
    auto v = english(tag);
    v.code = "97531";
    Speech s = callSpeech(v);
    EXPECT_EQ(s.text.find("97531"), std::string::npos) << tag << ": digits not spaced";
    // the digits in order, once in each half of what is said
    std::size_t second = s.text.find('9', s.text.find('1') + 1);
    ASSERT_NE(second, std::string::npos) << tag << ": " << s.text;
    EXPECT_TRUE(digitsInOrder(s.text.substr(0, second), "97531")) << tag << ": " << s.text;
    EXPECT_TRUE(digitsInOrder(s.text.substr(second), "97531")) << tag << ": " << s.text;
    EXPECT_EQ(count(s.text, "9"), 2u) << tag;
    EXPECT_EQ(count(s.text, "1"), 2u) << tag;
    EXPECT_NE(s.text.find("Acme"), std::string::npos) << tag;
  }
}

TEST(TemplatesCall, Psd2IsSaidBetweenTheTwoCodes) {
  auto v = english();
  v.code = "42";
  v.amount = "$5";
  v.payee = "Bob";
  EXPECT_EQ(
      callSpeech(v).text,
      "Your Acme verification code is: 4, 2. You are about to pay $5 to Bob. Once again, your "
      "code is: 4, 2.");
}

// ---- email ----

TEST(TemplatesEmail, EnglishSubjectAndText) {
  auto v = english();
  v.ttl_minutes = 10;
  EmailContent e = emailContent(v, {});
  EXPECT_EQ(e.subject, "Your Acme verification code");
  EXPECT_EQ(e.text, "Your Acme verification code is: 123456. This code will expire in 10 minutes.");
  v.do_not_share = true;
  v.amount = "€5";
  v.payee = "Shop";
  v.ttl_minutes = 15;
  EXPECT_EQ(
      emailContent(v, {}).text,
      "Your Acme verification code is: 123456. You are about to pay €5 to Shop. This code "
      "will expire in 15 minutes. Don't share this code with anyone; our employees will never "
      "ask for the code.");
}

TEST(TemplatesEmail, EnglishHtmlDocument) {
  auto v = english();
  v.do_not_share = true;
  std::string h = emailContent(v, {}).html;
  EXPECT_EQ(h.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(h.find("<html lang=\"en\">"), std::string::npos) << h;
  EXPECT_EQ(h.find("dir="), std::string::npos);
  EXPECT_NE(h.find("<meta charset=\"utf-8\">"), std::string::npos);
  EXPECT_NE(h.find("<title>Your Acme verification code</title>"), std::string::npos);
  EXPECT_NE(h.find("<strong>123456</strong>"), std::string::npos);
  EXPECT_NE(h.find("font-size:32px"), std::string::npos);
  EXPECT_NE(h.find("This code will expire in 10 minutes."), std::string::npos);
  EXPECT_NE(h.find("Don&#39;t share this code with anyone"), std::string::npos);
  EXPECT_NE(h.find("</html>"), std::string::npos);
}

TEST(TemplatesEmail, HtmlEscapesEveryVariable) {
  auto v = english();
  v.friendly_name = "<script>alert('x')</script> & \"Co\"";
  v.amount = "<b>5</b>";
  v.payee = "Tom & Jerry";
  EmailContent e = emailContent(v, {});
  // verbatim in the subject and text
  EXPECT_EQ(e.subject, "Your <script>alert('x')</script> & \"Co\" verification code");
  EXPECT_NE(e.text.find("<script>alert('x')</script> & \"Co\""), std::string::npos);
  EXPECT_NE(e.text.find("pay <b>5</b> to Tom & Jerry."), std::string::npos);
  // escaped in the html
  EXPECT_EQ(e.html.find("<script"), std::string::npos) << e.html;
  EXPECT_EQ(e.html.find("<b>"), std::string::npos) << e.html;
  EXPECT_EQ(e.html.find("Tom & Jerry"), std::string::npos) << e.html;
  EXPECT_NE(e.html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Co&quot;"),
            std::string::npos)
      << e.html;
  EXPECT_NE(e.html.find("&lt;b&gt;5&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(e.html.find("Tom &amp; Jerry"), std::string::npos);
}

TEST(TemplatesEmail, SubstitutionsFillTheSubject) {
  auto v = english();
  std::map<std::string, std::string> subs{{"subject", "{{app}}: sign-in code for {{user}}{{nope}}"},
                                          {"app", "Acme & Co"},
                                          {"user", "<ann>"}};
  EmailContent e = emailContent(v, subs);
  EXPECT_EQ(e.subject, "Acme & Co: sign-in code for <ann>");
  EXPECT_NE(e.html.find("<title>Acme &amp; Co: sign-in code for &lt;ann&gt;</title>"),
            std::string::npos)
      << e.html;
  EXPECT_NE(e.html.find("<strong>123456</strong>"), std::string::npos);

  subs["subject"] = "{{friendly_name}} code";
  EXPECT_EQ(emailContent(v, subs).subject, "Acme code");
  // a substituted value is not expanded again
  subs = {{"subject", "Hi {{name}}"}, {"name", "{{app}}"}, {"app", "X"}};
  EXPECT_EQ(emailContent(v, subs).subject, "Hi {{app}}");
}

TEST(TemplatesEmail, EveryLocaleHasAnHtmlDocumentWithTheCode) {
  for (const auto& tag : supportedLocales()) {
    auto v = english(tag);
    v.code = "246810";
    v.ttl_minutes = 7;
    v.do_not_share = true;
    EmailContent e = emailContent(v, {});
    EXPECT_NE(e.subject.find("Acme"), std::string::npos) << tag;
    EXPECT_EQ(e.subject.find("246810"), std::string::npos) << tag;
    EXPECT_NE(e.text.find("246810"), std::string::npos) << tag;
    EXPECT_NE(e.text.find('7'), std::string::npos) << tag;
    EXPECT_EQ(e.text.find('{'), std::string::npos) << tag;
    EXPECT_NE(e.html.find("<strong>246810</strong>"), std::string::npos) << tag;
    EXPECT_EQ(e.html.find('{'), std::string::npos) << tag;
    bool rtl = tag == "ar" || tag == "he";
    EXPECT_EQ(e.html.find("dir=\"rtl\"") != std::string::npos, rtl) << tag;
    EXPECT_NE(e.html.find("<html lang=\""), std::string::npos) << tag;
  }
}

// ---- templates ----

TEST(TemplatesBuiltin, FourTwilioTemplatesInEveryLocale) {
  const auto& all = builtinTemplates();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].sid, "HJ00000000000000000000000000000001");
  EXPECT_EQ(all[0].friendly_name, "Base Verification Template");
  EXPECT_EQ(all[0].channels, (std::vector<std::string>{"sms", "voice"}));
  EXPECT_EQ(all[1].friendly_name, "Base Verification Template 2 with do not share");
  EXPECT_EQ(all[1].channels, (std::vector<std::string>{"sms"}));
  EXPECT_EQ(all[2].friendly_name, "Base Verification Template 3");
  EXPECT_EQ(all[2].channels, (std::vector<std::string>{"sms", "voice"}));
  EXPECT_EQ(all[3].friendly_name, "Base Verification Template 4 with expiry");
  for (const auto& t : all) {
    ASSERT_EQ(t.sid.size(), 34u);
    EXPECT_EQ(t.sid.substr(0, 2), "HJ");
    EXPECT_EQ(t.sid.find_first_not_of("0123456789abcdefABCDEF", 2), std::string::npos);
    EXPECT_EQ(findTemplate(t.sid), &t);
    EXPECT_EQ(t.translations.size(), supportedLocales().size()) << t.sid;
    for (const auto& tag : supportedLocales()) EXPECT_EQ(t.translations.count(tag), 1u) << tag;
  }
  EXPECT_EQ(findTemplate("HJ00000000000000000000000000000009"), nullptr);
  EXPECT_EQ(findTemplate("hj00000000000000000000000000000001"), nullptr);
  EXPECT_EQ(findTemplate(""), nullptr);
}

TEST(TemplatesBuiltin, EnglishTexts) {
  EXPECT_EQ(findTemplate("HJ00000000000000000000000000000001")->translations.at("en"),
            "Your {{friendly_name}} verification code is: {{code}}");
  EXPECT_EQ(findTemplate("HJ00000000000000000000000000000002")->translations.at("en"),
            "Your {{friendly_name}} verification code is: {{code}}. Do not share this code with "
            "anyone.");
  EXPECT_EQ(findTemplate("HJ00000000000000000000000000000003")->translations.at("en"),
            "{{code}} is your verification code for {{friendly_name}}.");
  EXPECT_EQ(findTemplate("HJ00000000000000000000000000000004")->translations.at("en"),
            "Your {{friendly_name}} verification code is: {{code}}. This code will expire in "
            "{{ttl}} minutes.");
}

TEST(TemplatesBuiltin, RenderEnglish) {
  auto v = english();
  v.ttl_minutes = 5;
  auto r = renderTemplate(*findTemplate("HJ00000000000000000000000000000004"), v, {});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, "Your Acme verification code is: 123456. This code will expire in 5 minutes.");
  r = renderTemplate(*findTemplate("HJ00000000000000000000000000000003"), v, {});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "123456 is your verification code for Acme.");
}

TEST(TemplatesBuiltin, EveryTemplateRendersInEveryLocale) {
  for (const auto& t : builtinTemplates()) {
    std::set<std::string> seen;
    for (const auto& tag : supportedLocales()) {
      auto v = english(tag);
      v.code = "135790";
      v.ttl_minutes = 8;
      auto r = renderTemplate(t, v, {});
      ASSERT_TRUE(r.has_value()) << t.sid << " " << tag << ": " << r.error().message;
      EXPECT_NE(r->find("135790"), std::string::npos) << t.sid << " " << tag;
      EXPECT_NE(r->find("Acme"), std::string::npos) << t.sid << " " << tag;
      EXPECT_EQ(r->find('{'), std::string::npos) << t.sid << " " << tag << ": " << *r;
      if (t.sid.back() == '4') {
        EXPECT_NE(r->find('8'), std::string::npos) << tag << ": " << *r;
      }
      if (tag != "en-GB") {
        EXPECT_TRUE(seen.insert(*r).second) << t.sid << " " << tag;
      }
    }
  }
}

TEST(TemplatesBuiltin, UnknownLocaleFallsBackToEnglish) {
  auto v = english("xx");
  auto r = renderTemplate(builtinTemplates()[0], v, {});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "Your Acme verification code is: 123456");
}

TEST(TemplatesBuiltin, CustomSubstitutions) {
  MessageTemplate t{"HJ0123456789abcdef0123456789abcdef",
                    "Custom",
                    {"sms"},
                    {{"en", "Hi {{name}}, your {{friendly_name}} code is {{code}} {single}"},
                     {"fr", "Bonjour {{name}}, votre code {{friendly_name}} : {{code}}"}}};
  auto v = english();
  auto r = renderTemplate(t, v, {{"name", "Ann {{code}}"}, {"code", "000000"}});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  // built-in variables win, and substituted values are not expanded again
  EXPECT_EQ(*r, "Hi Ann {{code}}, your Acme code is 123456 {single}");
  v.locale = "fr";
  r = renderTemplate(t, v, {{"name", "Zoé"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "Bonjour Zoé, votre code Acme : 123456");
  v.locale = "de";  // no German: English
  r = renderTemplate(t, v, {{"name", "Udo"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rfind("Hi Udo", 0), 0u);
}

TEST(TemplatesBuiltin, MissingCustomSubstitutionFails) {
  MessageTemplate t{"HJ0123456789abcdef0123456789abcdef",
                    "Custom",
                    {"sms"},
                    {{"en", "{{greeting}} {{code}} for {{ what }}"}}};
  auto r = renderTemplate(t, english(), {{"greeting", "Hello"}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(r.error().param, "TemplateCustomSubstitutions");
  EXPECT_NE(r.error().message.find("no value for {{what}}"), std::string::npos)
      << r.error().message;
  EXPECT_TRUE(renderTemplate(t, english(), {{"greeting", "Hi"}, {"what", "you"}}).has_value());
}

}  // namespace
}  // namespace verifyd
