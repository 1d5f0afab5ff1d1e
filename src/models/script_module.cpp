#include "models/script_module.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/api/function_impl.h>

#include <algorithm>
#include <regex>
#include <set>
#include <unordered_set>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/models/bundle.h"

namespace anagram::detail {
namespace {

// Tensor math only: arithmetic, reductions, linear algebra, convolution, normalisation,
// activations, shape and indexing, creation of new tensors, dtype/device casts. Nothing that
// touches files, storages, serialisation, threads, the profiler, or the process.
const std::unordered_set<std::string>& allowed_operators() {
  static const std::unordered_set<std::string> ops = {
      // prim: the structure of a program.
      "prim::Constant",
      "prim::ListConstruct",
      "prim::ListUnpack",
      "prim::TupleConstruct",
      "prim::TupleUnpack",
      "prim::TupleIndex",
      "prim::DictConstruct",
      "prim::GetAttr",
      "prim::CallMethod",
      "prim::CallFunction",
      "prim::If",
      "prim::Loop",
      "prim::device",
      "prim::dtype",
      "prim::layout",
      "prim::NumToTensor",
      "prim::ImplicitTensorToNum",
      "prim::Uninitialized",
      "prim::unchecked_cast",
      "prim::RaiseException",
      "prim::isinstance",
      "prim::is_cuda",
      "prim::min",
      "prim::max",
      "prim::abs",
      "prim::shape",
      "prim::data",
      "prim::requires_grad",
      "prim::grad",
      "prim::AutogradZero",
      "prim::BroadcastSizes",
      "prim::ConstantChunk",
      "prim::EnumValue",
      "prim::EnumName",
      "prim::TupleSlice",
      "prim::ListIndex",
      "prim::StringIndex",
      // aten: scalar and list helpers of TorchScript.
      "aten::Int",
      "aten::Float",
      "aten::Bool",
      "aten::ScalarImplicit",
      "aten::IntImplicit",
      "aten::FloatImplicit",
      "aten::__getitem__",
      "aten::__is__",
      "aten::__isnot__",
      "aten::__not__",
      "aten::__and__",
      "aten::__or__",
      "aten::__contains__",
      "aten::len",
      "aten::append",
      "aten::eq",
      "aten::ne",
      "aten::lt",
      "aten::le",
      "aten::gt",
      "aten::ge",
      "aten::floordiv",
      "aten::remainder",
      "aten::format",
      "aten::str",
      "aten::dim",
      "aten::size",
      "aten::numel",
      "aten::item",
      "aten::warn",
      "aten::list",
      "aten::dict",
      "aten::keys",
      "aten::values",
      "aten::items",
      "aten::_set_item",
      "aten::extend",
      "aten::mul",
      "aten::add",
      "aten::sub",
      "aten::div",
      "aten::neg",
      "aten::pow",
      "aten::__range_length",
      "aten::__derive_index",
      "aten::is_floating_point",
      "aten::is_contiguous",
      "aten::element_size",
      "aten::get_device",
      // aten: element-wise math.
      "aten::abs",
      "aten::add_",
      "aten::addcmul",
      "aten::addcdiv",
      "aten::clamp",
      "aten::clamp_min",
      "aten::clamp_max",
      "aten::clip",
      "aten::cos",
      "aten::sin",
      "aten::tan",
      "aten::tanh",
      "aten::sigmoid",
      "aten::exp",
      "aten::expm1",
      "aten::log",
      "aten::log1p",
      "aten::log2",
      "aten::sqrt",
      "aten::rsqrt",
      "aten::reciprocal",
      "aten::square",
      "aten::sign",
      "aten::floor",
      "aten::ceil",
      "aten::round",
      "aten::trunc",
      "aten::frac",
      "aten::floor_divide",
      "aten::fmod",
      "aten::rsub",
      "aten::mul_",
      "aten::div_",
      "aten::sub_",
      "aten::neg_",
      "aten::erf",
      "aten::erfinv",
      "aten::atan",
      "aten::atan2",
      "aten::asin",
      "aten::acos",
      "aten::minimum",
      "aten::maximum",
      "aten::lerp",
      "aten::where",
      "aten::masked_fill",
      "aten::masked_fill_",
      "aten::logical_and",
      "aten::logical_or",
      "aten::logical_not",
      "aten::bitwise_not",
      "aten::isnan",
      "aten::isinf",
      "aten::isfinite",
      "aten::nan_to_num",
      "aten::copysign",
      "aten::hypot",
      "aten::exp2",
      "aten::clamp_",
      "aten::fill_",
      "aten::zero_",
      "aten::copy_",
      // aten: activations and normalisation.
      "aten::relu",
      "aten::relu_",
      "aten::gelu",
      "aten::silu",
      "aten::silu_",
      "aten::mish",
      "aten::softplus",
      "aten::elu",
      "aten::leaky_relu",
      "aten::hardtanh",
      "aten::hardswish",
      "aten::hardsigmoid",
      "aten::softmax",
      "aten::log_softmax",
      "aten::_softmax",
      "aten::group_norm",
      "aten::layer_norm",
      "aten::batch_norm",
      "aten::instance_norm",
      "aten::native_layer_norm",
      "aten::native_group_norm",
      "aten::dropout",
      "aten::dropout_",
      "aten::feature_dropout",
      "aten::alpha_dropout",
      "aten::norm",
      "aten::linalg_norm",
      "aten::linalg_vector_norm",
      "aten::frobenius_norm",
      "aten::scaled_dot_product_attention",
      "aten::_scaled_dot_product_attention",
      "aten::glu",
      // aten: reductions.
      "aten::sum",
      "aten::mean",
      "aten::prod",
      "aten::max",
      "aten::min",
      "aten::amax",
      "aten::amin",
      "aten::argmax",
      "aten::argmin",
      "aten::var",
      "aten::std",
      "aten::var_mean",
      "aten::std_mean",
      "aten::logsumexp",
      "aten::cumsum",
      "aten::cumprod",
      "aten::all",
      "aten::any",
      "aten::topk",
      "aten::sort",
      "aten::argsort",
      "aten::quantile",
      // aten: linear algebra and convolution.
      "aten::linear",
      "aten::matmul",
      "aten::mm",
      "aten::bmm",
      "aten::baddbmm",
      "aten::addmm",
      "aten::addbmm",
      "aten::einsum",
      "aten::dot",
      "aten::outer",
      "aten::t",
      "aten::_convolution",
      "aten::convolution",
      "aten::conv1d",
      "aten::conv2d",
      "aten::conv_transpose2d",
      "aten::avg_pool2d",
      "aten::max_pool2d",
      "aten::adaptive_avg_pool2d",
      "aten::upsample_nearest2d",
      "aten::upsample_bilinear2d",
      "aten::upsample_bicubic2d",
      "aten::pad",
      "aten::constant_pad_nd",
      "aten::reflection_pad2d",
      "aten::replication_pad2d",
      "aten::pixel_shuffle",
      "aten::pixel_unshuffle",
      "aten::embedding",
      // aten: shape, views and indexing.
      "aten::view",
      "aten::reshape",
      "aten::flatten",
      "aten::unflatten",
      "aten::squeeze",
      "aten::unsqueeze",
      "aten::permute",
      "aten::transpose",
      "aten::contiguous",
      "aten::expand",
      "aten::expand_as",
      "aten::repeat",
      "aten::repeat_interleave",
      "aten::cat",
      "aten::concat",
      "aten::stack",
      "aten::chunk",
      "aten::split",
      "aten::split_with_sizes",
      "aten::unbind",
      "aten::slice",
      "aten::select",
      "aten::narrow",
      "aten::index",
      "aten::index_select",
      "aten::gather",
      "aten::scatter",
      "aten::scatter_add",
      "aten::masked_select",
      "aten::flip",
      "aten::roll",
      "aten::rot90",
      "aten::tril",
      "aten::triu",
      "aten::diagonal",
      "aten::view_as",
      "aten::reshape_as",
      "aten::movedim",
      "aten::swapaxes",
      "aten::tensor_split",
      "aten::broadcast_tensors",
      "aten::meshgrid",
      "aten::alias",
      "aten::detach",
      "aten::clone",
      "aten::index_put_",
      "aten::_unsafe_view",
      "aten::numpy_T",
      "aten::mT",
      "aten::unfold",
      // aten: creating tensors and casting them.
      "aten::arange",
      "aten::zeros",
      "aten::ones",
      "aten::full",
      "aten::empty",
      "aten::zeros_like",
      "aten::ones_like",
      "aten::full_like",
      "aten::empty_like",
      "aten::tensor",
      "aten::scalar_tensor",
      "aten::linspace",
      "aten::to",
      "aten::type_as",
      "aten::float",
      "aten::half",
      "aten::bfloat16",
      "aten::long",
      "aten::int",
      "aten::bool",
      "aten::new_zeros",
      "aten::new_ones",
      "aten::new_full",
      "aten::new_empty",
      "aten::lift_fresh",
      "aten::_to_copy",
      "aten::one_hot",
      "aten::eye",
  };
  return ops;
}

void walk_block(const torch::jit::Block* block, std::set<std::string>& found) {
  for (const torch::jit::Node* node : block->nodes()) {
    found.insert(node->kind().toQualString());
    for (const torch::jit::Block* sub : node->blocks()) walk_block(sub, found);
  }
}

void walk_function(const torch::jit::Function& function, std::set<std::string>& found) {
  if (!function.isGraphFunction()) {
    found.insert("<builtin function " + function.qualname().qualifiedName() + ">");
    return;
  }
  walk_block(torch::jit::toGraphFunction(function).graph()->block(), found);
}

// torch::jit::load would run a class's __setstate__ while loading, before any check: refuse
// archives that define one (exported models never do).
void check_archive(const ModuleFile& file) {
  std::vector<std::string> records;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(file.path());
    records = reader->getAllRecords();
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kBundle,
                file.describe() + " is not a TorchScript file: " + describe_exception(e));
  }
  static const std::regex setstate(R"(def\s+__setstate__)");
  for (const auto& name : records) {
    if (name.size() < 3 || name.compare(name.size() - 3, 3, ".py") != 0) continue;
    std::string code;
    try {
      auto [data, size] = reader->getRecord(name);
      code.assign(static_cast<const char*>(data.get()), size);
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kBundle, file.describe() + " is damaged: " + describe_exception(e));
    }
    if (std::regex_search(code, setstate)) {
      throw Error(ErrorKind::kBundle, file.describe() +
                                          " defines __setstate__, code that would run while "
                                          "loading; model files may not");
    }
  }
}

}  // namespace

