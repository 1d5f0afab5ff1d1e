// jigsaw: the 4x4 jigsaw permutation of the published jigsaw view (see anagram/views/jigsaw.h).
//
// Published make_jigsaw_perm(size, seed): output pixel p lies in piece k of a kind; it shows
// the input pixel q found by turning p (perm[kind][k] - k) quarter turns clockwise about the
// centre, then, when q lies in an e/f edge piece of a side whose swap bit is set, moving q to
// the other edge piece of that side. The piece masks there are drawn images; ours are made
// here with the same symmetry, so the pieces move exactly as published and only the outline of
// the tabs differs.
#include "anagram/views/jigsaw.h"

#include <array>
#include <cmath>
#include <utility>

#include "anagram/core/error.h"
#include "views/view_util.h"

namespace anagram::jigsaw {
namespace {

enum Kind { kCorner = 0, kInner = 1, kEdgeE = 2, kEdgeF = 3 };

struct Cell {
  int row;
  int col;
};

struct Piece {
  Kind kind;
  int turns;  // quarter turns clockwise from piece 0 of its kind; for edges also the side
};

// The published layout (header comment), row-major.
constexpr std::array<Piece, 16> kLayout = {{
    {kCorner, 0},
    {kEdgeE, 0},
    {kEdgeF, 0},
    {kCorner, 1},  //
    {kEdgeF, 3},
    {kInner, 0},
    {kInner, 1},
    {kEdgeE, 1},  //
    {kEdgeE, 3},
    {kInner, 3},
    {kInner, 2},
    {kEdgeF, 1},  //
    {kCorner, 3},
    {kEdgeF, 2},
    {kEdgeE, 2},
    {kCorner, 2},  //
}};

// np.random.seed(11); four np.random.permutation(4) (corner, inner, e, f) then
// np.random.randint(2, size=4) (swap bit per side): the published JigsawView default.
constexpr int kPiecePerm[4][4] = {{2, 3, 0, 1}, {2, 0, 3, 1}, {3, 0, 2, 1}, {3, 2, 0, 1}};
constexpr int kSideSwap[4] = {1, 0, 1, 0};

int cell_index(Cell c) { return c.row * kGrid + c.col; }

// A quarter turn clockwise about the centre of the 4x4 grid.
Cell turn_cell(Cell c) { return {c.col, kGrid - 1 - c.row}; }

Cell turn_cell(Cell c, int turns) {
  for (int i = 0; i < turns; ++i) c = turn_cell(c);
  return c;
}

// Cells moved by the e/f swap of the side a piece lies on: (drow, dcol), 0 if none.
std::pair<int, int> swap_offset(const Piece& piece) {
  if ((piece.kind != kEdgeE && piece.kind != kEdgeF) || kSideSwap[piece.turns] == 0) return {0, 0};
  const int towards_f = piece.kind == kEdgeE ? 1 : -1;  // e moves onto f, f onto e
  const int direction = piece.turns < 2 ? 1 : -1;       // sides 2 and 3 run backwards
  const int step = towards_f * direction;
  return piece.turns % 2 == 0 ? std::make_pair(0, step) : std::make_pair(step, 0);
}

// One tab: the piece in `giver` reaches into the neighbouring cell `taker`.
struct Tab {
  Cell giver;
  Cell taker;
};

// Six tabs and their quarter turns make all 24: along each side tabs point clockwise
// (corner -> e -> f -> next corner), edge pieces reach into the inner pieces, and the inner
// pieces point clockwise round the centre. Symmetric under quarter turns, and the e and f
// pieces of a side are translates of each other, as the swaps need.
std::vector<Tab> all_tabs() {
  const std::array<Tab, 6> base = {{{{0, 0}, {0, 1}},
                                    {{0, 1}, {0, 2}},
                                    {{0, 2}, {0, 3}},
                                    {{0, 1}, {1, 1}},
                                    {{0, 2}, {1, 2}},
                                    {{1, 1}, {1, 2}}}};
  std::vector<Tab> tabs;
  for (int turns = 0; turns < 4; ++turns) {
    for (const Tab& t : base)
      tabs.push_back({turn_cell(t.giver, turns), turn_cell(t.taker, turns)});
  }
  return tabs;
}

// Whether the pixel centre (x, y) (pixel units, cells of side s) lies in the tab. Local
// coordinates from the middle of the shared side: depth into the taker's cell and offset along
// the side. Pixel centres are half-integers, so these are exact and a turned picture gives the
// same values for the turned tab.
bool in_tab(const Tab& tab, double x, double y, double s) {
  const double mid_x = (tab.giver.col + tab.taker.col + 1) * s / 2;
  const double mid_y = (tab.giver.row + tab.taker.row + 1) * s / 2;
  const int nx = tab.taker.col - tab.giver.col;
  const int ny = tab.taker.row - tab.giver.row;
  const double depth = (x - mid_x) * nx + (y - mid_y) * ny;
  const double along = std::abs((x - mid_x) * ny - (y - mid_y) * nx);
  if (depth < 0) return false;
  const double neck_half_width = 0.08 * s;
  const double knob_depth = 0.2 * s;
  const double knob_radius = 0.13 * s;
  if (along <= neck_half_width && depth <= knob_depth) return true;
  const double dd = depth - knob_depth;
  return along * along + dd * dd <= knob_radius * knob_radius;
}

void check_puzzle_size(int64_t size) {
  if (size < 16 || size % kGrid != 0) {
    throw Error(ErrorKind::kInvalidArgument,
                "view 'jigsaw': needs a square picture whose side is a multiple of 4 and at "
                "least 16, got " +
                    std::to_string(size) + "x" + std::to_string(size));
  }
}

}  // namespace

std::vector<int> piece_map(int64_t size) {
  check_puzzle_size(size);
  const int64_t s = size / kGrid;
  const std::vector<Tab> tabs = all_tabs();
  std::vector<int> owner(static_cast<size_t>(size * size));
  for (int64_t y = 0; y < size; ++y) {
    for (int64_t x = 0; x < size; ++x) {
      const Cell home{static_cast<int>(y / s), static_cast<int>(x / s)};
      int piece = cell_index(home);
      for (const Tab& tab : tabs) {
        if (tab.taker.row == home.row && tab.taker.col == home.col &&
            in_tab(tab, static_cast<double>(x) + 0.5, static_cast<double>(y) + 0.5,
                   static_cast<double>(s))) {
          piece = cell_index(tab.giver);
          break;
        }
      }
      owner[static_cast<size_t>(y * size + x)] = piece;
    }
  }
  return owner;
}

std::vector<PieceMove> piece_moves() {
  std::vector<PieceMove> moves;
  for (int row = 0; row < kGrid; ++row) {
    for (int col = 0; col < kGrid; ++col) {
      const Cell to{row, col};
      const Piece& piece = kLayout[static_cast<size_t>(cell_index(to))];
      const int turns = (kPiecePerm[piece.kind][piece.turns] - piece.turns + 4) % 4;
      Cell from = turn_cell(to, turns);
      const auto [drow, dcol] = swap_offset(kLayout[static_cast<size_t>(cell_index(from))]);
      from = {from.row + drow, from.col + dcol};
      moves.push_back({cell_index(from), cell_index(to), turns});
    }
  }
  return moves;
}

}  // namespace anagram::jigsaw

