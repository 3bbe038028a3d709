#include "forest.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "pool.h"
#include "registry.h"
#include "rng.h"

namespace saco {
namespace {

// The forest's own streams of the counter-based generator (user = tree index).
constexpr uint32_t kStreamForestSample = 0x464F5200u;  // the subsample and its halves
constexpr uint32_t kStreamForestSplit = 0x464F5201u;   // the features tried at each node
constexpr int kOutcomes = 2;                           // reward, cost
constexpr uint32_t kMaxRows = 0x7FFFFFFFu;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

uint32_t resolved_mtry(const ForestOptions& o, uint32_t features) {
  if (o.mtry > 0) return std::min(o.mtry, features);
  const auto grf = static_cast<uint32_t>(std::ceil(std::sqrt(static_cast<double>(features)) + 20));
  return std::min(grf, features);
}

// Tree b's subsample: the first `split` entries of the returned prefix grow the tree, the
// next `estimate` fill its leaves. perm must hold 0..rows-1 on entry (partial Fisher–Yates).
void draw_subsample(const ForestOptions& o, uint32_t rows, uint32_t b, std::vector<uint32_t>& perm, uint32_t& split, uint32_t& estimate) {
  const auto s = std::max<uint32_t>(2, std::min<uint32_t>(rows, static_cast<uint32_t>(std::floor(o.sample_fraction * rows))));
  split = std::clamp<uint32_t>(static_cast<uint32_t>(std::floor(o.honesty_fraction * s)), 1, s - 1);
  estimate = s - split;
  CounterStream rng(o.seed, b, 0, kStreamForestSample);
  for (uint32_t i = 0; i < s; ++i) {
    const uint32_t left = rows - i;
    const auto j = i + std::min<uint32_t>(left - 1, static_cast<uint32_t>(std::floor(rng.uniform() * left)));
    std::swap(perm[i], perm[j]);
  }
}

// Quantile cut points of every feature: x <= cuts[f][j] puts a row in bin <= j.
std::vector<std::vector<float>> cut_points(const ForestData& d, uint32_t bins) {
  std::vector<std::vector<float>> cuts(d.features);
  const uint32_t stride = std::max<uint32_t>(1, d.rows / 200000);  // at most ~200k rows per feature
  std::vector<float> v;
  for (uint32_t f = 0; f < d.features; ++f) {
    v.clear();
    for (uint32_t r = 0; r < d.rows; r += stride) v.push_back(d.x[static_cast<size_t>(r) * d.features + f]);
    std::sort(v.begin(), v.end());
    std::vector<float>& c = cuts[f];
    for (uint32_t j = 1; j < bins; ++j) {
      const float q = v[static_cast<size_t>(j) * v.size() / bins];
      if (q < v.back() && (c.empty() || q > c.back())) c.push_back(q);
    }
  }
  return cuts;
}

// Everything one thread needs to grow trees; reused from tree to tree.
struct Grower {
  const ForestData& d;
  const ForestOptions& o;
  const std::vector<std::vector<float>>& cuts;
  const std::vector<uint8_t>& codes;  // [rows, features] bin of every value
  double scale[kOutcomes];  // of the tree being grown
  uint32_t mtry, K, D;

  std::vector<uint32_t> perm, rows;
  std::vector<double> rho;               // [node rows, D]
  // per tried feature i and bin b (cell i * bins + b): rows, rows per arm, Σ rho
  std::vector<uint32_t> hist_rows, hist_count;  // [mtry, bins], [mtry, bins, K]
  std::vector<double> hist_sum;                 // [mtry, bins, D]
  std::vector<std::vector<uint8_t>> touched;    // [mtry] bins holding rows, per tried feature
  std::vector<uint32_t> feature_order;

  int slot(int32_t arm) const { return arm < static_cast<int32_t>(d.control) ? arm : arm - 1; }
  const double* outcome(int m) const { return m == 0 ? d.reward.data() : d.cost.data(); }

  struct Split {
    double gain = 0;
    int32_t feature = -1;
    float threshold = 0;
  };

