#include "statement_connection.hpp"

#include "annals/eventstore/error.hpp"

namespace annals::projections::detail {

void StatementConnection::prepare(const std::string& name, const std::string& sql) {
  pqxx::connection::prepare(name, sql);
  sql_.insert_or_assign(name, sql);
}

const std::string& StatementConnection::sql_of(const std::string& name) const {
  const auto found = sql_.find(name);
  if (found == sql_.end()) {
    throw InternalError("projection store: no statement \"" + name +
                        "\" is registered on this connection");
  }
  return found->second;
}

void StatementConnection::check(const std::string& name) {
  if (!unnamed_) {
    prepare_now(name);
    return;
  }
  // libpqxx's nameless statement: PQprepare with an empty name, replaced by the next one.
  pqxx::connection::prepare(sql_of(name));
  prepare_now(std::string());
}

void StatementConnection::ready_to_queue(const std::string& name) {
  if (!unnamed_) prepare_now(name);
}

void StatementConnection::queue(WritePipeline& pipeline, const std::string& name,
                                std::span<const Param> params) {
  if (unnamed_) {
    pipeline.add_unnamed(sql_of(name), params);
  } else {
    pipeline.add(name, params);
  }
}

}  // namespace annals::projections::detail
