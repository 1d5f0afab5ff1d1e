// anagram/views/task.h: one (view, prompt) pair, a task of the multi-task denoising loop.
//
// Basic usage:
//   anagram::Task upside_down{anagram::make_view("rot180"), "an oil painting of a cat"};
#pragma once

#include <string>

#include "anagram/views/views.h"

namespace anagram {

// What a viewer sees when looking at the picture through `view`.
struct Task {
  ViewPtr view;
  std::string prompt;  // with the style prefix applied
};

}  // namespace anagram
