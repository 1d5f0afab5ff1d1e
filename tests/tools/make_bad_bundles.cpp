// Makes corrupt and hostile variants of a (schema 2) bundle for the CLI's table-driven tests.
//
// Usage: anagram_make_bad_bundles DEFAULT_BUNDLE OUT_DIR [SCORER_DIR]
// Writes OUT_DIR/<case>/ (a copy of the bundle with one fault) and OUT_DIR/cases.tsv, one line
// per case: "<case>\t<text the one-line error must contain>". Each fault is made so that it is
// the only one: where a file changes, its hash in the manifest is updated, so that the check
// under test (not the hash check) must catch it, unless the case is about the hash. With
// SCORER_DIR, also OUT_DIR/scorers/<case>/ and OUT_DIR/scorers.tsv: the scorer with a hostile
// image encoder. Hostile code would write OUT_DIR/hostile-wrote-this if it ever ran.
#include <torch/script.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../hostile_archives.h"
#include "core/sha256.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Files of a case are hard links to the source bundle's: unlink before writing, so that the
// source is never changed.
void write(const fs::path& path, const std::string& bytes) {
  std::error_code ec;
  fs::remove(path, ec);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

struct Case {
  fs::path dir;
  json manifest;
  bool raw_manifest = false;  // the fault wrote manifest.json itself
  std::string manifest_name = "manifest.json";

  void save() const {
    if (!raw_manifest) write(dir / manifest_name, manifest.dump(2));
  }
  // Replaces a file and records its new hash, so that only the content is wrong.
  void replace_file(const std::string& name, const std::string& bytes) {
    write(dir / name, bytes);
    rehash(name);
  }
  void rehash(const std::string& name) {
    const std::string bytes = read(dir / name);
    manifest["files"][name] = {{"sha256", anagram::detail::sha256_hex(bytes)},
                               {"bytes", bytes.size()}};
  }
};

// A TorchScript module whose forward runs `body` (TorchScript source, indented by 8).
std::string script_module(const std::string& methods) {
  torch::jit::Module module("Hostile");
  module.define(methods);
  std::ostringstream bytes;
  module.save(bytes);
  return bytes.str();
}

std::string gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s DEFAULT_BUNDLE OUT_DIR [SCORER_DIR]\n", argv[0]);
    return 2;
  }
  const fs::path source = argv[1];
  fs::create_directories(argv[2]);
  const fs::path out = fs::absolute(argv[2]);
  const std::string marker = (out / "hostile-wrote-this").string();
  const json original = json::parse(read(source / "manifest.json"));
  if (original.value("schema_version", 0) < 2) {
    std::fprintf(stderr, "%s: needs a schema 2 bundle\n", argv[0]);
    return 2;
  }
  std::ofstream table(out / "cases.tsv");
  int count = 0;
  auto make = [&](const std::string& name, const std::string& expected,
                  const std::function<void(Case&)>& fault) {
    Case c{out / name, original};
    fs::remove_all(c.dir);
    fs::copy(source, c.dir, fs::copy_options::recursive | fs::copy_options::create_hard_links);
    fault(c);
    c.save();
    table << name << '\t' << expected << '\n';
    ++count;
  };
  auto edit = [&](const std::string& name, const std::string& expected,
                  const std::function<void(json&)>& change) {
    make(name, expected, [&](Case& c) { change(c.manifest); });
  };
  const std::string unet = original["stages"][0]["unet"]["file"];
  const std::string text = original["text_encoder"]["file"];

  // The manifest: syntax, schema, types, ranges, paths.
  make("not_json", "not valid JSON", [](Case& c) {
    c.raw_manifest = true;
    write(c.dir / "manifest.json", "{ \"name\": ");
  });
  make("deep_nesting", "nests deeper", [](Case& c) {
    c.raw_manifest = true;
    write(c.dir / "manifest.json", std::string(100000, '[') + std::string(100000, ']'));
  });
  make("huge_manifest", "bytes; at most",
       [](Case& c) { c.manifest["description"] = std::string(5 << 20, 'x'); });
  edit("array_manifest", "must be a JSON object", [](json& m) { m = json::array({1, 2}); });
  edit("wrong_format", "'format'", [](json& m) { m["format"] = "onnx"; });
  edit("future_schema", "unknown version 99", [](json& m) { m["schema_version"] = 99; });
  edit("schema_as_string", "'schema_version': must be an integer",
       [](json& m) { m["schema_version"] = "2"; });
  edit("schema_as_float", "'schema_version': must be an integer",
       [](json& m) { m["schema_version"] = 2.0; });
  edit("no_name", "'name': is missing", [](json& m) { m.erase("name"); });
  edit("unknown_dtype", "'dtype'", [](json& m) { m["dtype"] = "float8"; });
  edit("size_as_float", "stages[0].image.size': must be an integer",
       [](json& m) { m["stages"][0]["image"]["size"] = 64.0; });
  edit("size_overflow", "stages[0].image.size': must be an integer",
       [](json& m) { m["stages"][0]["image"]["size"] = 1e300; });
  edit("size_terabytes", "stages[0].image.size': must be at most",
       [](json& m) { m["stages"][0]["image"]["size"] = 10000000; });
  edit("size_zero", "stages[0].image.size': must be in",
       [](json& m) { m["stages"][0]["image"]["size"] = 0; });
  edit("wrong_in_channels", "stages[0].unet.in_channels",
       [](json& m) { m["stages"][0]["unet"]["in_channels"] = 4; });
  edit("query_resolution_huge", "query_resolution': must be at most",
       [](json& m) { m["stages"][0]["unet"]["attention"]["query_resolution"] = 1 << 30; });
  edit("negative_layers", "num_layers': must be in",
       [](json& m) { m["stages"][0]["unet"]["attention"]["num_layers"] = -1; });
  edit("max_length_huge", "'tokenizer.max_length': must be at most",
       [](json& m) { m["tokenizer"]["max_length"] = 1000000000; });
  edit("max_length_mismatch", "differs from the UNet's attention",
       [](json& m) { m["tokenizer"]["max_length"] = 64; });
  edit("hidden_size_zero", "'text_encoder.hidden_size': must be in",
       [](json& m) { m["text_encoder"]["hidden_size"] = 0; });
  edit("unet_outside", "leaves the bundle folder",
       [](json& m) { m["stages"][0]["unet"]["file"] = "../../etc/passwd"; });
  edit("unet_absolute", "relative to the bundle folder",
       [](json& m) { m["stages"][0]["unet"]["file"] = "/etc/passwd"; });
  edit("unet_missing", "does not exist",
       [](json& m) { m["stages"][0]["unet"]["file"] = "nowhere.pt"; });
  edit("no_stages", "'stages': must have 1..2 entries",
       [](json& m) { m["stages"] = json::array(); });
  edit("scheduler_not_object", "stages[0].scheduler': must be a JSON object",
       [](json& m) { m["stages"][0]["scheduler"] = "ddpm"; });
  edit("train_timesteps_huge", "num_train_timesteps must lie in",
       [](json& m) { m["stages"][0]["scheduler"]["num_train_timesteps"] = 1000000000000LL; });
  edit("unknown_beta_schedule", "beta_schedule",
       [](json& m) { m["stages"][0]["scheduler"]["beta_schedule"] = "cosine"; });
  edit("clip_dim_string", "'clip.embedding_dim': must be an integer",
       [](json& m) { m["clip"]["embedding_dim"] = "16"; });
  edit("clip_dtype", "'clip.dtype'", [](json& m) { m["clip"]["dtype"] = "int8"; });
  edit("hash_missing", "is missing (every named file needs a hash)",
       [&](json& m) { m["files"].erase(unet); });
  edit("hash_malformed", "must be 64 lower-case hex digits",
       [&](json& m) { m["files"][unet]["sha256"] = "abc"; });
  if (original["stages"].size() > 1) {
    edit("stage2_in_channels", "stages[1].unet.in_channels",
         [](json& m) { m["stages"][1]["unet"]["in_channels"] = 3; });
    edit("stage2_no_noising", "stages[1].noising_scheduler': is missing",
         [](json& m) { m["stages"][1].erase("noising_scheduler"); });
  }

  // The files: damaged, replaced, hostile.
  make("unet_bit_flip", "does not match its SHA-256", [&](Case& c) {
    std::string bytes = read(c.dir / unet);
    bytes[bytes.size() / 2] ^= 0x10;
    write(c.dir / unet, bytes);
  });
  make("unet_truncated", "bytes, the manifest says", [&](Case& c) {
    const std::string bytes = read(c.dir / unet);
    write(c.dir / unet, bytes.substr(0, bytes.size() / 2));
  });
  make("unet_not_torchscript", "is not a TorchScript file",
       [&](Case& c) { c.replace_file(unet, "not a model\n"); });
  make("unet_from_file", "uses the operator aten::from_file", [&](Case& c) {
    c.replace_file(unet, script_module(R"(
def forward(self, x: Tensor, t: Tensor, s: Tensor) -> Tensor:
    stolen = torch.from_file("/etc/hostname", True, 1)
    return x + stolen.sum()
)"));
  });
  make("unet_save", "uses the operator aten::save", [&](Case& c) {
    c.replace_file(unet, script_module(R"(
def helper(self, x: Tensor):
    torch.save(x, "/tmp/anagram-hostile-bundle-wrote-this")

def forward(self, x: Tensor, t: Tensor, s: Tensor) -> Tensor:
    self.helper(x)
    return x
)"));
  });
  make("text_encoder_setstate", "defines __setstate__", [&](Case& c) {
    c.replace_file(text, script_module(R"(
def __getstate__(self) -> Tuple[int, int]:
    return (1, 2)

def __setstate__(self, state: Tuple[int, int]) -> None:
    stolen = torch.from_file("/etc/hostname", True, 1)

def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
    return ids.float()
)"));
  });
  make("unet_raises", "fails on a probe input", [&](Case& c) {
    c.replace_file(unet, script_module(R"(
def forward(self, x: Tensor, t: Tensor, s: Tensor) -> Tensor:
    assert x.size(1) != 3, "this model is broken"
    return x
)"));
  });
  make("unet_wrong_shape", "returns shape", [&](Case& c) {
    c.replace_file(unet, script_module(R"(
def forward(self, x: Tensor, t: Tensor, s: Tensor) -> Tensor:
    return x
)"));
  });
  make("text_encoder_is_unet", "fails on a probe input",
       [&](Case& c) { c.replace_file(text, read(c.dir / unet)); });
  make("clip_image_wrong_shape", "the CLIP image encoder", [&](Case& c) {
    c.replace_file(original["clip"]["image_encoder"], script_module(R"(
def forward(self, x: Tensor, t: Tensor) -> Tensor:
    return x.flatten(1)
)"));
  });
  make("clip_text_raises", "the CLIP text encoder", [&](Case& c) {
    c.replace_file(original["clip"]["text_encoder"], script_module(R"(
def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
    return torch.mm(tokens.float(), tokens.float())
)"));
  });
  make("tokenizer_garbage", "tokenizer",
       [&](Case& c) { c.replace_file(original["tokenizer"]["file"], std::string(1000, '\x07')); });
  make("bpe_not_gzip", "not gzip-compressed",
       [&](Case& c) { c.replace_file(original["clip"]["bpe_vocab"], "plain text\n"); });
  make("bpe_gzip_bomb", "BPE vocabulary", [&](Case& c) {
    c.replace_file(original["clip"]["bpe_vocab"], gzip(std::string(200 << 20, 'a')));
  });
  // Code that would run while loading, slipped past a check of the text (hostile_archives.h).
  const std::vector<anagram::testing::HostileArchive> hostile =
      anagram::testing::hostile_archives(marker);
  for (const auto& h : hostile) {
    make("text_encoder_" + h.name, h.needle, [&](Case& c) { c.replace_file(text, h.bytes); });
  }
  std::printf("%d bad bundles in %s\n", count, out.c_str());

  if (argc == 4) {
    // The same inside a scorer (anagram score --scorer).
    const fs::path scorer = argv[3];
    const json scorer_json = json::parse(read(scorer / "scorer.json"));
    const std::string image = scorer_json["image_encoder"];
    std::ofstream scorers(out / "scorers.tsv");
    for (const auto& h : hostile) {
      Case c{out / "scorers" / h.name, scorer_json, false, "scorer.json"};
      fs::remove_all(c.dir);
      fs::create_directories(c.dir.parent_path());
      fs::copy(scorer, c.dir, fs::copy_options::recursive | fs::copy_options::create_hard_links);
      c.replace_file(image, h.bytes);
      c.save();
      scorers << h.name << '\t' << h.needle << '\n';
    }
    std::printf("%zu bad scorers in %s\n", hostile.size(), (out / "scorers").c_str());

    // Not a bad bundle: one that works, but whose text encoder warns with terminal escape
    // sequences in the text (torch.warn), for untrusted_files_test.sh.
    Case c{out / "warns", original};
    fs::remove_all(c.dir);
    fs::copy(source, c.dir, fs::copy_options::recursive | fs::copy_options::create_hard_links);
    torch::jit::Module wrapper("Warner");
    wrapper.register_module("inner", torch::jit::load((source / text).string()));
    wrapper.define(
        "def forward(self, ids: Tensor, mask: Tensor) -> Tensor:\n"
        "    torch.warn(\"\x1b[2J\x1b]0;pwned\x07\x1b[31mred text\x1b[0m\")\n"
        "    return self.inner.forward(ids, mask)\n");
    std::ostringstream bytes;
    wrapper.save(bytes);
    c.replace_file(text, bytes.str());
    c.save();
  }
  return 0;
}