  // Fills rho for rows[lo, hi); false when some arm has too few rows to split at all.
  bool pseudo_outcomes(uint32_t lo, uint32_t hi, std::vector<uint32_t>& count) {
    const uint32_t n = hi - lo;
    count.assign(K, 0);
    std::vector<double> mean(static_cast<size_t>(K) * kOutcomes, 0.0);
    for (uint32_t j = lo; j < hi; ++j) {
      const uint32_t r = rows[j];
      const int32_t a = d.arm[r];
      ++count[a];
      for (int m = 0; m < kOutcomes; ++m) mean[a * kOutcomes + m] += outcome(m)[r];
    }
    for (uint32_t k = 0; k < K; ++k) {
      if (count[k] < 2 * o.min_node_size) return false;
      for (int m = 0; m < kOutcomes; ++m) mean[k * kOutcomes + m] /= count[k];
    }
    const double p0 = static_cast<double>(count[d.control]) / n;
    rho.assign(static_cast<size_t>(n) * D, 0.0);
    for (uint32_t j = lo; j < hi; ++j) {
      const uint32_t r = rows[j];
      const int32_t a = d.arm[r];
      double* out = rho.data() + static_cast<size_t>(j - lo) * D;
      for (int m = 0; m < kOutcomes; ++m) {
        const double e = (outcome(m)[r] - mean[a * kOutcomes + m]) * scale[m];
        if (a == static_cast<int32_t>(d.control)) {
          for (uint32_t s = 0; s + 1 < K; ++s) out[s * kOutcomes + m] = -e / p0;
        } else {
          out[slot(a) * kOutcomes + m] = e / (static_cast<double>(count[a]) / n);
        }
      }
    }
    return true;
  }

  Split best_split(uint32_t lo, uint32_t hi, const std::vector<uint32_t>& count, CounterStream& rng) {
    const uint32_t n = hi - lo;
    std::vector<uint32_t> least(K);
    for (uint32_t k = 0; k < K; ++k) least[k] = std::max<uint32_t>(o.min_node_size, static_cast<uint32_t>(std::ceil(o.alpha * count[k])));
    std::vector<double> total(D, 0.0), left_sum(D);
    for (uint32_t j = 0; j < n; ++j) {
      for (uint32_t q = 0; q < D; ++q) total[q] += rho[static_cast<size_t>(j) * D + q];
    }
    // mtry distinct features, drawn by partial Fisher–Yates
    for (uint32_t f = 0; f < d.features; ++f) feature_order[f] = f;
    for (uint32_t i = 0; i < mtry; ++i) {
      const uint32_t left = d.features - i;
      const auto j = i + std::min<uint32_t>(left - 1, static_cast<uint32_t>(std::floor(rng.uniform() * left)));
      std::swap(feature_order[i], feature_order[j]);
    }
    // histograms of every tried feature at once, rows outer: one pass over the node's rows
    const size_t nb = o.bins;
    for (uint32_t i = 0; i < mtry; ++i) touched[i].clear();
    for (uint32_t j = lo; j < hi; ++j) {
      const uint8_t* code = codes.data() + static_cast<size_t>(rows[j]) * d.features;
      const int32_t a = d.arm[rows[j]];
      const double* r = rho.data() + static_cast<size_t>(j - lo) * D;
      for (uint32_t i = 0; i < mtry; ++i) {
        const size_t cell = i * nb + code[feature_order[i]];
        if (hist_rows[cell]++ == 0) touched[i].push_back(static_cast<uint8_t>(cell - i * nb));
        ++hist_count[cell * K + a];
        double* s = hist_sum.data() + cell * D;
        for (uint32_t q = 0; q < D; ++q) s[q] += r[q];
      }
    }
    Split best;
    std::vector<uint32_t> left_count(K);
    for (uint32_t i = 0; i < mtry; ++i) {
      const uint32_t f = feature_order[i];
      std::vector<uint8_t>& bins = touched[i];
      std::sort(bins.begin(), bins.end());
      std::fill(left_count.begin(), left_count.end(), 0u);
      std::fill(left_sum.begin(), left_sum.end(), 0.0);
      uint32_t left_n = 0;
      for (size_t t = 0; t + 1 < bins.size(); ++t) {
        const size_t cell = i * nb + bins[t];
        left_n += hist_rows[cell];
        for (uint32_t k = 0; k < K; ++k) left_count[k] += hist_count[cell * K + k];
        for (uint32_t q = 0; q < D; ++q) left_sum[q] += hist_sum[cell * D + q];
        bool ok = true;
        for (uint32_t k = 0; k < K && ok; ++k) ok = left_count[k] >= least[k] && count[k] - left_count[k] >= least[k];
        if (!ok) continue;
        double l2 = 0, r2 = 0;
        for (uint32_t q = 0; q < D; ++q) {
          l2 += left_sum[q] * left_sum[q];
          const double rq = total[q] - left_sum[q];
          r2 += rq * rq;
        }
        const double gain = l2 / left_n + r2 / (n - left_n);
        if (gain > best.gain) {
          best.gain = gain;
          best.feature = static_cast<int32_t>(f);
          best.threshold = cuts[f][bins[t]];
        }
      }
      for (uint8_t b : bins) {
        const size_t cell = i * nb + b;
        hist_rows[cell] = 0;
        std::fill_n(hist_count.data() + cell * K, K, 0u);
        std::fill_n(hist_sum.data() + cell * D, D, 0.0);
      }
    }
    return best;
  }

