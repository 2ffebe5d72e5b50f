#include "pg.hpp"

#include <stdexcept>
#include <string>

namespace annals::bench {

std::uint64_t PgResult::touch_all_fields() const noexcept {
  PGresult* result = result_.get();
  const int rows = PQntuples(result);
  const int columns = PQnfields(result);
  std::uint64_t sum = 0;
  for (int row = 0; row < rows; ++row) {
    for (int column = 0; column < columns; ++column) {
      const char* value = PQgetvalue(result, row, column);
      const int length = PQgetlength(result, row, column);
      // The value itself is read, not only its address (libpq terminates every value, binary
      // ones too, so value[0] exists even when length is 0).
      sum += static_cast<std::uint64_t>(length) + static_cast<unsigned char>(value[0]);
    }
  }
  return sum;
}

PgConnection::PgConnection(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
  if (conn_ == nullptr) throw std::runtime_error("libpq: out of memory");
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn_);
    PQfinish(conn_);
    conn_ = nullptr;
    throw std::runtime_error("cannot connect: " + message);
  }
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

void PgConnection::fail(const std::string& what, const PGresult* result) const {
  std::string message = result != nullptr ? PQresultErrorMessage(result) : "";
  if (message.empty()) message = PQerrorMessage(conn_);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  throw std::runtime_error(what + ": " + message);
}

void PgConnection::exec(const std::string& sql) {
  PgResult result(PQexec(conn_, sql.c_str()));
  const auto status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(sql, result.get());
}

PgResult PgConnection::query(const std::string& sql) {
  PgResult result(PQexec(conn_, sql.c_str()));
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) fail(sql, result.get());
  return result;
}

std::string PgConnection::scalar(const std::string& sql) {
  auto result = query(sql);
  if (result.rows() < 1) throw std::runtime_error(sql + ": no rows");
  return result.text(0, 0);
}

void PgConnection::prepare(const std::string& name, const std::string& sql,
                           const std::vector<Oid>& types) {
  PgResult result(PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(types.size()),
                            types.empty() ? nullptr : types.data()));
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) fail("prepare " + name, result.get());
}

PgResult PgConnection::exec_prepared(const char* name, int count, const char* const* values,
                                     const int* lengths, const int* formats,
                                     ExecStatusType expected, int result_format) {
  PgResult result(PQexecPrepared(conn_, name, count, values, lengths, formats, result_format));
  if (PQresultStatus(result.get()) != expected) fail(name, result.get());
  return result;
}

std::uint64_t PgConnection::copy_out_rows(const std::string& copy_sql) {
  {
    PgResult start(PQexec(conn_, copy_sql.c_str()));
    if (PQresultStatus(start.get()) != PGRES_COPY_OUT) fail(copy_sql, start.get());
  }
  std::uint64_t rows = 0;
  for (;;) {
    char* buffer = nullptr;
    const int length = PQgetCopyData(conn_, &buffer, 0);
    if (length > 0) {
      ++rows;
      PQfreemem(buffer);
    } else if (length == -1) {
      break;
    } else {
      fail("COPY: PQgetCopyData", nullptr);
    }
  }
  bool failed = false;
  std::string message;
  while (PGresult* raw = PQgetResult(conn_)) {
    PgResult end(raw);
    if (PQresultStatus(raw) != PGRES_COMMAND_OK) {
      failed = true;
      message = PQresultErrorMessage(raw);
    }
  }
  if (failed) throw std::runtime_error("COPY: " + message);
  return rows;
}

namespace {

// Quotes a value for a key=value connection string: '...' with ' and \ escaped.
std::string quote_conninfo_value(const std::string& value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

}  // namespace

std::string with_database(const std::string& conninfo, const std::string& dbname) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    std::string message = error != nullptr ? error : "out of memory";
    if (error != nullptr) PQfreemem(error);
    throw std::runtime_error("invalid connection string: " + message);
  }
  std::string out;
  for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    const std::string keyword = option->keyword;
    if (keyword == "dbname" || option->val == nullptr) continue;
    out += keyword + "=" + quote_conninfo_value(option->val) + " ";
  }
  PQconninfoFree(options);
  return out + "dbname=" + quote_conninfo_value(dbname);
}

}  // namespace annals::bench
