// LazyJson: the type of RecordedEvent::data and ::metadata. It holds a JSON value either as a
// parsed nlohmann::json or as the JSON text a store read back, and parses that text the first
// time the value is looked at. Readers that never look (routing by type, printing the stored
// text, skipping events in a replay) never pay for building the tree (issue 14).
//
// It reads like a `const nlohmann::json`: it converts to `const nlohmann::json&`, has `->` and
// `*`, and forwards the common read members. Changing it goes through mutable_json().
//
//   const auto amount = event.data.at("amount").get<std::int64_t>();  // parses on first use
//   if (auto text = event.data.text()) out << *text;                  // never parses
//   event.data.mutable_json()["currency"] = "EUR";                    // upcasters
//
// Thread safety: like a standard container. Any number of threads may use const members of
// one LazyJson at once, including the first access (one of them parses; the others wait for
// it). Non-const members (assignment, mutable_json(), moving from it) need exclusive access.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

namespace annals {

namespace detail {
struct LazyJsonAccess;
}  // namespace detail

/// A JSON value, held parsed or as stored text that is parsed on first access.
///
/// Invariant: when it holds text, that text is JSON that the store's parser
/// (detail::parse_stored_json) turns into the value without error. Stores check this, without
/// parsing, when they read a row; text the check does not pass is parsed there and then, and a
/// row that does not parse is delivered with RecordedEvent::decode_failure as it always was.
/// So access never fails for a reason in the text. Values, number types and equality are those
/// of the parsed nlohmann::json.
class LazyJson {
 public:
  using Json = nlohmann::json;

  /// JSON null, held parsed. Throws: nothing.
  LazyJson() : state_(kParsed) {}
  /// Holds `value`, parsed. Implicit, so that `RecordedEvent{.data = json{...}}` and
  /// `event.data = json{...}` compile. Throws: what copying `value` throws.
  LazyJson(Json value) noexcept : value_(std::move(value)), state_(kParsed) {}  // NOLINT
  /// Holds the value of an initializer list, as nlohmann::json builds it (`{{"n", 1}}` is an
  /// object), so that `event.data = {{"n", 1}}` keeps compiling. Throws: what building the
  /// json throws.
  LazyJson(Json::initializer_list_t init)  // NOLINT(google-explicit-constructor)
      : value_(init), state_(kParsed) {}

  /// Copies what `other` holds: its text, and its value when it is parsed (an unparsed copy
  /// parses on its own first access). Safe while other threads use `other`'s const members.
  /// Throws: std::bad_alloc. Cost: one copy of the text and, when parsed, of the value.
  LazyJson(const LazyJson& other);
  LazyJson(LazyJson&& other) noexcept;
  LazyJson& operator=(const LazyJson& other);
  LazyJson& operator=(LazyJson&& other) noexcept;
  ~LazyJson() = default;

  /// The value; parses the held text on the first access (of any thread).
  /// Throws: std::bad_alloc only (the text was checked when it was read).
  /// Thread safety: see the class. Cost: the first call of an unparsed value, one parse of the
  /// text (about 1.5 µs for the ~340 bytes of a typical event, -O2); later calls, one atomic
  /// load.
  [[nodiscard]] const Json& get_json() const {
    if (state_.load(std::memory_order_acquire) == kParsed) return value_;
    return parse_once();
  }
  // NOLINTBEGIN(google-explicit-constructor): the drop-in conversion for const json& users.
  operator const Json&() const { return get_json(); }
  /// The same for a non-const LazyJson: without it, `json j = lazy;` would go through
  /// nlohmann's converting constructor (and to_json below) with a -Wconversion warning.
  operator const Json&() { return get_json(); }
  // NOLINTEND(google-explicit-constructor)
  const Json& operator*() const { return get_json(); }
  const Json* operator->() const { return &get_json(); }

  /// The value, for changing it (upcasters). Parses first when needed, then forgets the text,
  /// since the text would no longer describe the value.
  /// Throws: std::bad_alloc only. Thread safety: needs exclusive access.
  [[nodiscard]] Json& mutable_json();

