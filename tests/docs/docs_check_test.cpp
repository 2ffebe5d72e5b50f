// Keeps the documentation honest (STYLE 2.8, Marten's snippets):
//  - every code block of docs/**.md, examples/**.md and README.md that follows a line
//    `<!-- snippet: NAME -->` equals the lines between `// docs:begin NAME` and `// docs:end`
//    in a compiled source under tests/, samples/, bench/, tools/ or examples/ (or `# docs:begin
//    NAME` and `# docs:end` in a CMakeLists.txt there), dedented by the marker's indentation, so
//    examples in the docs are code that builds and runs, and every such region appears in a
//    document;
//  - every relative link between documents points at a file that exists;
//  - every test a document names as proof (`Suite.Name`) is defined in the test sources, so a
//    renamed or deleted test cannot leave a guarantee backed by nothing.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
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

// Files under `dir` whose extension, or whole name (e.g. "CMakeLists.txt"), is in `kinds`.
std::vector<fs::path> files_under(const fs::path& dir, const std::vector<std::string>& kinds) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    for (const auto& kind : kinds) {
      if (entry.path().extension() == kind || entry.path().filename() == kind) {
        out.push_back(entry.path());
      }
    }
  }
  return out;
}

std::vector<fs::path> documents() {
  auto docs = files_under(kRoot / "docs", {".md"});
  for (const auto& doc : files_under(kRoot / "examples", {".md"})) docs.push_back(doc);
  docs.push_back(kRoot / "README.md");
  return docs;
}

struct Snippet {
  std::string text;
  std::string where;
};

// name -> every docs:begin/docs:end region of the compiled sources (and CMake files).
std::map<std::string, Snippet> source_snippets() {
  std::map<std::string, Snippet> snippets;
  for (const char* dir : {"tests", "samples", "bench", "tools", "examples"}) {
    for (const auto& file : files_under(kRoot / dir, {".cpp", ".hpp", "CMakeLists.txt"})) {
      const std::string comment = file.extension() == ".txt" ? "# " : "// ";
      const auto lines = lines_of(file);
      for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string marker = trimmed(lines[i]);
        if (marker.rfind(comment + "docs:begin ", 0) != 0) continue;
        const std::string name = marker.substr(comment.size() + 11);
        const std::string where = fs::relative(file, kRoot).string() + ":" + std::to_string(i + 1);
        const auto indent = lines[i].find_first_not_of(' ');
        std::string body;
        for (++i; i < lines.size() && trimmed(lines[i]) != comment + "docs:end"; ++i) {
          body += (trimmed(lines[i]).empty() ? "" : lines[i].substr(indent)) + "\n";
        }
        const auto [it, inserted] = snippets.emplace(name, Snippet{body, where});
        EXPECT_TRUE(inserted) << "snippet " << name << " defined at " << it->second.where
                              << " and at " << where;
      }
    }
  }
  return snippets;
}

TEST(DocsCheckTest, SnippetBlocksMatchCompiledCode) {
  const auto snippets = source_snippets();
  int checked = 0;
  std::map<std::string, int> used;
  for (const auto& doc : documents()) {
    const auto lines = lines_of(doc);
    const std::string name_of_doc = fs::relative(doc, kRoot).string();
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::string prefix = "<!-- snippet: ";
      if (lines[i].rfind(prefix, 0) != 0) continue;
      const std::string name = lines[i].substr(prefix.size(), lines[i].size() - prefix.size() - 4);
      ASSERT_LT(i + 1, lines.size()) << name_of_doc;
      ASSERT_EQ(lines[i + 1].rfind("```", 0), 0u)
          << name_of_doc << ":" << i + 2 << ": a code block must follow the snippet marker";
      std::string block;
      std::size_t j = i + 2;
      for (; j < lines.size() && lines[j] != "```"; ++j) block += lines[j] + "\n";
      ++used[name];
      const auto found = snippets.find(name);
      if (found == snippets.end()) {
        ADD_FAILURE() << name_of_doc << ":" << i + 1 << ": no `// docs:begin " << name
                      << "` in tests/, samples/, bench/, tools/ or examples/";
      } else {
        EXPECT_EQ(block, found->second.text)
            << name_of_doc << ":" << i + 1 << ": the block differs from the compiled snippet "
            << name << " at " << found->second.where;
      }
      ++checked;
      i = j;
    }
  }
  EXPECT_GE(checked, 10);
  // An example kept compiling for a doc that no longer shows it is dead weight.
  for (const auto& [name, snippet] : snippets) {
    EXPECT_TRUE(used.contains(name))
        << "snippet " << name << " (" << snippet.where << ") appears in no document";
  }
}

TEST(DocsCheckTest, RelativeLinksPointAtExistingFiles) {
  // [text](target) where target is not a URL or a pure anchor.
  const std::regex link(R"(\]\(([^)#\s]+)(#[^)\s]*)?\))");
  int checked = 0;
  for (const auto& doc : documents()) {
    const auto lines = lines_of(doc);
    bool in_code = false;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].rfind("```", 0) == 0) in_code = !in_code;
      if (in_code) continue;
      for (std::sregex_iterator it(lines[i].begin(), lines[i].end(), link), end; it != end; ++it) {
        const std::string target = (*it)[1].str();
        if (target.find("://") != std::string::npos || target.rfind("mailto:", 0) == 0) {
          continue;
        }
        ++checked;
        EXPECT_TRUE(fs::exists(doc.parent_path() / target))
            << fs::relative(doc, kRoot).string() << ":" << i + 1 << ": link to " << target
            << " points at nothing";
      }
    }
  }
  EXPECT_GE(checked, 5);
}

// `Suite.Name` in a document, where Suite ends in Test, Suite or Contract: a test it cites.
std::set<std::string> defined_tests() {
  const std::regex definition(
      R"(\b(?:TEST|TEST_F|TEST_P|TYPED_TEST|TYPED_TEST_P)\(\s*(\w+)\s*,\s*(\w+)\s*\))");
  std::set<std::string> tests;
  for (const char* dir : {"tests", "framework/testkit", "projections/testkit", "examples"}) {
    for (const auto& file : files_under(kRoot / dir, {".cpp", ".hpp"})) {
      std::ifstream in(file);
      const std::string text((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      for (std::sregex_iterator it(text.begin(), text.end(), definition), end; it != end; ++it) {
        tests.insert((*it)[1].str() + "." + (*it)[2].str());
      }
    }
  }
  return tests;
}

TEST(DocsCheckTest, TestsNamedAsProofExist) {
  const auto tests = defined_tests();
  const std::regex cited(R"(`([A-Z][A-Za-z0-9]*(?:Test|Suite|Contract)[A-Za-z0-9]*\.[A-Z]\w*)`)");
  int checked = 0;
  for (const auto& doc : documents()) {
    const auto lines = lines_of(doc);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      for (std::sregex_iterator it(lines[i].begin(), lines[i].end(), cited), end; it != end; ++it) {
        ++checked;
        EXPECT_TRUE(tests.contains((*it)[1].str()))
            << fs::relative(doc, kRoot).string() << ":" << i + 1 << ": cites " << (*it)[1].str()
            << ", which no TEST/TEST_F/TEST_P/TYPED_TEST_P defines";
      }
    }
  }
  EXPECT_GE(checked, 40);
}

}  // namespace
