// ParseStrictJson: nlohmann's DOM parser with a callback that tracks the keys of every open object.
#include "strict_json.h"

#include <unordered_set>
#include <vector>

namespace qforge::formats_internal {
namespace {

using nlohmann::json;

struct DuplicateKey {
  std::string key;
};

}  // namespace

StatusOr<json> ParseStrictJson(std::string_view text, const std::string& file, uint64_t base_offset) {
  // One key set per open object; memory stays proportional to the text (each key is stored once more).
  std::vector<std::unordered_set<std::string>> open_objects;
  auto track_keys = [&open_objects](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end: open_objects.pop_back(); break;
      case json::parse_event_t::key:
        if (!open_objects.back().insert(parsed.get<std::string>()).second) throw DuplicateKey{parsed.get<std::string>()};
        break;
      default: break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), track_keys);
  } catch (const DuplicateKey& d) {
    return Status::Error("invalid JSON: duplicate key \"" + d.key + "\" in one object (which entry is meant is ambiguous)",
                         file, static_cast<int64_t>(base_offset));
  } catch (const json::parse_error& e) {
    const int64_t at = static_cast<int64_t>(base_offset + (e.byte > 0 ? e.byte - 1 : 0));
    return Status::Error(std::string("invalid JSON: ") + e.what(), file, at);
  } catch (const std::exception& e) {
    return Status::Error(std::string("invalid JSON: ") + e.what(), file, static_cast<int64_t>(base_offset));
  }
}

}  // namespace qforge::formats_internal
