#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace verifyd {

// What offline metadata (libphonenumber) knows of a number: no carrier network is consulted.
struct NumberInfo {
  bool valid = false;
  std::vector<std::string> validation_errors;  // Lookups v2 names: TOO_SHORT, NOT_A_NUMBER, …
  std::string e164;                            // empty when the input could not be parsed
  std::string calling_country_code;            // "1"
  std::string country_code;                    // ISO alpha-2, "US"; empty when unknown
  std::string national_format;                 // "(415) 992-9960"
  // Twilio's line type names: mobile, landline, fixedVoip, nonFixedVoip, tollFree, premium,
  // sharedCost, uan, voicemail, pager, personal, or unknown (e.g. US numbers, whose metadata
  // cannot tell a fixed line from a mobile).
  std::string line_type;
};

// What the core needs to know about phone numbers. Thread-safe.
class PhoneNumbers {
 public:
  virtual ~PhoneNumbers() = default;
  // True for a valid number in E.164 form (`+` and digits, valid for its country).
  virtual bool isValidE164(std::string_view number) const = 0;
  // The ISO 3166-1 alpha-2 region of a valid E.164 number ("US"), or "ZZ" when unknown.
  virtual std::string regionOf(std::string_view number) const = 0;
  // The main region of the number's calling code ("+1…" -> "US", "+44…" -> "GB"), or "ZZ":
  // cheap (no pattern matching), for choosing a message's locale.
  virtual std::string mainRegionOf(std::string_view number) const = 0;
  // Parses `number` (E.164, or national with `default_region`) and describes it.
  virtual NumberInfo describe(std::string_view number, std::string_view default_region) const = 0;
};

}  // namespace verifyd
