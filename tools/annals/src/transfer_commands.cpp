#include "transfer_commands.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <ostream>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/log_transfer.hpp"
#include "exit_code.hpp"
#include "progress_line.hpp"

namespace annals::cli {

void export_events(const std::string& url, const ExportArgs& args, std::ostream& out,
                   std::ostream& err) {
  annals::postgres::ExportOptions options{.category = args.category};
  if (args.from) options.after = Position::parse(*args.from);
  std::ofstream file;
  if (args.output) {
    file.open(*args.output, std::ios::binary | std::ios::trunc);
    if (!file) throw InvalidArgumentError("export: cannot write " + *args.output);
  }
  std::ostream& target = args.output ? file : out;
  const auto summary = annals::postgres::export_log(url, options, target);
  err << "exported " << summary.events << " events, up to position " << summary.last.to_string()
      << '\n';
}

void import_events(const std::string& url, const ImportArgs& args, std::ostream& out,
                   std::ostream& err) {
  annals::postgres::ImportSummary summary;
  ProgressLine progress(err, args.progress, "importing " + args.file);
  annals::postgres::ImportOptions options;
  if (args.progress) {
    options.on_progress = [&progress](const annals::postgres::ImportProgress& p) {
      const auto percent = p.bytes_total == 0 ? 100 : p.bytes_read * 100 / p.bytes_total;
      progress.update(p.events, static_cast<int>(std::min<std::uint64_t>(percent, 100)));
    };
  }
  try {
    summary = annals::postgres::import_log(url, args.file, options);
  } catch (const CorruptionError& e) {
    progress.finish();
    throw ExitError(ExitCode::kFindings, e.what());
  }
  progress.finish();
  if (args.json) {
    out << nlohmann::json{{"events", summary.events},
                          {"written", summary.written},
                          {"already_stored", summary.already_stored},
                          {"streams", summary.streams}}
               .dump()
        << '\n';
    return;
  }
  out << "imported " << summary.written << " of " << summary.events << " events ("
      << summary.already_stored << " already stored) in " << summary.streams << " streams\n";
}

}  // namespace annals::cli
