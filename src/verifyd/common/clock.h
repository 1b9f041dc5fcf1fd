#pragma once
#include <cstdint>

namespace verifyd {

// Seconds since the Unix epoch, UTC. Twilio's dates have one-second resolution.
using UnixTime = std::int64_t;

// The source of "now". Injected everywhere so that tests advance time instead of sleeping.
// Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixTime now() const = 0;
};

class SystemClock final : public Clock {
 public:
  UnixTime now() const override;
};

}  // namespace verifyd
