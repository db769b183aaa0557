// The CPU fast paths of decoding (src/kernels, src/model/decode_kernels.h, the exact sampler in sampling.h) against
// their slow references and libtorch: few-row matmuls against a double-precision loop and torch::addmm/linear,
// decode attention against a double loop and layers.h attention_reference(), the sampler against
// torch::multinomial bit for bit (indices and the generator's state afterwards), and whole generations of the
// transformers fixtures with the fast paths on and off (same tokens).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>

#include "common/worker_pool.h"
#include "kernels/decode_attention.h"
#include "kernels/rows_gemm.h"
#include "model/decode_kernels.h"
#include "model/generate.h"
#include "model/layers.h"
#include "model/model.h"
#include "model/sampling.h"
#include "test_util.h"

using namespace rlhf;
namespace k = rlhf::kernels;

namespace {

std::vector<float> uniform(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// The instruction sets this CPU runs, each kernel set called directly (the dispatcher picks only the best).
struct Isa {
  const char* name;
  void (*gemm)(const k::RowsGemm&, int64_t, int64_t);
  void (*attention)(const k::DecodeAttention&, int64_t, int64_t);
};
std::vector<Isa> isas() {
  std::vector<Isa> v = {{"baseline", k::baseline::rows_gemm, k::baseline::decode_attention}};
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    v.push_back({"avx2", k::avx2::rows_gemm, k::avx2::decode_attention});
  if (__builtin_cpu_supports("avx512f")) v.push_back({"avx512", k::avx512::rows_gemm, k::avx512::decode_attention});
#endif
  return v;
}

struct Guard {  // restores the fast-kernel switch
  bool old = fast_cpu_kernels();
  ~Guard() { set_fast_cpu_kernels(old); }
};

}  // namespace

TEST(RowsGemm, EveryIsaMatchesTheDoubleLoop) {
  for (const auto& isa : isas()) {
    for (auto layout : {k::Layout::kn, k::Layout::nk}) {
      for (int64_t M : {1, 3, 4, 5, 8, 9, 17, 32}) {
        for (int64_t K : {1, 16, 37, 256}) {
          for (int64_t N : {1, 5, 16, 33, 64, 100, 257}) {
            for (bool bias : {false, true}) {
              auto x = uniform(M * K, 1), w = uniform(K * N, 2), b = uniform(N, 3);
              std::vector<float> y(M * N, NAN), ref(M * N, NAN);
              k::RowsGemm g{x.data(), M, K, K, w.data(), N, bias ? b.data() : nullptr, y.data(), N, layout};
              isa.gemm(g, 0, N);
              g.y = ref.data();
              k::rows_gemm_reference(g, 0, N);
              double worst = 0;
              for (int64_t i = 0; i < M * N; ++i) worst = std::max(worst, double(std::abs(y[i] - ref[i])));
              // float32 sums of K products of magnitude <= 1: error well under K · 2^-23
              EXPECT_LT(worst, 1e-6 * (K + 1)) << isa.name << (layout == k::Layout::kn ? " kn" : " nk") << " M" << M
                                               << " K" << K << " N" << N << " bias " << bias;
            }
          }
        }
      }
    }
  }
}

TEST(RowsGemm, ColumnSplitsGiveTheSameBits) {
  // Threads get column ranges in multiples of 64 (decode_kernels.cpp): every split of that kind must give each
  // y[m, n] the same bits (the same path and summation order), so the thread count cannot change results.
  for (auto layout : {k::Layout::kn, k::Layout::nk}) {
    const int64_t M = 8, K = 100, N = 300;
    auto x = uniform(M * K, 4), w = uniform(K * N, 5), b = uniform(N, 6);
    std::vector<float> whole(M * N), parts(M * N);
    k::RowsGemm g{x.data(), M, K, K, w.data(), N, b.data(), whole.data(), N, layout};
    k::rows_gemm(g, 0, N);
    g.y = parts.data();
    const int64_t cuts[] = {0, 64, 128, 192, 256, N};
    for (size_t i = 0; i + 1 < std::size(cuts); ++i) k::rows_gemm(g, cuts[i], cuts[i + 1]);
    int64_t first_diff = -1;
    for (int64_t i = 0; i < M * N && first_diff < 0; ++i)
      if (std::memcmp(&whole[i], &parts[i], sizeof(float)) != 0) first_diff = i;
    EXPECT_EQ(first_diff, -1) << (layout == k::Layout::kn ? "kn" : "nk") << ": row " << first_diff / N << " column "
                              << first_diff % N;
  }
}

TEST(DecodeKernels, LinearMatchesTorch) {
  Guard guard;
  torch::manual_seed(0);
  auto x = torch::randn({8, 1, 96});
  auto w_kn = torch::randn({96, 200}), w_nk = torch::randn({200, 96}), b = torch::randn({200});
  torch::Tensor fast_kn, fast_nk;
  {
    torch::NoGradGuard ng;
    fast_kn = linear_kn(x, w_kn, b);
    fast_nk = linear_nk(x, w_nk, {});
  }
  auto ref_kn = torch::addmm(b, x.reshape({8, 96}), w_kn).view({8, 1, 200});
  auto ref_nk = torch::matmul(x, w_nk.t());
  EXPECT_EQ(fast_kn.sizes(), ref_kn.sizes());
  EXPECT_TRUE(torch::allclose(fast_kn, ref_kn, 1e-5, 1e-4));
  EXPECT_TRUE(torch::allclose(fast_nk, ref_nk, 1e-5, 1e-4));
  // With autograd the kernels step aside: the result has a gradient function.
  auto wg = w_nk.clone().requires_grad_();
  EXPECT_TRUE(linear_nk(x, wg, {}).requires_grad());
  // And the switch turns them off.
  set_fast_cpu_kernels(false);
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(linear_kn(x, w_kn, b), ref_kn));
}

