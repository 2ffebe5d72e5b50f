// Document collections: name, path and id rules, DocumentProjection's setup/apply/reset, and
// the query helpers both readers share (detail/document_query.hpp). Collection names and field
// paths are user input that ends up in SQL (as a quoted table name, as a jsonb path literal),
// so they are held to a strict alphabet here, before any store sees them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "annals/eventstore/error.hpp"
#include "annals/projections/detail/document_query.hpp"
#include "annals/projections/documents.hpp"
#include "shown_text.hpp"

namespace annals::projections {
namespace {

constexpr std::size_t kMaxCollectionName = 48;
constexpr std::size_t kMaxSegment = 63;
constexpr std::size_t kMaxSegments = 8;
constexpr std::size_t kMaxId = 256;
constexpr std::size_t kMaxLimit = 1000;

bool is_lower(char c) noexcept { return c >= 'a' && c <= 'z'; }
bool is_letter(char c) noexcept { return is_lower(c) || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// `text` for an error message: printable ASCII as is, other bytes as \xNN, at most 60 bytes.
std::string shown(std::string_view text) { return detail::shown_text(text, '"', 60); }

DocumentWork& work_of(UnitOfWork& work, const Projection& projection) {
  auto* documents = dynamic_cast<DocumentWork*>(&work);
  if (documents == nullptr) {
    throw InvalidArgumentError("projection '" + projection.name() +
                               "' is a DocumentProjection: it needs a unit of work of the "
                               "in-memory or the PostgreSQL projection store, not " +
                               typeid(work).name());
  }
  return *documents;
}

bool is_scalar(const nlohmann::json& value) {
  return value.is_null() || value.is_boolean() || value.is_number() || value.is_string();
}

// jsonb's order of types: null < string < number < boolean < array < object.
int type_rank(const nlohmann::json& value) {
  if (value.is_null()) return 0;
  if (value.is_string()) return 1;
  if (value.is_number()) return 2;
  if (value.is_boolean()) return 3;
  if (value.is_array()) return 4;
  return 5;
}

// jsonb stores object keys shorter first, then bytewise; objects compare pairwise in that order.
bool jsonb_key_less(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

}  // namespace

void validate_collection_name(std::string_view name) {
  const bool ok = !name.empty() && name.size() <= kMaxCollectionName && is_lower(name[0]) &&
                  std::all_of(name.begin(), name.end(),
                              [](char c) { return is_lower(c) || is_digit(c) || c == '_'; });
  if (!ok) {
    throw InvalidArgumentError("invalid collection name " + shown(name) +
                               ": use 1 to 48 characters of [a-z0-9_], starting with a letter");
  }
}

void validate_field_path(std::string_view path) { static_cast<void>(detail::field_segments(path)); }

void validate_document_id(std::string_view id) {
  const bool ok =
      !id.empty() && id.size() <= kMaxId && std::none_of(id.begin(), id.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte == 0x7f;
      });
  if (!ok) {
    throw InvalidArgumentError("invalid document id " + shown(id) +
                               ": use 1 to 256 bytes without control characters");
  }
}

void validate_amounts(std::string_view collection, std::string_view id,
                      const nlohmann::json& amounts) {
  const auto refuse = [&](const std::string& why) {
    throw InvalidArgumentError("add_to of document " + shown(id) + " in collection " +
                               shown(collection) + ": " + why);
  };
  if (!amounts.is_object() || amounts.empty()) {
    refuse("the amounts must be a non-empty JSON object, got " + amounts.dump().substr(0, 200));
  }
  for (const auto& [field, value] : amounts.items()) {
    if (field.find('.') != std::string::npos) {
      refuse("member " + shown(field) + " is a path; amounts name top-level fields");
    }
    validate_field_path(field);
    if (!detail::is_int64(value)) {
      refuse("member " + shown(field) + " is " + value.dump().substr(0, 100) +
             ", not an integer within 64 bits");
    }
  }
}

// --- DocumentProjection ------------------------------------------------------------------------

const std::vector<CollectionSpec>& DocumentProjection::specs() {
  if (!specs_known_) {
    auto specs = collections();
    if (specs.empty()) {
      throw InvalidArgumentError("projection '" + name() + "' declares no collection");
    }
    for (std::size_t i = 0; i < specs.size(); ++i) {
      validate_collection_name(specs[i].name);
      for (std::size_t j = 0; j < i; ++j) {
        if (specs[j].name == specs[i].name) {
          throw InvalidArgumentError("projection '" + name() + "' declares collection \"" +
                                     specs[i].name + "\" twice");
        }
      }
      for (const auto& index : specs[i].indexes) validate_field_path(index.field);
    }
    specs_ = std::move(specs);
    specs_known_ = true;
  }
  return specs_;
}

void DocumentProjection::setup(UnitOfWork& work) {
  specs_known_ = false;  // setup is where a changed collections() is picked up
  work_of(work, *this).set_up_collections(specs());
}

void DocumentProjection::apply(const RecordedEvent& event, UnitOfWork& work) {
  auto& documents_work = work_of(work, *this);
  if (documents_work.skip_applied(event.position)) return;
  handle(event, documents_work.documents(specs()));
}

void DocumentProjection::reset(UnitOfWork& work) {
  work_of(work, *this).clear_collections(specs());
}

void DocumentProjection::handle(const RecordedEvent& event, Documents& documents) {
  if (handlers_.empty()) {
    throw InvalidArgumentError(
        "projection '" + name() +
        "' neither overrides handle() nor declares typed handlers (on<E>())");
  }
  static_cast<void>(handlers_.dispatch(event, documents));
}

EventFilter DocumentProjection::filter() const {
  if (handlers_.empty()) return {};
  return handlers_.filter();
}

// --- Shared query helpers ------------------------------------------------------------------------

namespace detail {

std::vector<std::string> field_segments(std::string_view path) {
  std::vector<std::string> segments;
  const auto bad = [&](const char* why) {
    return InvalidArgumentError("invalid field path " + shown(path) + ": " + why +
                                " (use up to 8 segments separated by '.', each of "
                                "[A-Za-z0-9_] starting with a letter or '_')");
  };
  std::size_t start = 0;
  for (;;) {
    const auto dot = path.find('.', start);
    const auto segment =
        path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (segment.empty()) throw bad("empty segment");
    if (segment.size() > kMaxSegment) throw bad("segment longer than 63 characters");
    if (!is_letter(segment[0]) && segment[0] != '_') throw bad("segment must start with a letter");
    if (!std::all_of(segment.begin(), segment.end(),
                     [](char c) { return is_letter(c) || is_digit(c) || c == '_'; })) {
      throw bad("unsupported character");
    }
    segments.emplace_back(segment);
    if (segments.size() > kMaxSegments) throw bad("more than 8 segments");
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return segments;
}

void validate_filter(std::string_view collection, const DocumentFilter& filter) {
  validate_collection_name(collection);
  for (const auto& condition : filter.conditions()) {
    validate_field_path(condition.field);
    const bool range =
        condition.op != FieldCondition::Op::kEq && condition.op != FieldCondition::Op::kContains;
    if (condition.value.is_discarded() || condition.value.is_binary() ||
        (range && !is_scalar(condition.value))) {
      throw InvalidArgumentError("filter on field \"" + condition.field +
                                 "\": a range needs a string, number, boolean or null value, got " +
                                 condition.value.dump());
    }
  }
}

void validate_query(std::string_view collection, const DocumentQuery& query) {
  validate_filter(collection, query.filter);
  if (query.order_by) validate_field_path(*query.order_by);
  if (query.limit == 0 || query.limit > kMaxLimit) {
    throw InvalidArgumentError("invalid limit " + std::to_string(query.limit) +
                               ": use 1 to 1000 documents per page");
  }
  if (query.after) static_cast<void>(decode_cursor(*query.after, query));
}

std::string encode_cursor(const Document& last, const DocumentQuery& query) {
  nlohmann::json cursor = {{"id", last.id}};
  if (query.order_by) {
    const auto* value = find_field(last.data, field_segments(*query.order_by));
    cursor["v"] = value != nullptr ? *value : nlohmann::json();
  }
  return cursor.dump();
}

Cursor decode_cursor(std::string_view text, const DocumentQuery& query) {
  const auto parsed = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  const bool shaped = !parsed.is_discarded() && parsed.is_object() && parsed.contains("id") &&
                      parsed["id"].is_string() &&
                      parsed.size() == (query.order_by ? std::size_t{2} : std::size_t{1}) &&
                      (!query.order_by || parsed.contains("v"));
  if (!shaped) {
    throw InvalidArgumentError("invalid cursor " + shown(text) +
                               ": pass the `next` of a page of the same query");
  }
  Cursor cursor;
  cursor.id = parsed["id"].get<std::string>();
  if (query.order_by) cursor.value = parsed["v"];
  return cursor;
}

const nlohmann::json* find_field(const nlohmann::json& document,
                                 const std::vector<std::string>& segments) {
  const nlohmann::json* at = &document;
  for (const auto& segment : segments) {
    if (!at->is_object()) return nullptr;
    const auto found = at->find(segment);
    if (found == at->end()) return nullptr;
    at = &*found;
  }
  return at;
}

int compare_jsonb(const nlohmann::json& a, const nlohmann::json& b) {
  const int ra = type_rank(a);
  const int rb = type_rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 0:
      return 0;
    case 1: {
      const int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case 2:
    case 3:
      return a < b ? -1 : (b < a ? 1 : 0);
    case 4: {
      if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (const int c = compare_jsonb(a[i], b[i]); c != 0) return c;
      }
      return 0;
    }
    default: {
      if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
      std::vector<std::string> ka;
      std::vector<std::string> kb;
      for (const auto& item : a.items()) ka.push_back(item.key());
      for (const auto& item : b.items()) kb.push_back(item.key());
      std::sort(ka.begin(), ka.end(), jsonb_key_less);
      std::sort(kb.begin(), kb.end(), jsonb_key_less);
      for (std::size_t i = 0; i < ka.size(); ++i) {
        if (ka[i] != kb[i]) return jsonb_key_less(ka[i], kb[i]) ? -1 : 1;
        if (const int c = compare_jsonb(a.at(ka[i]), b.at(kb[i])); c != 0) return c;
      }
      return 0;
    }
  }
}

bool jsonb_contains(const nlohmann::json& a, const nlohmann::json& b, bool top_level) {
  if (a.is_object()) {
    if (!b.is_object()) return false;
    for (const auto& item : b.items()) {
      const auto found = a.find(item.key());
      if (found == a.end() || !jsonb_contains(*found, item.value(), false)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    // A top-level array contains a scalar that is one of its elements (a jsonb special case).
    if (!b.is_array()) {
      if (!top_level || b.is_object()) return false;
      return std::any_of(a.begin(), a.end(),
                         [&](const nlohmann::json& e) { return compare_jsonb(e, b) == 0; });
    }
    return std::all_of(b.begin(), b.end(), [&](const nlohmann::json& want) {
      return std::any_of(a.begin(), a.end(), [&](const nlohmann::json& have) {
        if (have.is_array() != want.is_array() || have.is_object() != want.is_object()) {
          return false;
        }
        return jsonb_contains(have, want, false);
      });
    });
  }
  return !b.is_array() && !b.is_object() && compare_jsonb(a, b) == 0;
}

}  // namespace detail
}  // namespace annals::projections
