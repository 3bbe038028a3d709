// Joint actions: the indices of several action dimensions as one index, the last dimension
// fastest (TypeScript's jointActions / loggedJointActions number them the same way).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace saco {

// How many joint actions the dimensions' sizes make.
inline size_t joint_count(const std::vector<int>& sizes) {
  size_t k = 1;
  for (int s : sizes) k *= static_cast<size_t>(s);
  return k;
}

// The joint index of one action [sizes.size()].
inline int32_t joint_index(const std::vector<int>& sizes, const int32_t* action) {
  int32_t k = 0;
  for (size_t j = 0; j < sizes.size(); ++j) k = k * sizes[j] + action[j];
  return k;
}

// The action [sizes.size()] of joint index k.
inline void joint_decode(const std::vector<int>& sizes, size_t k, int32_t* action) {
  for (size_t j = sizes.size(); j-- > 0;) {
    action[j] = static_cast<int32_t>(k % static_cast<size_t>(sizes[j]));
    k /= static_cast<size_t>(sizes[j]);
  }
}

// Every joint action's indices [joint_count(sizes), sizes.size()], in joint order.
inline std::vector<int32_t> joint_table(const std::vector<int>& sizes) {
  const size_t K = joint_count(sizes), A = sizes.size();
  std::vector<int32_t> table(K * A);
  for (size_t k = 0; k < K; ++k) joint_decode(sizes, k, table.data() + k * A);
  return table;
}

}  // namespace saco