  /// The JSON text this value was read from, without parsing, when it holds one (a stored
  /// event read back from PostgreSQL, until mutable_json() is called); empty when it holds only
  /// a parsed value (built from nlohmann::json; the in-memory store's events). The text is as
  /// the store returned it (PostgreSQL's jsonb text form: `{"a": 1, "b": [1, 2]}`, keys in
  /// jsonb's order), so it is equal as JSON to dump(), not byte for byte. Valid until this
  /// object is changed or destroyed.
  /// Throws: nothing. Cost: none.
  [[nodiscard]] std::optional<std::string_view> text() const noexcept {
    if (has_text_) return std::string_view(text_);
    return std::nullopt;
  }
  /// True once the value has been parsed (or when it was given parsed). Throws: nothing.
  [[nodiscard]] bool is_parsed() const noexcept {
    return state_.load(std::memory_order_acquire) == kParsed;
  }

  // Read members of nlohmann::json, forwarded to get_json(); each parses on first use and
  // then costs what the nlohmann::json member costs.

  /// The element under `key`. Unlike nlohmann's const operator[], a key that is missing (or a
  /// null value) gives null instead of undefined behaviour: what the non-const operator[] of a
  /// json read before it inserted. Throws: nlohmann::json::type_error on other non-objects.
  /// A json_pointer key is nlohmann's: out_of_range when missing.
  template <typename Key>
  requires(!std::is_integral_v<std::remove_cvref_t<Key>>) const Json& operator[](Key&& key) const {
    const Json& value = get_json();
    if constexpr (std::is_same_v<std::remove_cvref_t<Key>, Json::json_pointer>) {
      return value[key];
    } else {
      if (value.is_object()) {
        const auto it = value.find(std::forward<Key>(key));
        return it == value.end() ? null_value() : *it;
      }
      if (value.is_null()) return null_value();
      return value[std::forward<Key>(key)];  // nlohmann's type_error
    }
  }
  /// The element at `index` of an array; null past its end (see operator[](key)).
  /// Throws: nlohmann::json::type_error when the value is not an array (or null).
  const Json& operator[](std::size_t index) const {
    const Json& value = get_json();
    if (value.is_null() || (value.is_array() && index >= value.size())) return null_value();
    return value[index];
  }
  /// Throws: nlohmann::json::out_of_range when missing, type_error when of the wrong type.
  template <typename Key>
  const Json& at(Key&& key) const {
    return get_json().at(std::forward<Key>(key));
  }
  template <typename Key>
  [[nodiscard]] bool contains(Key&& key) const {
    return get_json().contains(std::forward<Key>(key));
  }
  template <typename Key>
  [[nodiscard]] std::size_t count(Key&& key) const {
    return get_json().count(std::forward<Key>(key));
  }
  template <typename Key>
  [[nodiscard]] Json::const_iterator find(Key&& key) const {
    return get_json().find(std::forward<Key>(key));
  }
  /// Throws: as nlohmann::json::get.
  template <typename T>
  [[nodiscard]] auto get() const -> decltype(std::declval<const Json&>().template get<T>()) {
    return get_json().template get<T>();
  }
  template <typename T>
  auto get_to(T& out) const -> decltype(std::declval<const Json&>().get_to(out)) {
    return get_json().get_to(out);
  }
  template <typename Pointer>
  [[nodiscard]] auto get_ptr() const
      -> decltype(std::declval<const Json&>().template get_ptr<Pointer>()) {
    return get_json().template get_ptr<Pointer>();
  }
  template <typename Reference>
  [[nodiscard]] auto get_ref() const
      -> decltype(std::declval<const Json&>().template get_ref<Reference>()) {
    return get_json().template get_ref<Reference>();
  }
  /// Throws: as nlohmann::json::value (type_error when not an object).
  template <typename... Args>
  [[nodiscard]] auto value(Args&&... args) const
      -> decltype(std::declval<const Json&>().value(std::forward<Args>(args)...)) {
    return get_json().value(std::forward<Args>(args)...);
  }
  /// As nlohmann::json::dump; `dump()` of a value held as text parses it first. Where any JSON
  /// text will do, text() avoids both the parse and the dump.
  [[nodiscard]] std::string dump(
      int indent = -1, char indent_char = ' ', bool ensure_ascii = false,
      Json::error_handler_t handler = Json::error_handler_t::strict) const {
    return get_json().dump(indent, indent_char, ensure_ascii, handler);
  }

