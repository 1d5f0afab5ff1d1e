// patch_permute and pixel_permute: a seeded shuffle of an n x n grid of patches.
//
// Published PatchPermuteView(num_patches=8) cuts the image into num_patches x num_patches
// patches and reorders them with torch.randperm(num_patches**2): output patch q is input patch
// perm[q]. The published permutation is drawn from the global torch generator when the view is
// made (not from the run's seed). Ours is the deterministic equivalent: Fisher-Yates driven by
// splitmix64 from an explicit seed (default 0), identical on every machine.
//
// Published 'pixel_permute' is PatchPermuteView(64): a 64x64 grid, so every pixel at 64x64 and
// 4x4 blocks at 256x256 (stage II sees the same arrangement). Ours is the same with the seed as
// its argument: pixel_permute:S == patch_permute:64,S.
#include "anagram/core/error.h"
#include "views/view_util.h"

namespace anagram::views_detail {
namespace {

constexpr int64_t kDefaultPatches = 8;
constexpr int64_t kPixelGrid = 64;
constexpr int64_t kMaxPatches = 4096;

class PatchPermuteView final : public View {
 public:
  PatchPermuteView(std::string view_name, int64_t patches, uint64_t seed, std::string arg)
      : View(std::move(arg)),
        name_(std::move(view_name)),
        patches_(patches),
        seed_(seed),
        perm_(seeded_permutation(patches * patches, seed)) {}

  std::string name() const override { return name_; }
  std::string description() const override {
    const std::string n = std::to_string(patches_);
    return n + "x" + n + " grid of patches shuffled with seed " + std::to_string(seed_);
  }
  std::string canonical_arg() const override {
    if (name_ == "pixel_permute") return std::to_string(seed_);
    return std::to_string(patches_) + "," + std::to_string(seed_);
  }

  void check_size(int64_t height, int64_t width) const override {
    View::check_size(height, width);
    if (height % patches_ != 0 || width % patches_ != 0) {
      const std::string n = std::to_string(patches_);
      std::string message = "view '" + name_ + "': a " + n + "x" + n + " grid of patches does " +
                            "not divide a " + std::to_string(height) + "x" + std::to_string(width) +
                            " image; both sides must be multiples of " + n;
      if (name_ == "pixel_permute") {
        message +=
            " (pixel_permute shuffles the pixels of a 64x64 grid; for other sizes use "
            "patch_permute:N,SEED with N dividing every size used)";
      }
      throw Error(ErrorKind::kInvalidArgument, message);
    }
  }

 protected:
  torch::Tensor compute_source_index(int64_t height, int64_t width) const override {
    const int64_t ph = height / patches_;
    const int64_t pw = width / patches_;
    return index_from_coords(height, width, [&](int64_t y, int64_t x) {
      const int64_t q = (y / ph) * patches_ + x / pw;
      const int64_t s = perm_[static_cast<size_t>(q)];
      return std::make_pair((s / patches_) * ph + y % ph, (s % patches_) * pw + x % pw);
    });
  }

 private:
  std::string name_;
  int64_t patches_;
  uint64_t seed_;
  std::vector<int64_t> perm_;
};

}  // namespace

ViewEntry patch_permute_view_entry() {
  return {{"patch_permute",
           {"patches"},
           "an n x n grid of patches shuffled (seeded)",
           "N[,SEED]: N x N patches (N must divide the image sides), shuffle seed",
           "8,0"},
          [](const std::string& arg) {
            const std::vector<std::string> parts = split_args(arg);
            if (parts.size() > 2) {
              throw Error(ErrorKind::kInvalidArgument,
                          "view 'patch_permute': argument is N or N,SEED, got '" + arg + "'");
            }
            int64_t patches = kDefaultPatches;
            uint64_t seed = 0;
            if (!parts[0].empty()) {
              patches =
                  parse_int("patch_permute", parts[0], "N (patches per side)", 2, kMaxPatches);
            }
            if (parts.size() == 2) seed = parse_seed("patch_permute", parts[1]);
            return std::make_shared<const PatchPermuteView>("patch_permute", patches, seed, arg);
          }};
}

ViewEntry pixel_permute_view_entry() {
  return {{"pixel_permute",
           {"pixels"},
           "every pixel of a 64x64 grid shuffled (seeded; 4x4 blocks at 256x256)",
           "SEED: shuffle seed",
           "0"},
          [](const std::string& arg) {
            const std::vector<std::string> parts = split_args(arg);
            if (parts.size() > 1) {
              throw Error(ErrorKind::kInvalidArgument,
                          "view 'pixel_permute': argument is a seed, got '" + arg + "'");
            }
            const uint64_t seed = parts[0].empty() ? 0 : parse_seed("pixel_permute", parts[0]);
            return std::make_shared<const PatchPermuteView>("pixel_permute", kPixelGrid, seed, arg);
          }};
}

}  // namespace anagram::views_detail
