#pragma once
// A thin layer over one libpq connection: prepared statements cached per connection, binary
// parameters for bytea, bounded waits, and reconnection after a failure; and the query helpers
// the store's .cc files share (single rows, changed-row counts, keyset paging).
// Not thread-safe: each connection is used by one thread at a time. Server notices (NOTICE,
// INFO…) are logged at debug level instead of printed to stderr; warnings at warn level.
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "verifyd/common/result.h"
#include "verifyd/core/ports/stores.h"

namespace verifyd::pg {

// Parameters of one statement, $1 first. Text values go as text; `bytes` goes in binary format,
// so any byte sequence (a MAC, a sealed payload) reaches a bytea column unchanged.
class Params {
 public:
  Params& text(std::string_view v);
  Params& integer(std::int64_t v);
  Params& boolean(bool v);
  Params& bytes(std::string_view v);
  Params& optText(const std::optional<std::string>& v);
  Params& null();

  int size() const { return static_cast<int>(values_.size()); }

 private:
  friend class Conn;
  std::vector<std::string> values_;
  std::vector<bool> is_null_;
  std::vector<int> formats_;
};

// The rows of a result (text format), owned.
class Rows {
 public:
  Rows() = default;
  explicit Rows(PGresult* r) : r_(r, &PQclear) {}
  int size() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool empty() const { return size() == 0; }
  std::int64_t affected() const;  // rows changed by an INSERT, UPDATE or DELETE

  bool isNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string text(int row, int col) const;
  std::optional<std::string> optText(int row, int col) const;
  std::string bytes(int row, int col) const;  // a bytea column
  std::int64_t integer(int row, int col) const;
  bool boolean(int row, int col) const;
  std::string command() const { return r_ ? PQcmdStatus(r_.get()) : ""; }  // e.g. "COMMIT"

 private:
  std::shared_ptr<PGresult> r_;
};

struct ConnOptions {
  int connect_timeout_s = 3;         // used when the conninfo sets none
  int statement_timeout_ms = 10000;  // SET statement_timeout on each new connection
};

class Conn {
 public:
  Conn(std::string conninfo, ConnOptions options);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Connects when there is no usable connection (first use, or after a failure).
  Status ensure();
  // A statement with parameters, prepared once per connection (keyed by its text).
  Result<Rows> query(const std::string& sql, const Params& params = {});
  // A simple statement (or several separated by ';'), without parameters.
  Result<Rows> exec(const std::string& sql);

  // Transactions. `begin` reconnects once when the idle connection turns out to be dead, so
  // that the first request after PostgreSQL came back does not fail needlessly.
  Status begin();
  Status commit();
  void rollback();  // best effort; a connection it cannot roll back is dropped

  // The SQLSTATE of the latest failed statement ("" when none, or a connection failure).
  const std::string& sqlState() const { return sqlstate_; }
  bool retryable() const { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }
  void clearState() { sqlstate_.clear(); }
  // Drops the connection: the next use connects again.
  void drop();
  bool connected() const { return conn_ != nullptr; }

 private:
  Result<Rows> collect();
  Error failure(std::string_view what);
  Result<std::string> prepared(const std::string& sql);

  std::string conninfo_;
  ConnOptions options_;
  PGconn* conn_ = nullptr;
  std::string sqlstate_;
  std::unordered_map<std::string, std::string> statements_;  // SQL -> statement name
};

// Opens a connection (check PQstatus). `connect_timeout_s` applies unless the conninfo (URL or
// key=value form) sets connect_timeout itself: PQconnectdbParams expands the conninfo after it.
PGconn* connect(const std::string& conninfo, int connect_timeout_s);

// ---- query helpers -------------------------------------------------------------------------

// The first row `sql` returns, read by `readRow(rows, 0)`, or nullopt.
template <class T, class ReadRow>
Result<std::optional<T>> selectOne(Conn& c, const std::string& sql, const Params& params,
                                   ReadRow readRow) {
  auto r = c.query(sql, params);
  if (!r) return fail(r.error());
  if (r->empty()) return std::optional<T>();
  return std::optional<T>(readRow(*r, 0));
}

// The first column of the first row as an integer (0 when there is no row).
Result<std::int64_t> scalar(Conn& c, const std::string& sql, const Params& params);
// Runs a statement and returns the rows it changed.
Result<std::int64_t> change(Conn& c, const std::string& sql, const Params& params);
// Runs a statement.
Status run(Conn& c, const std::string& sql, const Params& params);

// Keyset paging over `table` filtered by `where` (parameters $1..$n in `params`), as the SQLite
// store pages: column 0 of `cols` is `seq`. `ascending` is the display order; the cursor
// direction decides the scan.
template <class T, class ReadRow>
Result<Page<T>> pageQuery(Conn& c, const std::string& cols, const std::string& table,
                          const std::string& where, Params params, bool ascending,
                          PageCursor cursor, int page_size, ReadRow readRow) {
  using D = PageCursor::Direction;
  const bool backwards = cursor.direction == D::kBefore;
  const bool scan_asc = ascending != backwards;
  const int n = params.size();
  std::string sql = "SELECT " + cols + " FROM " + table + " WHERE " + where;
  if (cursor.direction != D::kFirst) {
    sql += std::string(" AND seq ") + (scan_asc ? ">" : "<") + " $" + std::to_string(n + 1);
    params.integer(cursor.seq);
  }
  sql += std::string(" ORDER BY seq ") + (scan_asc ? "ASC" : "DESC") + " LIMIT $" +
         std::to_string(params.size() + 1);
  params.integer(page_size + 1);
  auto rows = c.query(sql, params);
  if (!rows) return fail(rows.error());
  Page<T> page;
  std::vector<long long> seqs;
  for (int i = 0; i < rows->size(); ++i) {
    if (static_cast<int>(page.items.size()) == page_size) {
      (backwards ? page.has_previous : page.has_next) = true;
      break;
    }
    seqs.push_back(rows->integer(i, 0));
    page.items.push_back(readRow(*rows, i));
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

}  // namespace verifyd::pg