  // 1 / the noise level of each outcome on the splitting half (the pooled standard deviation
  // around the arm means), so reward and cost weigh alike in the split criterion. It reads the
  // splitting half only, and an arm-wise shift of its outcomes leaves it (and every split) as is.
  void noise_scales() {
    std::vector<double> n(K, 0.0), mean(static_cast<size_t>(K) * kOutcomes, 0.0);
    for (uint32_t r : rows) {
      n[d.arm[r]] += 1;
      for (int m = 0; m < kOutcomes; ++m) mean[d.arm[r] * kOutcomes + m] += outcome(m)[r];
    }
    for (uint32_t k = 0; k < K; ++k) {
      for (int m = 0; m < kOutcomes; ++m) mean[k * kOutcomes + m] /= std::max(n[k], 1.0);
    }
    for (int m = 0; m < kOutcomes; ++m) {
      double ss = 0;
      for (uint32_t r : rows) {
        const double e = outcome(m)[r] - mean[d.arm[r] * kOutcomes + m];
        ss += e * e;
      }
      scale[m] = ss > 0 ? 1.0 / std::sqrt(ss / static_cast<double>(rows.size())) : 0.0;
    }
  }

  ForestTree grow(uint32_t b) {
    for (uint32_t r = 0; r < d.rows; ++r) perm[r] = r;
    uint32_t split = 0, estimate = 0;
    draw_subsample(o, d.rows, b, perm, split, estimate);
    rows.assign(perm.begin(), perm.begin() + split);
    noise_scales();
    CounterStream rng(o.seed, b, 1, kStreamForestSplit);
    ForestTree tree;
    struct Pending {
      int32_t node;
      uint32_t lo, hi, depth;
    };
    auto add_node = [&tree]() {
      tree.feature.push_back(-1);
      tree.threshold.push_back(0);
      tree.left.push_back(-1);
      tree.right.push_back(-1);
      return static_cast<int32_t>(tree.feature.size() - 1);
    };
    std::vector<Pending> stack{{add_node(), 0, split, 0}};
    std::vector<uint32_t> count;
    int32_t leaves = 0;
    while (!stack.empty()) {
      const Pending p = stack.back();
      stack.pop_back();
      Split s;
      if (p.depth < o.max_depth && pseudo_outcomes(p.lo, p.hi, count)) s = best_split(p.lo, p.hi, count, rng);
      if (s.feature < 0) {
        tree.left[p.node] = leaves++;
        continue;
      }
      const int f = s.feature;
      const float thr = s.threshold;
      const auto mid = static_cast<uint32_t>(
          std::partition(rows.begin() + p.lo, rows.begin() + p.hi, [&](uint32_t r) { return d.x[static_cast<size_t>(r) * d.features + f] <= thr; }) - rows.begin());
      tree.feature[p.node] = f;
      tree.threshold[p.node] = thr;
      const int32_t l = add_node();
      const int32_t r = add_node();
      tree.left[p.node] = l;
      tree.right[p.node] = r;
      stack.push_back({r, mid, p.hi, p.depth + 1});
      stack.push_back({l, p.lo, mid, p.depth + 1});
    }
    // honest leaves: only the estimation half's outcomes
    tree.leaf.assign(static_cast<size_t>(leaves) * K * 3, 0.0);
    for (uint32_t i = split; i < split + estimate; ++i) {
      const uint32_t r = perm[i];
      double* cell = tree.leaf.data() + (static_cast<size_t>(tree.leaf_of(d.x.data() + static_cast<size_t>(r) * d.features)) * K + d.arm[r]) * 3;
      cell[0] += 1;
      cell[1] += d.reward[r];
      cell[2] += d.cost[r];
    }
    return tree;
  }

