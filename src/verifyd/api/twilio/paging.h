#pragma once
// Twilio's paging envelope: `PageSize`, `Page`, `PageToken` in; `meta` with absolute URLs out.
#include <string>

#include "verifyd/api/twilio/encode.h"
#include "verifyd/api/twilio/form.h"
#include "verifyd/core/ports/stores.h"

namespace verifyd::twilio {

struct PageRequest {
  int page_size = 50;
  int page = 0;
  PageCursor cursor;
  std::string token;  // as received, to rebuild `url`
};

// kInvalidArgument for PageSize outside 1–1000, a negative Page or a token verifyd did not issue.
Result<PageRequest> parsePageRequest(const Params& query);

// `path` is the absolute URL of the list without query, `extra` any filter already encoded
// (`To=%2B1555…&`), `key` the name of the records array.
template <class T>
ojson pageMeta(const PageRequest& req, const Page<T>& page, const std::string& path,
               const std::string& extra, const std::string& key);

ojson pageMetaFor(const PageRequest& req, long long first_seq, long long last_seq, bool has_next,
                  bool has_previous, bool empty, const std::string& path, const std::string& extra,
                  const std::string& key);

template <class T>
ojson pageMeta(const PageRequest& req, const Page<T>& page, const std::string& path,
               const std::string& extra, const std::string& key) {
  return pageMetaFor(req, page.first_seq, page.last_seq, page.has_next, page.has_previous,
                     page.items.empty(), path, extra, key);
}

}  // namespace verifyd::twilio