  [[nodiscard]] Json::value_t type() const { return get_json().type(); }
  [[nodiscard]] const char* type_name() const { return get_json().type_name(); }
  [[nodiscard]] bool is_null() const { return get_json().is_null(); }
  [[nodiscard]] bool is_boolean() const { return get_json().is_boolean(); }
  [[nodiscard]] bool is_number() const { return get_json().is_number(); }
  [[nodiscard]] bool is_number_integer() const { return get_json().is_number_integer(); }
  [[nodiscard]] bool is_number_unsigned() const { return get_json().is_number_unsigned(); }
  [[nodiscard]] bool is_number_float() const { return get_json().is_number_float(); }
  [[nodiscard]] bool is_string() const { return get_json().is_string(); }
  [[nodiscard]] bool is_array() const { return get_json().is_array(); }
  [[nodiscard]] bool is_object() const { return get_json().is_object(); }
  [[nodiscard]] bool is_structured() const { return get_json().is_structured(); }
  [[nodiscard]] bool is_primitive() const { return get_json().is_primitive(); }
  [[nodiscard]] std::size_t size() const { return get_json().size(); }
  [[nodiscard]] bool empty() const { return get_json().empty(); }
  [[nodiscard]] auto items() const { return get_json().items(); }
  [[nodiscard]] Json::const_iterator begin() const { return get_json().begin(); }
  [[nodiscard]] Json::const_iterator end() const { return get_json().end(); }
  [[nodiscard]] Json::const_iterator cbegin() const { return get_json().cbegin(); }
  [[nodiscard]] Json::const_iterator cend() const { return get_json().cend(); }
  const Json& front() const { return get_json().front(); }
  const Json& back() const { return get_json().back(); }

  /// Equal as JSON values (nlohmann's ==). Two values held as the same text are equal without
  /// parsing; otherwise both are parsed. Throws: std::bad_alloc only.
  friend bool operator==(const LazyJson& a, const LazyJson& b);
  friend bool operator==(const LazyJson& a, const Json& b) { return a.get_json() == b; }
  /// Equal to a scalar as nlohmann's `json == 3` is (`event.data["n"] == 3` goes through
  /// operator[]; this is `event.data == 3`).
  template <typename Scalar>
  requires std::is_scalar_v<Scalar>
  friend bool operator==(const LazyJson& a, Scalar b) { return a.get_json() == b; }

  /// Writes the held text when there is one, else dump() (for logs and test failure messages).
  /// For nlohmann's converting constructor and json_ref (`json{{"data", lazy}}`): copies the
  /// value. Without it nlohmann would take a LazyJson for an array, since it is a range.
  friend void to_json(Json& out, const LazyJson& in) { out = in.get_json(); }
  /// Writes the held text when there is one, else dump() (for logs and test failure messages).
  friend std::ostream& operator<<(std::ostream& out, const LazyJson& value);

 private:
  friend struct detail::LazyJsonAccess;
  static constexpr std::uint8_t kText = 0;     // holds text, not parsed yet
  static constexpr std::uint8_t kParsing = 1;  // one thread is parsing; the others wait
  static constexpr std::uint8_t kParsed = 2;   // value_ is the value

  struct FromText {};
  LazyJson(FromText, std::string text) : text_(std::move(text)), has_text_(true), state_(kText) {}

  const Json& parse_once() const;
  static const Json& null_value();

  std::string text_;
  // Written once by the thread that wins the kText -> kParsing exchange, read by others only
  // after they see kParsed (acquire).
  mutable Json value_;
  bool has_text_ = false;
  mutable std::atomic<std::uint8_t> state_;
};

}  // namespace annals
