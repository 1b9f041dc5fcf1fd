#pragma once
#include <tl/expected.hpp>

#include "verifyd/common/error.h"

namespace verifyd {

template <class T>
using Result = tl::expected<T, Error>;
using Status = Result<void>;

inline tl::unexpected<Error> fail(Error e) { return tl::unexpected<Error>(std::move(e)); }

}  // namespace verifyd
