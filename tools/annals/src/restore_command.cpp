#include "restore_command.hpp"

#include <ostream>

#include <nlohmann/json.hpp>

#include "annals/postgres/restore.hpp"
#include "exit_code.hpp"

namespace annals::cli {
namespace {

nlohmann::json status_json(const annals::postgres::RestoreStatus& status) {
  return {{"stored_max", status.stored_max ? nlohmann::json(*status.stored_max) : nullptr},
          {"server_next", status.server_next},
          {"offset", status.offset},
          {"other_sessions", status.other_sessions},
          {"needs_fix", status.needs_fix()}};
}

void print_status(const annals::postgres::RestoreStatus& status, std::ostream& out) {
  out << "stored transaction ids up to: "
      << (status.stored_max ? std::to_string(*status.stored_max) : std::string("(no events)"))
      << "\nnext transaction id:          " << status.server_next << " (offset " << status.offset
      << ")\nother sessions:               " << status.other_sessions << '\n';
}

}  // namespace

void restore_check(const std::string& url, const RestoreCheckArgs& args, std::ostream& out) {
  if (args.fix) {
    const auto fix = annals::postgres::fix_restore(url);
    const bool changed = fix.new_offset != fix.old_offset;
    if (args.json) {
      auto json = status_json(fix.after);
      json["fixed"] = changed;
      json["old_offset"] = fix.old_offset;
      out << json.dump() << '\n';
      return;
    }
    print_status(fix.after, out);
    if (changed) {
      out << "fixed: offset " << fix.old_offset << " -> " << fix.new_offset
          << "; stores open and new events sort after every restored one\n";
    } else {
      out << "ok: nothing to fix\n";
    }
    return;
  }
  const auto status = annals::postgres::check_restore(url);
  if (args.json) {
    out << status_json(status).dump() << '\n';
  } else {
    print_status(status, out);
    out << (status.needs_fix()
                ? "needs fix: stored transaction ids are ahead of this server's (a restore into "
                  "another cluster); stores refuse to open. Stop every service using the "
                  "database and run `annals restore-check --fix` as the store's owner\n"
                : "ok: nothing to fix\n");
  }
  if (status.needs_fix()) {
    out.flush();
    throw ExitError(ExitCode::kNeedsFix,
                    "stored transaction ids are ahead of the server's; run `annals restore-check "
                    "--fix`");
  }
}

}  // namespace annals::cli