TEST(WorkerPool, RunsEveryIndexOnceAndSplitsDoNotChangeBits) {
  auto& pool = WorkerPool::get();
  const int old = pool.size();
  pool.resize(3);
  ASSERT_EQ(pool.size(), 3);
  std::vector<std::atomic<int>> hits(3);
  for (int rep = 0; rep < 2000; ++rep) {
    const int n = 1 + rep % 3;
    pool.run(n, [&](int i) { hits[i].fetch_add(1); });
  }
  EXPECT_EQ(hits[0].load(), 2000);
  EXPECT_EQ(hits[1].load(), 1333);  // n >= 2 in 2 of every 3 reps
  EXPECT_EQ(hits[2].load(), 666);
  // Two threads at once: each job still runs every part exactly once (the second runs its parts itself).
  std::atomic<int> a{0}, b{0};
  std::thread other([&] {
    for (int rep = 0; rep < 2000; ++rep) pool.run(3, [&](int) { a.fetch_add(1); });
  });
  for (int rep = 0; rep < 2000; ++rep) pool.run(3, [&](int) { b.fetch_add(1); });
  other.join();
  EXPECT_EQ(a.load(), 6000);
  EXPECT_EQ(b.load(), 6000);
  // A product large enough to be split: the same bits on 1 thread and on 3.
  torch::NoGradGuard ng;
  torch::manual_seed(3);
  auto x = torch::randn({8, 512}), w = torch::randn({1000, 512}), wkn = torch::randn({512, 1000});
  auto split_nk = linear_nk(x, w, {}), split_kn = linear_kn(x, wkn, {});
  pool.resize(1);
  EXPECT_TRUE(torch::equal(split_nk, linear_nk(x, w, {})));
  EXPECT_TRUE(torch::equal(split_kn, linear_kn(x, wkn, {})));
  pool.resize(old);
}

