// Keeps the code blocks of the framework's docs identical to compiled code (STYLE 2.8, Marten's
// snippets): every block of docs/aggregates.md and docs/framework.md that follows a line
// `<!-- snippet: NAME -->` must equal the lines between `// docs:begin NAME` and `// docs:end`
// in this directory's sources (dedented by the marker's indentation).
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

namespace fs = std::filesystem;

const fs::path kRoot = ANNALS_SOURCE_DIR;

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string trimmed(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

// name -> text of every docs:begin/docs:end region in the framework's test sources.
std::map<std::string, std::string> source_snippets() {
  std::map<std::string, std::string> snippets;
  for (const auto& entry : fs::directory_iterator(kRoot / "tests/unit/framework")) {
    const auto ext = entry.path().extension();
    if (ext != ".hpp" && ext != ".cpp") continue;
    const auto lines = lines_of(entry.path());
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::string marker = trimmed(lines[i]);
      if (marker.rfind("// docs:begin ", 0) != 0) continue;
      const std::string name = marker.substr(14);
      const auto indent = lines[i].find_first_not_of(' ');
      std::string body;
      for (++i; i < lines.size() && trimmed(lines[i]) != "// docs:end"; ++i) {
        body += (trimmed(lines[i]).empty() ? "" : lines[i].substr(indent)) + "\n";
      }
      EXPECT_FALSE(snippets.contains(name)) << "snippet " << name << " defined twice";
      snippets[name] = body;
    }
  }
  return snippets;
}

TEST(DocsSnippetsTest, DocCodeBlocksMatchCompiledCode) {
  const auto snippets = source_snippets();
  ASSERT_FALSE(snippets.empty());
  int checked = 0;
  for (const char* doc : {"docs/aggregates.md", "docs/framework.md"}) {
    const auto lines = lines_of(kRoot / doc);
    ASSERT_FALSE(lines.empty()) << doc << " is missing";
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::string prefix = "<!-- snippet: ";
      if (lines[i].rfind(prefix, 0) != 0) continue;
      const std::string name = lines[i].substr(prefix.size(), lines[i].size() - prefix.size() - 4);
      ASSERT_LT(i + 1, lines.size());
      ASSERT_EQ(lines[i + 1], "```cpp") << doc << ":" << i + 2;
      std::string block;
      std::size_t j = i + 2;
      for (; j < lines.size() && lines[j] != "```"; ++j) block += lines[j] + "\n";
      const auto found = snippets.find(name);
      if (found == snippets.end()) {
        ADD_FAILURE() << doc << ":" << i + 1 << ": no `// docs:begin " << name
                      << "` in tests/unit/framework";
      } else {
        EXPECT_EQ(block, found->second)
            << doc << ":" << i + 1 << ": the block differs from the compiled snippet " << name;
      }
      ++checked;
      i = j;
    }
  }
  EXPECT_GE(checked, 9);
}

}  // namespace
