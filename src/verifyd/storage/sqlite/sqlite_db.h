#pragma once
// A thin RAII layer over one sqlite3 connection with a cache of prepared statements.
// Not thread-safe: each connection is used by one thread at a time.
#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "verifyd/common/result.h"

namespace verifyd::sqlite {

class Db;

// A prepared statement borrowed from the cache; reset when the Query goes out of scope.
class Query {
 public:
  Query(Db& db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int i, std::string_view text);
  Query& bind(int i, const std::string& text) { return bind(i, std::string_view(text)); }
  Query& bind(int i, const char* text) { return bind(i, std::string_view(text)); }
  Query& bind(int i, std::int64_t v);
  Query& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Query& bind(int i, const std::optional<std::string>& v);
  Query& blob(int i, std::string_view bytes);

  // True while there is a row; false when done. Errors become kUnavailable.
  Result<bool> step();
  Status run();  // steps to the end

  std::string text(int col) const;
  std::optional<std::string> optText(int col) const;
  std::string blobAt(int col) const;
  std::int64_t integer(int col) const;

 private:
  Db& db_;
  sqlite3_stmt* stmt_;
};

class Db {
 public:
  static Result<std::unique_ptr<Db>> open(const std::string& path, bool durable);
  ~Db();
  // A cached prepared statement; aborts on SQL that does not compile (a code bug). The
  // `const char*` form keys the cache by address: pass string literals or strings that live
  // for the program's lifetime. The `std::string` form is for SQL built at run time.
  Query query(const char* sql);
  Query query(const std::string& sql);
  Status exec(const char* sql);
  sqlite3* raw() { return db_; }
  std::int64_t changes() { return sqlite3_changes64(db_); }
  Error error(std::string_view what);

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  sqlite3_stmt* prepare(const char* sql);
  std::unordered_map<const char*, sqlite3_stmt*> by_address_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace verifyd::sqlite
