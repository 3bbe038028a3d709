// Backward passes against central finite differences (llama.cpp's test-backend-ops idea):
// each check builds random inputs, takes L = sum(r * forward(x)) (or the model's loss) in
// double, and compares every analytic gradient element with (L(x + e) - L(x - e)) / 2e.
// Used by the test suite through the addon; not on any production path.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace saco {

struct GradCheckResult {
  std::string tensor;    // which input or parameter
  double max_abs_error;  // max |analytic - finite difference|
  double max_abs_grad;   // max |finite difference| (the scale of the error)
  size_t checked;        // elements compared
};

// what: matmul, layernorm, gelu, attention, attention-dropout, softmax-xent,
// model-weighted, model-dropout, model-no-rtg, model-no-constraint.
std::vector<GradCheckResult> grad_check(const std::string& what, uint64_t seed);

std::vector<std::string> grad_check_names();

}  // namespace saco