  Grower(const ForestData& data, const ForestOptions& options, const std::vector<std::vector<float>>& c, const std::vector<uint8_t>& bin_codes)
      : d(data), o(options), cuts(c), codes(bin_codes), mtry(resolved_mtry(options, data.features)), K(data.arms), D((data.arms - 1) * kOutcomes) {
    perm.resize(d.rows);
    hist_rows.assign(static_cast<size_t>(mtry) * o.bins, 0);
    hist_count.assign(static_cast<size_t>(mtry) * o.bins * K, 0);
    hist_sum.assign(static_cast<size_t>(mtry) * o.bins * D, 0.0);
    touched.resize(mtry);
    feature_order.resize(d.features);
  }
};

Registry<const CausalForest>& forests() {
  static Registry<const CausalForest> r;
  return r;
}

}  // namespace

int32_t ForestTree::leaf_of(const float* x) const {
  int32_t node = 0;
  while (feature[node] >= 0) node = x[feature[node]] <= threshold[node] ? left[node] : right[node];
  return left[node];
}

void CausalForest::predict(const float* x, size_t n, double* reward_uplift, double* cost_uplift) const {
  const size_t width = static_cast<size_t>(arms) * 3;
  constexpr size_t kChunk = 256;  // rows per pass over the trees: a tree stays in cache for all of them
  std::vector<double> acc(kChunk * width);
  for (size_t begin = 0; begin < n; begin += kChunk) {
    const size_t m = std::min(kChunk, n - begin);
    std::fill(acc.begin(), acc.end(), 0.0);
    for (const ForestTree& t : trees) {
      for (size_t i = 0; i < m; ++i) {
        const double* cell = t.leaf.data() + static_cast<size_t>(t.leaf_of(x + (begin + i) * features)) * width;
        double size = 0;
        for (uint32_t k = 0; k < arms; ++k) size += cell[k * 3];
        if (size == 0) continue;  // an empty leaf says nothing
        double* a = acc.data() + i * width;
        for (size_t q = 0; q < width; ++q) a[q] += cell[q] / size;
      }
    }
    for (size_t i = 0; i < m; ++i) {
      const double* row = acc.data() + i * width;
      const double* c = row + static_cast<size_t>(control) * 3;
      double* ru = reward_uplift + (begin + i) * arms;
      double* cu = cost_uplift + (begin + i) * arms;
      for (uint32_t k = 0; k < arms; ++k) {
        const double* a = row + static_cast<size_t>(k) * 3;
        const bool known = k != control && a[0] > 0 && c[0] > 0;
        ru[k] = known ? a[1] / a[0] - c[1] / c[0] : 0.0;
        cu[k] = known ? a[2] / a[0] - c[2] / c[0] : 0.0;
      }
    }
  }
}

void CausalForest::halves(uint32_t b, std::vector<uint32_t>& split, std::vector<uint32_t>& estimate) const {
  require(b < trees.size(), "tree index beyond the forest's " + std::to_string(trees.size()) + " trees");
  std::vector<uint32_t> perm(rows);
  for (uint32_t r = 0; r < rows; ++r) perm[r] = r;
  uint32_t ns = 0, ne = 0;
  draw_subsample(options, rows, b, perm, ns, ne);
  split.assign(perm.begin(), perm.begin() + ns);
  estimate.assign(perm.begin() + ns, perm.begin() + ns + ne);
}

void validate_forest_input(const ForestData& d, const ForestOptions& o) {
  require(o.trees >= 1 && o.trees <= 100000, "trees must be in [1, 100000]");
  require(o.sample_fraction > 0 && o.sample_fraction <= 1, "sampleFraction must be in (0, 1]");
  require(o.honesty_fraction > 0 && o.honesty_fraction < 1, "honestyFraction must be in (0, 1)");
  require(o.min_node_size >= 1, "minNodeSize must be >= 1");
  require(o.alpha >= 0 && o.alpha <= 0.25, "alpha must be in [0, 0.25]");
  require(o.max_depth >= 1 && o.max_depth <= 1000, "maxDepth must be in [1, 1000]");
  require(o.bins >= 2 && o.bins <= 255, "bins must be in [2, 255]");
  require(d.features >= 1 && d.features <= 100000, "features must be in [1, 100000]");
  require(d.arms >= 2 && d.arms <= 256, "a forest needs 2 to 256 arms (the control and at least one coupon)");
  require(d.control < d.arms, "the control arm must be one of the arms");
  require(d.rows >= 4 && d.rows <= kMaxRows, "a forest needs 4 to 2^31 - 1 rows");
  require(d.x.size() == static_cast<size_t>(d.rows) * d.features, "x must hold rows x features values");
  require(d.arm.size() == d.rows && d.reward.size() == d.rows && d.cost.size() == d.rows, "arm, reward and cost must hold one value per row");
  std::vector<uint32_t> count(d.arms, 0);
  for (uint32_t r = 0; r < d.rows; ++r) {
    require(d.arm[r] >= 0 && static_cast<uint32_t>(d.arm[r]) < d.arms, "row " + std::to_string(r) + ": arm " + std::to_string(d.arm[r]) + " is not in [0, arms)");
    require(std::isfinite(d.reward[r]) && std::isfinite(d.cost[r]), "row " + std::to_string(r) + ": reward and cost must be finite");
    ++count[d.arm[r]];
  }
  for (float v : d.x) require(std::isfinite(v), "x must hold finite values");
  for (uint32_t k = 0; k < d.arms; ++k) require(count[k] > 0, "arm " + std::to_string(k) + " has no rows: the forest cannot estimate its uplift");
}

std::unique_ptr<CausalForest> fit_forest(const ForestData& d, const ForestOptions& o) {
  validate_forest_input(d, o);
  const auto cuts = cut_points(d, o.bins);
  std::vector<uint8_t> codes(static_cast<size_t>(d.rows) * d.features);
  for (uint32_t r = 0; r < d.rows; ++r) {
    for (uint32_t f = 0; f < d.features; ++f) {
      const std::vector<float>& c = cuts[f];
      codes[static_cast<size_t>(r) * d.features + f] = static_cast<uint8_t>(std::lower_bound(c.begin(), c.end(), d.x[static_cast<size_t>(r) * d.features + f]) - c.begin());
    }
  }
  auto forest = std::make_unique<CausalForest>();
  forest->features = d.features;
  forest->arms = d.arms;
  forest->control = d.control;
  forest->rows = d.rows;
  forest->options = o;
  forest->options.threads = 0;
  forest->trees.resize(o.trees);
  const unsigned threads = std::min<unsigned>(resolve_threads(o.threads), o.trees);
  std::atomic<uint32_t> next{0};
  parallel_for_workers(threads, threads, [&](size_t, size_t, size_t) {
    Grower g(d, o, cuts, codes);
    for (uint32_t b = next++; b < o.trees; b = next++) forest->trees[b] = g.grow(b);
  });
  return forest;
}

void validate_forest(const CausalForest& f) {
  require(f.features >= 1 && f.arms >= 2 && f.control < f.arms && f.rows >= 4 && f.rows <= kMaxRows, "forest header out of range");
  require(!f.trees.empty(), "a forest needs at least one tree");
  for (size_t b = 0; b < f.trees.size(); ++b) {
    const ForestTree& t = f.trees[b];
    const std::string where = "tree " + std::to_string(b) + ": ";
    const size_t nodes = t.feature.size();
    require(nodes >= 1 && t.threshold.size() == nodes && t.left.size() == nodes && t.right.size() == nodes, where + "node arrays of different lengths");
    require(t.leaf.size() % (static_cast<size_t>(f.arms) * 3) == 0, where + "leaf statistics of the wrong length");
    const size_t leaves = t.leaf.size() / (static_cast<size_t>(f.arms) * 3);
    std::vector<uint8_t> seen(nodes, 0), leaf_seen(leaves, 0);
    for (size_t i = 0; i < nodes; ++i) {
      if (t.feature[i] < 0) {
        require(t.left[i] >= 0 && static_cast<size_t>(t.left[i]) < leaves && !leaf_seen[t.left[i]], where + "bad leaf index");
        leaf_seen[t.left[i]] = 1;
        continue;
      }
      require(static_cast<uint32_t>(t.feature[i]) < f.features && std::isfinite(t.threshold[i]), where + "bad split");
      for (int32_t c : {t.left[i], t.right[i]}) {
        require(c > static_cast<int32_t>(i) && static_cast<size_t>(c) < nodes && !seen[c], where + "bad child index");
        seen[c] = 1;
      }
    }
    for (uint8_t s : leaf_seen) require(s, where + "a leaf no node reaches");
    for (size_t i = 0; i < t.leaf.size(); ++i) {
      require(std::isfinite(t.leaf[i]) && (i % 3 != 0 || t.leaf[i] >= 0), where + "leaf statistics must be finite, counts >= 0");
    }
  }
}

namespace {

constexpr char kMagic[8] = {'S', 'A', 'C', 'O', 'F', 'R', 'S', 'T'};
constexpr uint32_t kVersion = 1;

bool little_endian() {
  const uint32_t one = 1;
  uint8_t first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

class Writer {
 public:
  template <typename T>
  void put(T v) { raw(&v, sizeof v); }
  template <typename T>
  void put(const std::vector<T>& v) { raw(v.data(), v.size() * sizeof(T)); }
  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  std::vector<uint8_t> out;
};

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  template <typename T>
  T get() {
    T v;
    raw(&v, sizeof v);
    return v;
  }
  template <typename T>
  void get(std::vector<T>& v, size_t count) {
    require(count <= (n_ - at_) / sizeof(T), "forest bytes are truncated");
    v.resize(count);
    raw(v.data(), count * sizeof(T));
  }
  void raw(void* dst, size_t n) {
    require(n <= n_ - at_, "forest bytes are truncated");
    std::memcpy(dst, p_ + at_, n);
    at_ += n;
  }
  bool done() const { return at_ == n_; }

 private:
  const uint8_t* p_;
  size_t n_, at_ = 0;
};

}  // namespace

std::vector<uint8_t> save_forest(const CausalForest& f) {
  require(little_endian(), "forest bytes are little-endian; this host is not");
  Writer w;
  w.raw(kMagic, sizeof kMagic);
  w.put(kVersion);
  w.put(f.features), w.put(f.arms), w.put(f.control), w.put(f.rows);
  const ForestOptions& o = f.options;
  w.put(o.trees), w.put(o.mtry), w.put(o.min_node_size), w.put(o.max_depth), w.put(o.bins);
  w.put(o.sample_fraction), w.put(o.honesty_fraction), w.put(o.alpha), w.put(o.seed);
  w.put(static_cast<uint32_t>(f.trees.size()));
  for (const ForestTree& t : f.trees) {
    w.put(static_cast<uint32_t>(t.feature.size()));
    w.put(static_cast<uint32_t>(t.leaf.size() / (static_cast<size_t>(f.arms) * 3)));
    w.put(t.feature), w.put(t.threshold), w.put(t.left), w.put(t.right), w.put(t.leaf);
  }
  return std::move(w.out);
}

std::unique_ptr<CausalForest> load_forest(const uint8_t* bytes, size_t size) {
  require(little_endian(), "forest bytes are little-endian; this host is not");
  Reader r(bytes, size);
  char magic[8];
  r.raw(magic, sizeof magic);
  require(std::memcmp(magic, kMagic, sizeof kMagic) == 0, "not a saco forest (bad magic bytes)");
  const auto version = r.get<uint32_t>();
  require(version == kVersion, "forest format version " + std::to_string(version) + " is not supported (expected " + std::to_string(kVersion) + ")");
  auto f = std::make_unique<CausalForest>();
  f->features = r.get<uint32_t>(), f->arms = r.get<uint32_t>(), f->control = r.get<uint32_t>(), f->rows = r.get<uint32_t>();
  ForestOptions& o = f->options;
  o.trees = r.get<uint32_t>(), o.mtry = r.get<uint32_t>(), o.min_node_size = r.get<uint32_t>(), o.max_depth = r.get<uint32_t>(), o.bins = r.get<uint32_t>();
  o.sample_fraction = r.get<double>(), o.honesty_fraction = r.get<double>(), o.alpha = r.get<double>(), o.seed = r.get<uint64_t>();
  o.threads = 0;
  require(f->features >= 1 && f->features <= 100000 && f->arms >= 2 && f->arms <= 256, "forest header out of range");
  require(o.sample_fraction > 0 && o.sample_fraction <= 1 && o.honesty_fraction > 0 && o.honesty_fraction < 1, "forest options out of range");
  const auto trees = r.get<uint32_t>();
  require(trees == o.trees && trees >= 1 && trees <= 100000, "forest tree count does not match its options");
  f->trees.resize(trees);
  for (ForestTree& t : f->trees) {
    const auto nodes = r.get<uint32_t>();
    const auto leaves = r.get<uint32_t>();
    r.get(t.feature, nodes), r.get(t.threshold, nodes), r.get(t.left, nodes), r.get(t.right, nodes);
    r.get(t.leaf, static_cast<size_t>(leaves) * f->arms * 3);
  }
  require(r.done(), "forest bytes have trailing data");
  validate_forest(*f);
  return f;
}

int64_t forest_add(std::shared_ptr<const CausalForest> forest) { return forests().add(std::move(forest)); }
std::shared_ptr<const CausalForest> forest_get(int64_t id) { return forests().get(id); }
bool forest_remove(int64_t id) { return forests().remove(id); }
size_t forest_count() { return forests().size(); }

}  // namespace saco
