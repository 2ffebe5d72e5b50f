#include "verify_command.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/anchor.hpp"
#include "annals/postgres/verify.hpp"
#include "exit_code.hpp"
#include "progress_line.hpp"

namespace annals::cli {
namespace {

annals::postgres::Anchor read_anchor(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw annals::InvalidArgumentError("cannot read the anchor file " + file);
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return annals::postgres::parse_anchor(text.str());
  } catch (const annals::InvalidArgumentError& e) {
    throw annals::InvalidArgumentError(file + ": " + e.what());
  }
}

}  // namespace

namespace {

// --progress-timeout's seconds (checked to be in [0, 86400] by the parser) in milliseconds.
std::chrono::milliseconds milliseconds_of(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000)));
}

}  // namespace

void verify(const std::string& url, const VerifyArgs& args, std::ostream& out, std::ostream& err) {
  std::vector<annals::postgres::Anchor> anchors;
  for (const auto& file : args.anchor_files) anchors.push_back(read_anchor(file));
  ProgressLine progress(err, args.progress, "verifying");
  annals::postgres::VerifyOptions options{
      .stream = args.stream,
      .max_findings = args.max_findings,
      .anchors = std::move(anchors),
      .full = args.full,
      .progress_timeout = milliseconds_of(args.progress_timeout_seconds)};
  if (args.progress) options.on_progress = [&progress](std::int64_t n) { progress.update(n); };
  const auto report = annals::postgres::verify(url, options);
  progress.finish();
  if (args.json) {
    nlohmann::json findings = nlohmann::json::array();
    for (const auto& f : report.findings) {
      findings.push_back({{"kind", annals::postgres::to_string(f.kind)},
                          {"stream_id", f.stream_id ? nlohmann::json(*f.stream_id) : nullptr},
                          {"version", f.version ? nlohmann::json(*f.version) : nullptr},
                          {"message", f.message}});
    }
    nlohmann::json anchors_json = nlohmann::json::array();
    for (const auto& a : report.anchors) {
      anchors_json.push_back({{"position", a.anchor.position.to_string()},
                              {"events", a.anchor.events},
                              {"digest", a.anchor.digest},
                              {"time", a.anchor.time},
                              {"outcome", annals::postgres::to_string(a.outcome)}});
    }
    out << nlohmann::json{{"ok", report.ok()},
                          {"streams", report.streams},
                          {"events", report.events},
                          {"digest", report.digest},
                          {"truncated", report.truncated},
                          {"findings", std::move(findings)},
                          {"events_hashed", report.events_hashed},
                          {"anchors", std::move(anchors_json)}}
               .dump()
        << '\n';
  } else {
    for (const auto& f : report.findings) {
      out << annals::postgres::to_string(f.kind) << ": " << f.message << '\n';
    }
    for (const auto& a : report.anchors) {
      out << "anchor " << a.anchor.position.to_string() << " (" << a.anchor.events
          << " events): " << annals::postgres::to_string(a.outcome) << '\n';
    }
    if (report.truncated) out << "(more findings not shown; raise --max-findings)\n";
    out << "verified " << report.events << " events in " << report.streams << " streams: "
        << (report.ok() ? "ok"
                        : std::to_string(report.findings.size()) + (report.truncated ? "+" : "") +
                              " problem(s) found")
        << "\ndigest " << report.digest << '\n';
  }
  if (!report.ok()) {
    out.flush();
    throw ExitError(ExitCode::kFindings, "verify found " + std::to_string(report.findings.size()) +
                                             (report.truncated ? "+" : "") +
                                             " problem(s) in the stored history (see above)");
  }
}

void anchor(const std::string& url, const AnchorArgs& args, std::ostream& out) {
  const auto taken = annals::postgres::take_anchor(
      url,
      {.record = args.record, .progress_timeout = milliseconds_of(args.progress_timeout_seconds)});
  out << annals::postgres::to_json(taken) << '\n';
}

}  // namespace annals::cli
