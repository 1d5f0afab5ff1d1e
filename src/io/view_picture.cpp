#include "anagram/io/view_picture.h"

#include "anagram/views/factor.h"

namespace anagram {

RgbImage view_of(const View& view, const RgbImage& image) {
  const torch::Tensor x = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                                           {image.height, image.width, 3}, torch::kByte)
                                  .permute({2, 0, 1})
                                  .to(torch::kDouble) /
                              127.5 -
                          1;
  torch::Tensor viewed;
  if (view.kind() == ViewKind::kFactor) {
    // What a viewer sees of the picture (the low band from afar...), as the writer renders it.
    const auto& factor = static_cast<const FactorView&>(view);
    factor.check_filter_size(image.width);
    viewed = factor.filter_at(image.width, torch::kCPU)
                 ->render(x.to(torch::kFloat).unsqueeze(0))
                 .squeeze(0)
                 .to(torch::kDouble);
  } else {
    viewed = view.apply(x);
  }
  const torch::Tensor seen =
      ((viewed + 1) * 127.5).round().clamp(0, 255).to(torch::kByte).permute({1, 2, 0}).contiguous();
  RgbImage out;
  out.width = image.width;
  out.height = image.height;
  out.pixels.assign(seen.data_ptr<uint8_t>(), seen.data_ptr<uint8_t>() + seen.numel());
  return out;
}

}  // namespace anagram
