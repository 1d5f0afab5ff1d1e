// anagram/views/jigsaw.h: the 4x4 jigsaw puzzle of Geng et al.'s jigsaw view, with piece shapes
// drawn by the program.
//
// The puzzle is laid out as in the published view (c = corner, e/f = edge, i = inner):
//
//   c0 e0 f0 c1        every piece k of a kind is piece 0 of that kind turned k quarter turns
//   f3 i0 i1 e1        clockwise about the picture's centre, and e and f pieces on one side are
//   e3 i3 i2 f1        translates of each other,
//   c3 f2 e2 c2
//
// so a piece may move to any place of its kind, turned by the right number of quarter turns, and
// e/f pieces may swap along a side: the result tiles the square exactly. Tabs (a neck and a
// round knob) follow the same symmetry, so the pixel map is an exact permutation at every size
// divisible by 4 (64 and 256 for DeepFloyd IF). The permutation is the published default (seed
// 11 of the published make_jigsaw_perm, drawn with numpy's legacy generator and written here as
// constants).
//
//   auto pieces = anagram::jigsaw::piece_map(64);     // 4096 entries, piece (cell) per pixel
//   for (const auto& m : anagram::jigsaw::piece_moves()) { ... }   // for animations
#pragma once

#include <cstdint>
#include <vector>

namespace anagram::jigsaw {

inline constexpr int kGrid = 4;  // pieces per side

// For a size x size picture (size divisible by 4, at least 16): the piece each pixel belongs
// to, row-major, as the row-major index (0..15) of the piece's home cell.
// Throws Error(kInvalidArgument) for other sizes.
std::vector<int> piece_map(int64_t size);

// How the upright picture's pieces make the jigsaw view: the piece whose home is `from_cell`
// appears at `to_cell`, turned `quarter_turns_ccw` quarter turns counter-clockwise (0..3).
struct PieceMove {
  int from_cell;
  int to_cell;
  int quarter_turns_ccw;
};
// One entry per piece, ordered by to_cell.
std::vector<PieceMove> piece_moves();

}  // namespace anagram::jigsaw
