#include <gtest/gtest.h>

#include "verifyd/phone/libphonenumber_numbers.h"

namespace verifyd {
namespace {

TEST(Phone, ValidNumbersInTheirCountriesMainRegionAndOthers) {
  LibPhoneNumbers phones;
  EXPECT_TRUE(phones.isValidE164("+15017122661"));  // US, the main region of +1
  EXPECT_TRUE(phones.isValidE164("+14165550123"));  // Canada: +1 but not the main region
  EXPECT_TRUE(phones.isValidE164("+18765551234"));  // Jamaica: +1, another region
  EXPECT_TRUE(phones.isValidE164("+447911123456"));
  EXPECT_TRUE(phones.isValidE164("+4915123456789"));
  EXPECT_TRUE(phones.isValidE164("+8613800138000"));
}

TEST(Phone, RejectsWhatIsNotAValidE164Number) {
  LibPhoneNumbers phones;
  for (const char* bad : {"", "+", "+1", "15017122661", "+1 501 712 2661", "+1501712266a",
                          "+05017122661", "+15555555555", "+999999999999999999", "+4479111234"})
    EXPECT_FALSE(phones.isValidE164(bad)) << bad;
}

}  // namespace
}  // namespace verifyd

namespace verifyd {
namespace {

TEST(Phone, RegionOfANumber) {
  LibPhoneNumbers phones;
  EXPECT_EQ(phones.regionOf("+447400123456"), "GB");
  EXPECT_EQ(phones.regionOf("+15017122661"), "US");
  EXPECT_EQ(phones.regionOf("+14165550123"), "CA");
  EXPECT_EQ(phones.regionOf("nonsense"), "ZZ");
}

}  // namespace
}  // namespace verifyd
