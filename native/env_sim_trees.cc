#include "env_sim_trees.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace saco {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("compiling XGBoost trees: " + message);
}

// A JSON value of the model file; numbers and strings keep their text (a view into the bytes).
struct JValue {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  std::string_view text;
  std::vector<JValue> items;
  std::vector<std::pair<std::string_view, JValue>> fields;

  const JValue& at(std::string_view key) const {
    for (const auto& f : fields) {
      if (f.first == key) return f.second;
    }
    require(false, "no field \"" + std::string(key) + "\"");
    return *this;
  }
};

// Recursive descent over the subset XGBoost writes (no escapes beyond \" and \\ matter: they
// only appear in strings we do not read).
class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}
  JValue parse() {
    JValue v = value(0);
    space();
    require(at_ == s_.size(), "trailing bytes after the model");
    return v;
  }

 private:
  void space() {
    while (at_ < s_.size() && (s_[at_] == ' ' || s_[at_] == '\n' || s_[at_] == '\r' || s_[at_] == '\t')) ++at_;
  }
  char peek() {
    space();
    require(at_ < s_.size(), "truncated model");
    return s_[at_];
  }
  void expect(char c) {
    require(peek() == c, std::string("expected '") + c + "' at byte " + std::to_string(at_));
    ++at_;
  }
  std::string_view string() {
    expect('"');
    const size_t begin = at_;
    while (at_ < s_.size() && s_[at_] != '"') at_ += s_[at_] == '\\' ? 2 : 1;
    require(at_ < s_.size(), "unterminated string");
    return s_.substr(begin, at_++ - begin);
  }
  JValue value(int depth) {
    require(depth < 64, "nested too deep");
    JValue v;
    const char c = peek();
    if (c == '{') {
      v.kind = JValue::kObject;
      ++at_;
      if (peek() == '}') return ++at_, v;
      for (;;) {
        std::string_view key = string();
        expect(':');
        v.fields.emplace_back(key, value(depth + 1));
        if (peek() == ',') {
          ++at_;
          continue;
        }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.kind = JValue::kArray;
      ++at_;
      if (peek() == ']') return ++at_, v;
      for (;;) {
        v.items.push_back(value(depth + 1));
        if (peek() == ',') {
          ++at_;
          continue;
        }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.kind = JValue::kString;
      v.text = string();
      return v;
    }
    const size_t begin = at_;
    while (at_ < s_.size() && std::strchr(",]} \n\r\t", s_[at_]) == nullptr) ++at_;
    v.text = s_.substr(begin, at_ - begin);
    require(!v.text.empty(), "empty value at byte " + std::to_string(begin));
    v.kind = v.text == "true" || v.text == "false" ? JValue::kBool : v.text == "null" ? JValue::kNull : JValue::kNumber;
    return v;
  }
  std::string_view s_;
  size_t at_ = 0;
};

float to_float(std::string_view text) {
  const std::string s(text);
  char* end = nullptr;
  const float v = std::strtof(s.c_str(), &end);
  require(end != nullptr && *end == '\0' && std::isfinite(v), "not a finite number: " + s);
  return v;
}

int64_t to_int(std::string_view text) {
  const std::string s(text);
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  require(end != nullptr && *end == '\0', "not an integer: " + s);
  return v;
}

template <typename T, typename F>
std::vector<T> numbers(const JValue& array, F convert) {
  require(array.kind == JValue::kArray, "expected an array");
  std::vector<T> out;
  out.reserve(array.items.size());
  for (const JValue& v : array.items) out.push_back(static_cast<T>(convert(v.text)));
  return out;
}

}  // namespace

CompiledTrees CompiledTrees::constant(float value) {
  CompiledTrees t;
  t.constant_ = true;
  t.value_ = value;
  return t;
}

