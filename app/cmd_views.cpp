// anagram views: list the views a picture can be made for.
#include <cstdio>

#include "anagram/views/views.h"
#include "commands.h"

namespace anagram::cli {

Runner add_views_command(CLI::App& app) {
  app.add_subcommand("views", "List the views (--view names, aliases and --view-arg)")
      ->footer(
          "Two kinds: permutation views move the picture's pixels (the anagrams of Visual "
          "Anagrams);\nfactor views filter the noise estimate and the components are summed "
          "(hybrid images\nand the other Factorized Diffusion views). One request uses views of "
          "one kind, one per prompt\nfor factor views.");
  return []() {
    bool first = true;
    ViewKind current = ViewKind::kPermutation;
    for (const ViewInfo& info : list_views()) {
      if (first || info.kind != current) {  // a heading per kind (the registry groups them)
        std::printf("%s%s views:\n", first ? "" : "\n",
                    info.kind == ViewKind::kFactor ? "Factor" : "Permutation");
        first = false;
        current = info.kind;
      }
      std::string aliases;
      for (const auto& alias : info.aliases) aliases += (aliases.empty() ? "" : ", ") + alias;
      std::printf("%-14s %s\n", info.name.c_str(), info.description.c_str());
      if (!aliases.empty()) std::printf("%-14s   aliases: %s\n", "", aliases.c_str());
      if (!info.arg_help.empty()) {
        std::printf("%-14s   --view-arg: %s (default %s)\n", "", info.arg_help.c_str(),
                    info.arg_default.c_str());
      }
    }
    return 0;
  };
}

}  // namespace anagram::cli
