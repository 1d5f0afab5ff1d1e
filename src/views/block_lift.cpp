#include <torch/torch.h>

#include "anagram/views/views.h"

namespace anagram {

bool moves_whole_blocks(const View& view, int64_t size, int64_t factor) {
  if (view.kind() != ViewKind::kPermutation || view.sign() != 1 || factor < 1) return false;
  const int64_t big = size * factor;
  if (!view.supports_size(size, size) || !view.supports_size(big, big)) return false;
  // Output pixel p of the big grid reads source pixel big_index[p]; its block must be the cell
  // that the small grid's output cell (p's block) reads.
  const torch::Tensor big_index = view.source_index(big, big).reshape({big, big});
  const torch::Tensor source_block = (big_index.div(big, "floor").div(factor, "floor") * size) +
                                     big_index.remainder(big).div(factor, "floor");
  const torch::Tensor small_index = view.source_index(size, size).reshape({size, size});
  const torch::Tensor expected =
      small_index.repeat_interleave(factor, 0).repeat_interleave(factor, 1);
  return torch::equal(source_block, expected);
}

}  // namespace anagram