CompiledTrees CompiledTrees::compile(const xgb::Booster& booster) {
  const std::vector<uint8_t> bytes = booster.save(xgb::Format::kJson);
  const JValue root = Parser(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())).parse();
  const JValue& learner = root.at("learner");
  const std::string_view objective = learner.at("objective").at("name").text;
  require(objective == "binary:logistic" || objective == "reg:squarederror", "objective " + std::string(objective) + " is not one the simulator reads");
  const JValue& params = learner.at("learner_model_param");
  require(params.at("num_class").text == "0", "multi-class models are not supported");
  const JValue& gb = learner.at("gradient_booster");
  require(gb.at("name").text == "gbtree", "only gbtree boosters are supported");
  const JValue& model = gb.at("model");
  require(to_int(model.at("gbtree_model_param").at("num_parallel_tree").text) == 1, "parallel trees are not supported");
  CompiledTrees t;
  t.logistic_ = objective == "binary:logistic";
  const float base = to_float(params.at("base_score").text);
  // XGBoost's ProbToMargin for the logistic objective, in float as it computes it
  t.base_margin_ = t.logistic_ ? -std::log(1.0f / base - 1.0f) : base;
  for (const JValue& tree : model.at("trees").items) {
    const auto left = numbers<int32_t>(tree.at("left_children"), to_int);
    const auto right = numbers<int32_t>(tree.at("right_children"), to_int);
    const auto feature = numbers<int32_t>(tree.at("split_indices"), to_int);
    const auto value = numbers<float>(tree.at("split_conditions"), to_float);
    const auto default_left = numbers<uint8_t>(tree.at("default_left"), to_int);
    const auto split_type = numbers<uint8_t>(tree.at("split_type"), to_int);
    const size_t n = left.size();
    require(n >= 1 && right.size() == n && feature.size() == n && value.size() == n && default_left.size() == n, "a tree's arrays differ in length");
    for (size_t i = 0; i < n; ++i) {
      const bool leaf = left[i] == -1;
      require(leaf || (left[i] > 0 && static_cast<size_t>(left[i]) < n && right[i] > 0 && static_cast<size_t>(right[i]) < n), "a child index is out of range");
      require(leaf || split_type.empty() || split_type[i] == 0, "categorical splits are not supported");
      require(leaf || feature[i] >= 0, "a negative split feature");
    }
    // breadth first from the root, each node's two children side by side: the top levels share
    // cache lines, and a node needs only its left child's index
    const int32_t offset = static_cast<int32_t>(t.nodes_.size());
    t.roots_.push_back(offset);
    std::vector<int32_t> order{0};  // XGBoost node ids in the new order
    std::vector<int32_t> placed(n, -1);
    placed[0] = 0;
    for (size_t q = 0; q < order.size(); ++q) {
      const int32_t i = order[q];
      if (left[static_cast<size_t>(i)] == -1) continue;
      for (int32_t child : {left[static_cast<size_t>(i)], right[static_cast<size_t>(i)]}) {
        require(placed[static_cast<size_t>(child)] < 0, "a node has two parents");
        placed[static_cast<size_t>(child)] = static_cast<int32_t>(order.size());
        order.push_back(child);
      }
    }
    for (int32_t i : order) {
      const size_t u = static_cast<size_t>(i);
      const bool leaf = left[u] == -1;
      t.nodes_.push_back(Node{leaf ? -1 : feature[u], value[u], leaf ? -1 : offset + placed[static_cast<size_t>(left[u])]});
      t.default_left_.push_back(default_left[u]);
      if (!leaf && feature[u] > t.max_feature_) t.max_feature_ = feature[u];
    }
  }
  return t;
}

void CompiledTrees::predict(const float* x, uint64_t n, uint64_t p, float* out) const {
  if (constant_) {
    for (uint64_t r = 0; r < n; ++r) out[r] = value_;
    return;
  }
  for (uint64_t r = 0; r < n; ++r) out[r] = base_margin_;
  const Node* nodes = nodes_.data();
  const uint8_t* default_left = default_left_.data();
  // tree by tree: the tree's top levels stay in cache over the rows, and each row sums in tree order
  for (int32_t root : roots_) {
    for (uint64_t r = 0; r < n; ++r) {
      const float* row = x + r * p;
      int32_t k = root;
      while (nodes[k].feature >= 0) {
        const float v = row[nodes[k].feature];
        // siblings are adjacent: the right child follows the left
        k = nodes[k].left + (std::isnan(v) ? (default_left[k] != 0 ? 0 : 1) : (v < nodes[k].value ? 0 : 1));
      }
      out[r] += nodes[k].value;
    }
  }
  if (logistic_) {
    for (uint64_t r = 0; r < n; ++r) out[r] = 1.0f / (1.0f + std::exp(-out[r]));
  }
}

CompiledTrees compile_outcome_head(const OutcomeHead& head, int64_t cols, const std::string& who) {
  if (head.constant || head.booster.empty()) return CompiledTrees::constant(static_cast<float>(head.value));
  CompiledTrees t = CompiledTrees::compile(head.booster);
  require(t.max_feature() < cols, who + ": head " + head.name + " splits on a column beyond its rows");
  return t;
}

}  // namespace saco
