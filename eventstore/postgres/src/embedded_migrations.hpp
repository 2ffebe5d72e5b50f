// Internal: the migrations of sql/, embedded at build time (cmake/AnnalsEmbedSql.cmake).
#pragma once

#include <vector>

namespace annals::postgres::detail {

struct EmbeddedMigration {
  const char* name;  ///< file name without extension, e.g. "0001_create_event_store"
  const char* sql;
};

/// Every migration, in the order it must be applied.
const std::vector<EmbeddedMigration>& embedded_migrations();

}  // namespace annals::postgres::detail
