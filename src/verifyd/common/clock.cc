#include "verifyd/common/clock.h"

#include <chrono>

namespace verifyd {

UnixTime SystemClock::now() const {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace verifyd
