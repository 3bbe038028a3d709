#include "bf16.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "layers.h"

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BW__) && defined(__linux__)
#define SACO_AMX 1
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace saco {
namespace {

constexpr int kTileRows = 16;  // rows of A and C per tile; pairs of k-rows per B tile
constexpr int kTileK = 32;     // bf16 values of k per A tile row (64 bytes)
constexpr int kTileN = 16;     // fp32 columns per C tile (64 bytes)
constexpr size_t kTileValues = static_cast<size_t>(kTileRows) * kTileK;  // bf16 values in one B tile

int round_up(int x, int to) { return (x + to - 1) / to * to; }

// inp rounded to bf16 and back, for the reference and the CPUs without AMX
const float* rounded_input(const float* inp, size_t count, Floats& scratch) {
  scratch.resize(count);
  for (size_t i = 0; i < count; ++i) scratch[i] = round_bf16(inp[i]);
  return scratch.data();
}

#if defined(SACO_AMX)
// The tile registers' shapes (palette 1) for a block of m rows: C 0-3 [m x 16 fp32], A 4
// [m x 32 bf16], B 6-7 [16 pairs of k-rows x 16 columns x 2].
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

bool request_tile_state() {
  constexpr long kArchReqXcompPerm = 0x1023;  // arch_prctl: ask for an XSAVE feature's state
  constexpr long kXfeatureTileData = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureTileData) == 0;
}

// Tiles of `rows` rows (A and C; B always 16 pairs): a block of fewer than 16 users computes
// only its own rows. Reloaded only when the row count changes.
void configure_tiles(int rows) {
  thread_local int configured = 0;
  if (configured == rows) return;
  TileConfig cfg;
  for (int t : {0, 1, 2, 3, 4}) cfg.rows[t] = static_cast<uint8_t>(rows), cfg.bytes_per_row[t] = 64;
  for (int t : {6, 7}) cfg.rows[t] = kTileRows, cfg.bytes_per_row[t] = 64;
  _tile_loadconfig(&cfg);
  configured = rows;
}

// a16[m, kp] = bf16(inp rows [r0, r0 + m)), zero past k
void convert_rows(uint16_t* a16, const float* inp, int r0, int m, int k, int kp) {
  const __m512i half = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1);
  for (int r = 0; r < m; ++r) {
    uint16_t* dst = a16 + static_cast<size_t>(r) * kp;
    const float* src = inp + static_cast<size_t>(r0 + r) * k;
    for (int i = 0; i < kp; i += 16) {
      const int left = k - i;
      const auto mask = static_cast<__mmask16>(left >= 16 ? 0xFFFF : left > 0 ? (1u << left) - 1 : 0);
      __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(mask, src + i));
      // round to nearest even: add 0x7FFF plus the lowest kept bit, keep the top 16 bits
      u = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(half, _mm512_and_si512(_mm512_srli_epi32(u, 16), one))), 16);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(u));
    }
  }
}

// The tile intrinsics paste their register number into assembly text, so the tile is a literal
// (a macro argument), not a template parameter. C tile J (columns [c0, c0 + 16) of the block's
// rows) starts at the bias (a stride-0 load repeats its row) or zero; it is stored straight
// into out where all 16 columns exist, else through `scratch`.
#define SACO_START_TILE(J, bias) \
  do {                              \
    if (bias) {                     \
      _tile_loadd(J, bias, 0);      \
    } else {                        \
      _tile_zero(J);                \
    }                               \
  } while (0)
#define SACO_FINISH_TILE(J, out, n, m, width, scratch)                  \
  do {                                                                  \
    if ((width) == kTileN) {                                            \
      _tile_stored(J, out, static_cast<int>((n) * sizeof(float)));      \
    } else {                                                            \
      _tile_stored(J, scratch, kTileN * sizeof(float));                 \
      store_partial(out, n, m, width, scratch);                         \
    }                                                                   \
  } while (0)

void store_partial(float* out, size_t n, int m, int width, const float* scratch) {
  const auto mask = static_cast<__mmask16>((1u << width) - 1);
  for (int r = 0; r < m; ++r) _mm512_mask_storeu_ps(out + r * n, mask, _mm512_load_ps(scratch + r * kTileN));
}

