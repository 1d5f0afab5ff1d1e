#include "models/archive_scan.h"

#include <torch/csrc/jit/frontend/lexer.h>
#include <torch/csrc/jit/frontend/parser.h>
#include <torch/csrc/jit/frontend/tree_views.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "models/script_module.h"

namespace anagram::detail {
namespace {

using torch::jit::Token;
using torch::jit::TreeRef;

// Limits far above what exported models need and far below what overflows the stack of
// TorchScript's recursive lexer (about 100 000 lines without a token), parser (about 10 000
// nested brackets or prefix operators) and compiler (one recursion per level of the tree).
constexpr int kMaxLinesWithoutToken = 1000;
constexpr int kMaxNesting = 64;            // brackets, and blocks
constexpr int kMaxPrefixRun = 64;          // operators in a row: "- - - x", "not not x"
constexpr int kMaxChainedPerLine = 256;    // "a ** b ** c", "a if b else c if d else e"
constexpr int kMaxTokensPerLine = 100000;  // one logical line
constexpr int kMaxElifChain = 256;         // elif after elif: the parser recurses on each
constexpr size_t kMaxTreeDepth = 256;

[[noreturn]] void refuse(const std::string& why) { throw Error(ErrorKind::kBundle, why); }

// Bytes first: TorchScript's lexer recurses once per line (or comment, or line continuation)
// that holds no token, so long runs of them must not reach it. NUL is refused too: the lexer
// reads numbers with strtod, which stops there.
void check_bytes(const std::string& text) {
  if (text.size() > kMaxCodeFileBytes) {
    refuse("is " + std::to_string(text.size()) + " bytes; at most " +
           std::to_string(kMaxCodeFileBytes) + " per code file");
  }
  int lines_without_token = 0;
  bool comment = false;
  for (const char c : text) {
    if (c == '\0') refuse("contains a NUL byte");
    if (c == '\n') {
      comment = false;
      if (++lines_without_token > kMaxLinesWithoutToken) {
        refuse("has more than " + std::to_string(kMaxLinesWithoutToken) +
               " lines in a row without code");
      }
    } else if (c == '#') {
      comment = true;
    } else if (!comment && c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v' &&
               c != '\\') {
      lines_without_token = 0;
    }
  }
}

bool is_atom(int kind) {
  switch (kind) {
    case torch::jit::TK_IDENT:
    case torch::jit::TK_NUMBER:
    case torch::jit::TK_STRINGLITERAL:
    case torch::jit::TK_TRUE:
    case torch::jit::TK_FALSE:
    case torch::jit::TK_NONE:
    case ')':
    case ']':
    case '}':
      return true;
    default:
      return false;
  }
}

// Then tokens, with TorchScript's own lexer: nesting and chains that its parser recurses on.
void check_tokens(const std::string& text) {
  torch::jit::Lexer lexer(std::make_shared<torch::jit::Source>(c10::string_view(text)));
  int brackets = 0, run = 0, chained = 0, line_tokens = 0;
  std::vector<int> elifs(1, 0);  // elif chain length per block level
  bool statement_start = true;
  while (lexer.cur().kind != torch::jit::TK_EOF) {
    const int kind = lexer.next().kind;
    switch (kind) {
      case torch::jit::TK_NEWLINE:
        run = chained = line_tokens = 0;
        statement_start = true;
        continue;
      case torch::jit::TK_INDENT:
        elifs.push_back(0);
        if (elifs.size() > kMaxNesting) refuse("nests blocks deeper than the limit");
        statement_start = true;
        continue;
      case torch::jit::TK_DEDENT:
        if (elifs.size() > 1) elifs.pop_back();
        statement_start = true;
        continue;
      default:
        break;
    }
    if (++line_tokens > kMaxTokensPerLine) refuse("has a line longer than the limit");
    if (statement_start && kind == torch::jit::TK_IF) elifs.back() = 0;
    if (kind == torch::jit::TK_ELIF && ++elifs.back() > kMaxElifChain) {
      refuse("chains more elif branches than the limit");
    }
    statement_start = false;
    if (kind == '(' || kind == '[' || kind == '{') {
      if (++brackets > kMaxNesting) refuse("nests brackets deeper than the limit");
    } else if (kind == ')' || kind == ']' || kind == '}') {
      --brackets;
    }
    if ((kind == torch::jit::TK_POW || kind == torch::jit::TK_IF) &&
        ++chained > kMaxChainedPerLine) {
      refuse("chains more operators than the limit on one line");
    }
    if (is_atom(kind) || kind == ',' || kind == ':') {
      run = 0;
    } else if (kind != '(' && kind != '[' && kind != '{' && ++run > kMaxPrefixRun) {
      refuse("has more operators in a row than the limit");
    }
  }
}

// The depth of a tree, without recursion (every later walk of it recurses).
size_t tree_depth(const TreeRef& root) {
  size_t deepest = 0;
  std::vector<std::pair<const torch::jit::Tree*, size_t>> stack = {{root.get(), 1}};
  while (!stack.empty()) {
    const auto [tree, depth] = stack.back();
    stack.pop_back();
    deepest = std::max(deepest, depth);
    if (depth > kMaxTreeDepth) return depth;
    if (tree->isAtom()) continue;
    for (const TreeRef& sub : tree->trees()) stack.emplace_back(sub.get(), depth + 1);
  }
  return deepest;
}

std::string quoted(const std::string& name) { return "'" + quote_for_error(name, 80) + "'"; }

// A type as written in annotations: names, dotted names, subscripts of them, None, strings.
bool is_type_expr(const TreeRef& e) {
  switch (e->kind()) {
    case torch::jit::TK_VAR:
    case torch::jit::TK_NONE:
    case torch::jit::TK_STRINGLITERAL:
      return true;
    case '.':
      return is_type_expr(torch::jit::Select(e).value());
    case torch::jit::TK_SUBSCRIPT: {
      const torch::jit::Subscript s(e);
      if (!is_type_expr(s.value())) return false;
      for (const auto& sub : s.subscript_exprs()) {
        if (!is_type_expr(sub)) return false;
      }
      return true;
    }
    case torch::jit::TK_TUPLE_LITERAL:
    case torch::jit::TK_LIST_LITERAL:
      for (const TreeRef& sub : e->trees()[0]->trees()) {
        if (!is_type_expr(sub)) return false;
      }
      return true;
    default:
      return false;
  }
}

// A value the compiler may evaluate at compile time (defaults, class constants): literals only,
// as torch.jit.save writes them. annotate(T, []) gives an empty list its type.
bool is_literal(const TreeRef& e) {
  switch (e->kind()) {
    case torch::jit::TK_CONST:
    case torch::jit::TK_STRINGLITERAL:
    case torch::jit::TK_TRUE:
    case torch::jit::TK_FALSE:
    case torch::jit::TK_NONE:
      return true;
    case torch::jit::TK_VAR: {
      const std::string name = torch::jit::Var(e).name().name();
      return name == "inf" || name == "nan";
    }
    case torch::jit::TK_UNARY_MINUS:
      return is_literal(e->trees()[0]);
    case torch::jit::TK_TUPLE_LITERAL:
    case torch::jit::TK_LIST_LITERAL:
    case torch::jit::TK_DICT_LITERAL:
      for (const TreeRef& list : e->trees()) {
        for (const TreeRef& sub : list->trees()) {
          if (!is_literal(sub)) return false;
        }
      }
      return true;
    case torch::jit::TK_APPLY: {
      const torch::jit::Apply apply(e);
      if (apply.callee().kind() != torch::jit::TK_VAR ||
          torch::jit::Var(apply.callee()).name().name() != "annotate" ||
          apply.inputs().size() != 2 || !apply.attributes().empty()) {
        return false;
      }
      return is_type_expr(apply.inputs()[0]) && is_literal(apply.inputs()[1]);
    }
    default:
      return false;
  }
}

void check_def(const torch::jit::Def& def) {
  const std::string name = def.name().name();
  if (name == "__setstate__" || name == "__getstate__") {
    refuse("defines " + name + ", code that would run while loading; model files may not");
  }
  for (const torch::jit::Param& param : def.decl().params()) {
    if (param.defaultValue().present() && !is_literal(param.defaultValue().get())) {
      refuse("gives the argument " + quoted(param.ident().name()) + " of " + quoted(name) +
             " a default that is not a literal (the compiler would run it)");
    }
  }
}

void check_class(const torch::jit::ClassDef& cls) {
  for (const auto& statement : cls.body()) {
    if (statement.kind() != torch::jit::TK_ASSIGN) continue;
    const torch::jit::Assign assign(statement);
    if (!assign.rhs().present()) continue;
    const TreeRef& lhs = assign.lhs_list().tree()->trees().at(0);
    const bool ok = lhs->kind() == torch::jit::TK_SUBSCRIPT ? is_type_expr(assign.rhs().get())
                                                            : is_literal(assign.rhs().get());
    if (!ok || assign.lhs_list().size() != 1) {
      refuse("class " + quoted(cls.name().name()) +
             " has a constant that is not a literal (the compiler would run it)");
    }
  }
}

// torch.NAME (and torch.autograd.NAME) is aten::NAME; ops.NS.NAME is NS::NAME.
void check_select(const torch::jit::Select& select, CodeFacts& facts) {
  const std::string name = select.selector().name();
  const TreeRef& value = select.value().tree();
  std::string op;
  if (value->kind() == torch::jit::TK_VAR) {
    const std::string base = torch::jit::Var(value).name().name();
    if (base == "CONSTANTS") {
      // CONSTANTS.c<index>; the importer refuses any other form.
      if (name.size() >= 2 && name.size() <= 8 && name[0] == 'c' &&
          std::all_of(name.begin() + 1, name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        facts.constants = std::max<int64_t>(facts.constants, std::stoll(name.substr(1)) + 1);
      }
      return;
    }
    if (base == "torch" && name == "classes") {
      refuse("uses a custom C++ class (torch.classes), which model files may not");
    }
    if (base == "torch" && name != "autograd") op = "aten::" + name;
  } else if (value->kind() == '.') {
    const torch::jit::Select inner(value);
    if (inner.value().kind() == torch::jit::TK_VAR) {
      const std::string base = torch::jit::Var(inner.value()).name().name();
      if (base == "ops") op = inner.selector().name() + "::" + name;
      if (base == "torch" && inner.selector().name() == "autograd") op = "aten::" + name;
      if (base == "__torch__" && inner.selector().name() == "torch" && name == "classes") {
        refuse("uses a custom C++ class (torch.classes), which model files may not");
      }
    }
  }
  if (!op.empty() && !operator_allowed(op)) {
    refuse("uses the operator " + quote_for_error(op, 120) +
           ", which model files may not use (only tensor math is allowed; see docs/bundle.md)");
  }
}

void check_tree(const TreeRef& root, CodeFacts& facts) {
  std::vector<TreeRef> stack = {root};
  while (!stack.empty()) {
    const TreeRef tree = std::move(stack.back());
    stack.pop_back();
    switch (tree->kind()) {
      case torch::jit::TK_DEF:
        check_def(torch::jit::Def(tree));
        break;
      case torch::jit::TK_CLASS_DEF:
        check_class(torch::jit::ClassDef(tree));
        break;
      case '.':
        check_select(torch::jit::Select(tree), facts);
        break;
      case torch::jit::TK_STRINGLITERAL:
        // A string can name a type, custom classes included.
        if (torch::jit::StringLiteral(tree).text().find("torch.classes") != std::string::npos) {
          refuse("uses a custom C++ class (torch.classes), which model files may not");
        }
        break;
      default:
        break;
    }
    if (tree->isAtom()) continue;
    for (const TreeRef& sub : tree->trees()) stack.push_back(sub);
  }
}

// The top level as the archive importer reads it (SourceImporterImpl::parseSourceIfNeeded):
// "op_version_set = N", then imports, classes and functions.
std::vector<TreeRef> parse_file(const std::string& text, CodeFacts& facts) {
  torch::jit::Parser parser(std::make_shared<torch::jit::Source>(c10::string_view(text)));
  torch::jit::Lexer& lexer = parser.lexer();
  if (lexer.cur().kind == torch::jit::TK_IDENT && lexer.cur().text() == "op_version_set") {
    lexer.next();
    lexer.expect('=');
    lexer.expect(torch::jit::TK_NUMBER);
    lexer.expect(torch::jit::TK_NEWLINE);
  }
  std::vector<TreeRef> definitions;
  while (lexer.cur().kind != torch::jit::TK_EOF) {
    while (lexer.nextIf(torch::jit::TK_IMPORT)) {
      while (lexer.cur().kind != torch::jit::TK_NEWLINE && lexer.cur().kind != torch::jit::TK_EOF) {
        lexer.next();
      }
      lexer.expect(torch::jit::TK_NEWLINE);
    }
    if (lexer.cur().kind == torch::jit::TK_CLASS_DEF) {
      definitions.push_back(parser.parseClass());
      facts.classes.push_back(torch::jit::ClassDef(definitions.back()).name().name());
    } else if (lexer.cur().kind == torch::jit::TK_DEF) {
      definitions.push_back(parser.parseFunction(/*is_method=*/false));
      facts.functions.push_back(torch::jit::Def(definitions.back()).name().name());
    } else if (lexer.cur().kind != torch::jit::TK_EOF) {
      refuse("has '" + quote_for_error(lexer.cur().text(), 40) +
             "' where a class or function should start");
    }
  }
  return definitions;
}

}  // namespace

CodeFacts scan_code_file(const std::string& text) {
  check_bytes(text);
  CodeFacts facts;
  std::vector<TreeRef> definitions;
  try {
    check_tokens(text);
    definitions = parse_file(text, facts);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    refuse("is not valid TorchScript: " + describe_exception(e, 200));
  }
  for (const TreeRef& definition : definitions) {
    if (tree_depth(definition) > kMaxTreeDepth) refuse("nests code deeper than the limit");
  }
  try {
    for (const TreeRef& definition : definitions) check_tree(definition, facts);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    refuse("is not valid TorchScript: " + describe_exception(e, 200));
  }
  return facts;
}

}  // namespace anagram::detail
