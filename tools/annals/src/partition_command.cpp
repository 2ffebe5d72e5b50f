#include "partition_command.hpp"

#include <ostream>

#include <nlohmann/json.hpp>

#include "annals/postgres/postgres_event_store.hpp"

namespace annals::cli {

void partitions(const std::string& url, const PartitionsArgs& args, std::ostream& out) {
  if (args.ensure) {
    const int created = annals::postgres::ensure_log_partitions(url, args.ahead);
    if (args.json) {
      out << nlohmann::json{{"created", created}}.dump() << '\n';
    } else {
      out << "created " << created << " partition" << (created == 1 ? "" : "s") << '\n';
    }
    return;
  }
  if (!args.archive.empty()) {
    const auto events =
        annals::postgres::archive_log_partition(url, args.archive, args.archive_schema);
    if (args.json) {
      out << nlohmann::json{{"archived", args.archive},
                            {"schema", args.archive_schema},
                            {"events", events}}
                 .dump()
          << '\n';
    } else {
      out << "archived " << args.archive << " (" << events << " events) to schema "
          << args.archive_schema << '\n';
    }
    return;
  }
  if (!args.restore.empty()) {
    const auto events = annals::postgres::restore_log_partition(url, args.restore);
    if (args.json) {
      out << nlohmann::json{{"restored", args.restore}, {"events", events}}.dump() << '\n';
    } else {
      out << "restored " << args.restore << " (" << events << " events)\n";
    }
    return;
  }
  const auto list = annals::postgres::list_log_partitions(url);
  if (!args.json && list.empty()) {
    out << "the log is not partitioned (annals migrate --partitioned-log)\n";
    return;
  }
  for (const auto& p : list) {
    if (args.json) {
      out << nlohmann::json{{"name", p.name},
                            {"from_position", p.from_position},
                            {"to_position", p.to_position},
                            {"archived_in", p.archived_in.empty() ? nlohmann::json(nullptr)
                                                                  : nlohmann::json(p.archived_in)},
                            {"tablespace", p.tablespace.empty() ? nlohmann::json(nullptr)
                                                                : nlohmann::json(p.tablespace)}}
                 .dump()
          << '\n';
    } else {
      out << p.name << "  positions " << p.from_position << ".." << (p.to_position - 1) << "  "
          << (p.archived_in.empty() ? std::string("attached") : "archived in " + p.archived_in)
          << (p.tablespace.empty() ? std::string() : "  tablespace " + p.tablespace) << '\n';
    }
  }
}

}  // namespace annals::cli
