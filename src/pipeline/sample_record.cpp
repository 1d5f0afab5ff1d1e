#include "anagram/pipeline/sample_record.h"

#include "anagram/core/error.h"
#include "anagram/models/bundle.h"
#include "core/json_fields.h"
#include "models/model_folder.h"

namespace anagram {

namespace {
constexpr uintmax_t kMaxMetadataBytes = 64u << 20;
}  // namespace

SampleRecord read_sample_record(const std::filesystem::path& folder, int size) {
  const auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::kInvalidArgument,
                "sample '" + printable(folder.string()) + "': " + what);
  };
  SampleRecord s;
  s.folder = folder;
  const std::string bytes =
      detail::read_manifest_bytes(folder / "metadata.json", kMaxMetadataBytes, fail);
  try {
    const nlohmann::json doc =
        detail::parse_json_bounded(bytes, ErrorKind::kInvalidArgument, "metadata.json", 64);
    const detail::JsonFields j(doc, "", ErrorKind::kInvalidArgument);
    s.request = GenerateRequest::from_json(j.raw("request"));
    s.tasks = resolve_tasks(s.request);
    s.seed = j.unsigned_integer("seed");
    const auto files = j.objects("files", 8);
    if (files.empty()) j.fail("files", "lists no pictures");
    const detail::JsonFields* chosen = size == 0 ? &files.back() : nullptr;
    for (const auto& f : files) {
      if (size != 0 && f.integer("size", 1, 65536) == size) chosen = &f;
    }
    if (chosen == nullptr) j.fail("files", "lists no " + std::to_string(size) + "-pixel picture");
    s.picture_size = static_cast<int>(chosen->integer("size", 1, 65536));
    s.picture = folder / detail::folder_file(folder, "sample folder", *chosen, "anagram");
  } catch (const Error& e) {
    fail("metadata.json" + (e.field().empty() ? "" : " '" + e.field() + "'") + ": " + e.detail());
  }
  return s;
}

}  // namespace anagram