std::string ModuleFile::path() const { return (std::filesystem::path(bundle) / file).string(); }

std::string ModuleFile::describe() const {
  return folder_kind + " '" + printable(bundle) + "': " + role + " '" + printable(file) + "'";
}

bool operator_allowed(const std::string& qualified_name) {
  return allowed_operators().count(qualified_name) > 0;
}

std::vector<std::string> module_operators(const torch::jit::Module& module) {
  std::set<std::string> found;
  for (const torch::jit::Function* function :
       module._ivalue()->compilation_unit()->get_functions()) {
    walk_function(*function, found);
  }
  for (const auto& sub : module.modules()) {
    for (const auto& method : sub.get_methods()) walk_function(method.function(), found);
  }
  return {found.begin(), found.end()};
}

std::shared_ptr<torch::jit::Module> load_script_module(const ModuleFile& file,
                                                       const c10::Device& device,
                                                       std::optional<c10::ScalarType> dtype) {
  check_archive(file);
  std::shared_ptr<torch::jit::Module> module;
  try {
    module = std::make_shared<torch::jit::Module>(torch::jit::load(file.path(), device));
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kBundle,
                "cannot load " + file.describe() + ": " + describe_exception(e));
  }
  for (const auto& op : module_operators(*module)) {
    if (!operator_allowed(op)) {
      throw Error(ErrorKind::kBundle, file.describe() + " uses the operator " + op +
                                          ", which model files may not use (only tensor math "
                                          "is allowed; see docs/bundle.md)");
    }
  }
  try {
    module->eval();
    if (dtype) module->to(*dtype);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kBundle,
                "cannot load " + file.describe() + ": " + describe_exception(e));
  }
  return module;
}

torch::Tensor run_probe(const ModuleFile& file, const std::function<torch::Tensor()>& probe) {
  try {
    torch::NoGradGuard no_grad;
    return probe();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kBundle,
                file.describe() + " fails on a probe input: " + describe_exception(e));
  }
}

void expect_shape(const ModuleFile& file, const torch::Tensor& tensor,
                  const std::vector<int64_t>& expected) {
  if (tensor.sizes().vec() != expected) {
    throw Error(ErrorKind::kBundle, file.describe() + " returns shape " + c10::str(tensor.sizes()) +
                                        " but the manifest implies " + c10::str(expected));
  }
}

}  // namespace anagram::detail
