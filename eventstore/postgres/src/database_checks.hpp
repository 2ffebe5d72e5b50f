// Internal: the checks a store and `verify` make of a database before trusting its log: the
// schema is migrated, and no stored transaction id is ahead of the server's next one (a dump
// restored into a new cluster; ARCHITECTURE decision 5).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "parse_int.hpp"

namespace annals::postgres::detail {

/// The highest stored transaction id and the server's next one, when the first is not below
/// the second.
struct TransactionIdsAhead {
  std::uint64_t stored = 0;
  std::uint64_t next = 0;
};

/// Throws NotFoundError when the annals schema is missing; returns the ids when stored
/// transaction ids are ahead of the server's, empty when all is well (or the log is empty).
/// `partitioned` (optional): set to whether the log is partitioned with stream heads
/// (sql/0019_stream_heads.sql), whose appends have statements of their own.
/// Cost: two statements on `tx`.
std::optional<TransactionIdsAhead> check_database(pqxx::transaction_base& tx,
                                                  bool* partitioned = nullptr);

}  // namespace annals::postgres::detail
