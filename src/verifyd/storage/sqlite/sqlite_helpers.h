#pragma once
// Helpers shared by the .cc files that implement SqliteStore: the reader pool, keyset paging
// and single-row selects.
#include <algorithm>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "verifyd/storage/sqlite/sqlite_store.h"

namespace verifyd {

namespace sqlite {

// Keyset paging over `table` filtered by `where` (with positional parameters bound by `bind`).
// `ascending` is the display order; the cursor direction decides which way to scan.
template <class T, class Bind, class ReadRow>
Result<Page<T>> pageQuery(Db& db, const std::string& cols, const std::string& table,
                          const std::string& where, int nparams, bool ascending, PageCursor cursor,
                          int page_size, Bind bind, ReadRow readRow) {
  using D = PageCursor::Direction;
  bool backwards = cursor.direction == D::kBefore;
  bool scan_asc = ascending != backwards;
  std::string sql = "SELECT " + cols + " FROM " + table + " WHERE " + where;
  if (cursor.direction != D::kFirst)
    sql += std::string(" AND seq ") + (scan_asc ? ">" : "<") + " ?" + std::to_string(nparams + 1);
  sql += std::string(" ORDER BY seq ") + (scan_asc ? "ASC" : "DESC") + " LIMIT ?" +
         std::to_string(nparams + 2);
  Query q = db.query(sql);
  bind(q);
  if (cursor.direction != D::kFirst) q.bind(nparams + 1, static_cast<std::int64_t>(cursor.seq));
  q.bind(nparams + 2, page_size + 1);
  Page<T> page;
  std::vector<long long> seqs;
  for (;;) {
    auto row = q.step();
    if (!row) return fail(row.error());
    if (!*row) break;
    if (static_cast<int>(page.items.size()) == page_size) {
      (backwards ? page.has_previous : page.has_next) = true;
      break;
    }
    seqs.push_back(q.integer(0));
    page.items.push_back(readRow(q));
  }
  if (backwards) {
    std::reverse(page.items.begin(), page.items.end());
    std::reverse(seqs.begin(), seqs.end());
    page.has_next = true;
  } else if (cursor.direction == D::kAfter) {
    page.has_previous = true;
  }
  if (!seqs.empty()) {
    page.first_seq = seqs.front();
    page.last_seq = seqs.back();
  }
  return page;
}

// The one row `sql` selects with ?1 = a and ?2 = b, or nullopt. `sql` must outlive the
// connection (the statement cache keys it by address).
template <class T, class ReadRow>
Result<std::optional<T>> selectOne(Db& db, const std::string& sql, std::string_view a,
                                   std::string_view b, ReadRow readRow) {
  Query q = db.query(sql.c_str());
  q.bind(1, a).bind(2, b);
  auto row = q.step();
  if (!row) return fail(row.error());
  if (!*row) return std::optional<T>();
  return std::optional<T>(readRow(q));
}

}  // namespace sqlite

// A reader connection borrowed from the pool (opened when the pool is empty).
class SqliteStore::ReaderLease {
 public:
  explicit ReaderLease(SqliteStore& s) : s_(s) {
    std::lock_guard lock(s_.readers_mu_);
    if (!s_.readers_.empty()) {
      db_ = std::move(s_.readers_.back());
      s_.readers_.pop_back();
    }
  }
  ~ReaderLease() {
    if (!db_) return;
    std::lock_guard lock(s_.readers_mu_);
    s_.readers_.push_back(std::move(db_));
  }
  Result<sqlite::Db*> get() {
    if (!db_) {
      auto opened = sqlite::Db::open(s_.path_, s_.durable_);
      if (!opened) return fail(opened.error());
      db_ = std::move(*opened);
    }
    return db_.get();
  }

 private:
  SqliteStore& s_;
  std::unique_ptr<sqlite::Db> db_;
};

template <class T>
Result<T> SqliteStore::read(const std::function<Result<T>(sqlite::Db&)>& fn) {
  ReaderLease lease(*this);
  auto db = lease.get();
  if (!db) return fail(db.error());
  return fn(**db);
}

}  // namespace verifyd