namespace anagram::views_detail {
namespace {

struct Cell {
  int64_t row;
  int64_t col;
};

class JigsawView final : public View {
 public:
  using View::View;
  std::string name() const override { return "jigsaw"; }
  std::string description() const override {
    return "4x4 jigsaw puzzle, pieces moved and turned (the published permutation)";
  }

  void check_size(int64_t height, int64_t width) const override {
    View::check_size(height, width);
    require_square(name(), height, width);
    if (height < 16 || height % jigsaw::kGrid != 0) {
      throw Error(ErrorKind::kInvalidArgument,
                  "view 'jigsaw': needs a side that is a multiple of 4 and at least 16, got " +
                      std::to_string(height) + "x" + std::to_string(width));
    }
  }

 protected:
  // Each output pixel's source: the pixel of the moved piece, i.e. the output pixel turned
  // with its piece about the centre, then shifted by the piece's swap.
  torch::Tensor compute_source_index(int64_t height, int64_t width) const override {
    const std::vector<int> owner = jigsaw::piece_map(height);
    const std::vector<jigsaw::PieceMove> moves = jigsaw::piece_moves();
    const int64_t s = height / jigsaw::kGrid;
    return index_from_coords(height, width, [&](int64_t y, int64_t x) {
      const jigsaw::PieceMove& move = moves[static_cast<size_t>(owner[y * width + x])];
      for (int i = 0; i < move.quarter_turns_ccw; ++i) {
        // The output is the input turned counter-clockwise, so the source is the output pixel
        // turned clockwise: (y, x) -> (x, S - 1 - y).
        const int64_t turned_y = x;
        x = height - 1 - y;
        y = turned_y;
      }
      // The swap (if any) moves the turned piece on to its real home, whole cells at a time.
      // Measured from the piece's turned home cell, not the pixel's: tab pixels lie in a
      // neighbouring cell.
      const int to = move.to_cell;
      Cell turned{to / jigsaw::kGrid, to % jigsaw::kGrid};
      for (int i = 0; i < move.quarter_turns_ccw; ++i)
        turned = {turned.col, jigsaw::kGrid - 1 - turned.row};
      y += (move.from_cell / jigsaw::kGrid - turned.row) * s;
      x += (move.from_cell % jigsaw::kGrid - turned.col) * s;
      return std::make_pair(y, x);
    });
  }
};

}  // namespace

ViewEntry jigsaw_view_entry() {
  return {{"jigsaw",
           {"puzzle"},
           "4x4 jigsaw puzzle, pieces moved and turned (the published permutation)",
           "",
           ""},
          [](const std::string& arg) {
            require_no_arg("jigsaw", arg);
            return std::make_shared<const JigsawView>(arg);
          }};
}

}  // namespace anagram::views_detail
