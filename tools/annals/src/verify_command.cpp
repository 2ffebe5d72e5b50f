#include "verify_command.hpp"

#include <ostream>

#include <nlohmann/json.hpp>

#include "annals/postgres/verify.hpp"
#include "exit_code.hpp"

namespace annals::cli {

void verify(const std::string& url, const VerifyArgs& args, std::ostream& out) {
  const auto report = annals::postgres::verify(
      url, annals::postgres::VerifyOptions{.stream = args.stream, .max_findings = args.max_findings});
  if (args.json) {
    nlohmann::json findings = nlohmann::json::array();
    for (const auto& f : report.findings) {
      findings.push_back({{"kind", annals::postgres::to_string(f.kind)},
                          {"stream_id", f.stream_id ? nlohmann::json(*f.stream_id) : nullptr},
                          {"version", f.version ? nlohmann::json(*f.version) : nullptr},
                          {"message", f.message}});
    }
    out << nlohmann::json{{"ok", report.ok()},
                          {"streams", report.streams},
                          {"events", report.events},
                          {"digest", report.digest},
                          {"truncated", report.truncated},
                          {"findings", std::move(findings)}}
               .dump()
        << '\n';
  } else {
    for (const auto& f : report.findings) {
      out << annals::postgres::to_string(f.kind) << ": " << f.message << '\n';
    }
    if (report.truncated) out << "(more findings not shown; raise --max-findings)\n";
    out << "verified " << report.events << " events in " << report.streams << " streams: "
        << (report.ok() ? "ok" : std::to_string(report.findings.size()) +
                                     (report.truncated ? "+" : "") + " problem(s) found")
        << "\ndigest " << report.digest << '\n';
  }
  if (!report.ok()) {
    out.flush();
    throw ExitError(ExitCode::kFindings,
                    "verify found " + std::to_string(report.findings.size()) +
                        (report.truncated ? "+" : "") +
                        " problem(s) in the stored history (see above)");
  }
}

}  // namespace annals::cli