TEST(DecodeKernels, AttentionMatchesReferences) {
  torch::NoGradGuard ng;
  torch::manual_seed(1);
  for (int64_t D : {64, 20}) {
    for (int64_t S : {1, 17, 40}) {
      const int64_t B = 3, H = 8, Hkv = 2, cap = 48;
      auto q = torch::randn({B, H, 1, D});
      // Views of a larger cache, as kv_cache_append returns them.
      auto kc = torch::randn({B, Hkv, cap, D}), vc = torch::randn({B, Hkv, cap, D});
      auto kk = kc.narrow(2, 0, S), vv = vc.narrow(2, 0, S);
      auto mask = torch::ones({B, S}, torch::kInt64);
      if (S > 3) mask[1].narrow(0, 0, 3).fill_(0);  // left padding on row 1
      auto bias = attention_bias(mask, 1, torch::kFloat32);
      auto fast = decode_attention(q, kk, vv, bias);
      ASSERT_TRUE(fast.defined());
      auto ref = attention_reference(q, kk, vv, bias);
      EXPECT_LT((fast - ref).abs().max().item<double>(), 1e-5) << "D" << D << " S" << S;
      for (const auto& isa : isas()) {
        auto out = torch::empty({B, H * D}), dbl = torch::empty({B, H * D}), scratch = torch::empty({B, S});
        k::DecodeAttention a{q.data_ptr<float>(),    q.stride(0),  q.stride(1),  kk.data_ptr<float>(),
                             kk.stride(0),           kk.stride(1), kk.stride(2), vv.data_ptr<float>(),
                             vv.stride(0),           vv.stride(1), vv.stride(2), bias.data_ptr<float>(),
                             bias.stride(0),         out.data_ptr<float>(),      scratch.data_ptr<float>(),
                             B, H, Hkv, S, D};
        isa.attention(a, 0, B);
        a.out = dbl.data_ptr<float>();
        k::decode_attention_reference(a, 0, B);
        EXPECT_LT((out - dbl).abs().max().item<double>(), 2e-6) << isa.name << " D" << D << " S" << S;
      }
    }
  }
}

TEST(Sampler, MultinomialIsTorchsBitForBit) {
#if TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR == 13
  ASSERT_TRUE(multinomial_one_has_replica());  // else this test would compare torch::multinomial with itself
#endif
  torch::manual_seed(2);
  std::vector<torch::Tensor> dists;
  for (double temp : {0.3, 0.7, 1.0, 3.0}) dists.push_back((torch::randn({8, 1000}) * 3 / temp).softmax(-1));
  auto peaked = torch::full({4, 300}, -30.0);
  peaked.select(1, 7).fill_(0.0);
  dists.push_back(peaked.softmax(-1));  // nearly one-hot
  auto topk = torch::randn({5, 64});
  topk.masked_fill_(topk < 0.5, -INFINITY);  // zeros, as top-k / top-p leave them
  dists.push_back(topk.softmax(-1));
  for (size_t i = 0; i < dists.size(); ++i) {
    auto g1 = at::detail::createCPUGenerator(40 + i), g2 = at::detail::createCPUGenerator(40 + i);
    for (int rep = 0; rep < 50; ++rep) {
      auto ours = multinomial_one(dists[i], g1);
      auto theirs = torch::multinomial(dists[i], 1, /*replacement=*/false, g2).squeeze(-1);
      ASSERT_TRUE(torch::equal(ours, theirs)) << "distribution " << i << " draw " << rep;
    }
    // The generators were advanced alike.
    EXPECT_TRUE(torch::equal(torch::rand({4}, g1), torch::rand({4}, g2))) << "distribution " << i;
  }
  // A row torch rejects is rejected with torch's error.
  auto bad = torch::full({1, 10}, 0.1);
  bad[0][3] = -1.0;
  auto g = at::detail::createCPUGenerator(0);
  EXPECT_THROW(multinomial_one(bad, g), c10::Error);
}

TEST(DecodeKernels, GenerationGivesTheSameTokensWithAndWithoutThem) {
  Guard guard;
  for (const char* name : {"gpt2-tiny", "llama-tiny", "qwen3-tiny-sharded"}) {
    auto model = load_model(test::data(std::string("models/") + name));
    auto [ids, mask] = left_pad({{5, 17, 99, 3, 250, 8}, {42, 7}, {300, 301, 302, 9}, {11}}, 0);
    SamplingOptions s;
    s.temperature = 0.7f;
    s.max_new_tokens = 24;
    GenerateOutput out[2];
    for (bool fast : {true, false}) {
      set_fast_cpu_kernels(fast);
      auto gen = at::detail::createCPUGenerator(7);
      out[fast] = generate(*model, ids, mask, s, model->config().eos_token_ids, 0, gen);
    }
    EXPECT_TRUE(torch::equal(out[0].output_ids, out[1].output_ids)) << name;
    EXPECT_TRUE(torch::equal(out[0].attention_mask, out[1].attention_mask)) << name;
    EXPECT_LT((out[0].logprobs - out[1].logprobs).abs().max().item<double>(), 1e-5) << name;
  }
}