void matmul_amx(float* out, const float* inp, const Bf16Weight& w, const float* b, int rows) {
  const int k = w.k, n = w.n, kp = round_up(k, kTileK), blocks_k = kp / kTileK, blocks_n = round_up(n, kTileN) / kTileN;
  thread_local std::vector<uint16_t, AlignedUninitAllocator<uint16_t>> a16;
  thread_local Floats bias;  // b padded to whole tiles (a partial last tile reads 16 columns)
  alignas(64) float scratch[kTileRows * kTileN];
  a16.resize(static_cast<size_t>(kTileRows) * kp);
  const float* b16 = nullptr;
  if (b) {
    bias.assign(static_cast<size_t>(blocks_n) * kTileN, 0.0f);
    std::copy_n(b, n, bias.data());
    b16 = bias.data();
  }
  const int a_stride = kp * 2;
  for (int r0 = 0; r0 < rows; r0 += kTileRows) {
    const int m = std::min(kTileRows, rows - r0);
    configure_tiles(m);
    convert_rows(a16.data(), inp, r0, m, k, kp);
    for (int cb0 = 0; cb0 < blocks_n; cb0 += 4) {
      const int nc = std::min(4, blocks_n - cb0);
      auto bias_of = [&](int j) { return b16 ? b16 + (cb0 + j) * kTileN : nullptr; };
      SACO_START_TILE(0, bias_of(0));
      if (nc > 1) SACO_START_TILE(1, bias_of(1));
      if (nc > 2) SACO_START_TILE(2, bias_of(2));
      if (nc > 3) SACO_START_TILE(3, bias_of(3));
      for (int kb = 0; kb < blocks_k; ++kb) {
        _tile_loadd(4, a16.data() + static_cast<size_t>(kb) * kTileK, a_stride);
        const uint16_t* bt = w.tiles.data() + (static_cast<size_t>(kb) * blocks_n + cb0) * kTileValues;
        _tile_loadd(6, bt, 64);
        _tile_dpbf16ps(0, 4, 6);
        if (nc > 1) {
          _tile_loadd(7, bt + kTileValues, 64);
          _tile_dpbf16ps(1, 4, 7);
        }
        if (nc > 2) {
          _tile_loadd(6, bt + 2 * kTileValues, 64);
          _tile_dpbf16ps(2, 4, 6);
        }
        if (nc > 3) {
          _tile_loadd(7, bt + 3 * kTileValues, 64);
          _tile_dpbf16ps(3, 4, 7);
        }
      }
      float* o = out + static_cast<size_t>(r0) * n + static_cast<size_t>(cb0) * kTileN;
      auto width = [&](int j) { return std::min(kTileN, n - (cb0 + j) * kTileN); };
      SACO_FINISH_TILE(0, o, n, m, width(0), scratch);
      if (nc > 1) SACO_FINISH_TILE(1, o + kTileN, n, m, width(1), scratch);
      if (nc > 2) SACO_FINISH_TILE(2, o + 2 * kTileN, n, m, width(2), scratch);
      if (nc > 3) SACO_FINISH_TILE(3, o + 3 * kTileN, n, m, width(3), scratch);
    }
  }
}
#undef SACO_START_TILE
#undef SACO_FINISH_TILE
#endif

}  // namespace

Bf16Weight pack_bf16(const float* w, int k, int n) {
  Bf16Weight p;
  p.k = k, p.n = n;
  const int kp = round_up(k, kTileK), blocks_k = kp / kTileK, blocks_n = round_up(n, kTileN) / kTileN;
  p.tiles.assign(static_cast<size_t>(blocks_k) * blocks_n * kTileValues, 0);
  p.rounded.resize(static_cast<size_t>(k) * n);
  for (int i = 0; i < k; ++i) {
    for (int c = 0; c < n; ++c) {
      const uint16_t h = to_bf16(w[static_cast<size_t>(i) * n + c]);
      p.rounded[static_cast<size_t>(i) * n + c] = from_bf16(h);
      // tile (i / 32, c / 16); in it pair-row (i % 32) / 2, column c % 16, member i % 2
      const size_t tile = static_cast<size_t>(i / kTileK) * blocks_n + c / kTileN;
      p.tiles[tile * kTileValues + static_cast<size_t>((i % kTileK) / 2) * kTileK + (c % kTileN) * 2 + i % 2] = h;
    }
  }
  return p;
}

bool amx_available() {
#if defined(SACO_AMX)
  // SACO_AMX=0 keeps the tiles off (the fallback, for comparing the two on one machine)
  static const bool granted = [] {
    const char* off = std::getenv("SACO_AMX");
    return !(off && std::string(off) == "0") && request_tile_state();
  }();
  return granted;
#else
  return false;
#endif
}

void matmul_forward_bf16(float* out, const float* inp, const Bf16Weight& w, const float* b, int rows) {
#if defined(SACO_AMX)
  if (amx_available()) return matmul_amx(out, inp, w, b, rows);
#endif
  thread_local Floats scratch;
  matmul_forward(out, rounded_input(inp, static_cast<size_t>(rows) * w.k, scratch), w.rounded.data(), b, rows, w.k, w.n);
}

void matmul_forward_bf16_ref(float* out, const float* inp, const Bf16Weight& w, const float* b, int rows) {
  Floats scratch;
  matmul_forward_ref(out, rounded_input(inp, static_cast<size_t>(rows) * w.k, scratch), w.rounded.data(), b, rows, w.k, w.n);
}

}  // namespace saco
