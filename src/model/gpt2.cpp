// GPT-2 (GPT2LMHeadModel / GPT2ForSequenceClassification).
//
//   x = wte[ids] + wpe[pos]
//   per layer: x += c_proj(attn(ln_1(x)));  x += mlp_c_proj(gelu_new(c_fc(ln_2(x))))
//   hidden = ln_f(x)
// Conv1D weights are stored (in, out): y = x·W + b, kept in that layout (no transpose on load or save).
#include "model/gpt2.h"

#include <cmath>

#include "model/decode_kernels.h"

namespace rlhf {

namespace {

struct Gpt2Layer {
  torch::Tensor ln_1_w, ln_1_b, c_attn_w, c_attn_b, c_proj_w, c_proj_b;
  torch::Tensor ln_2_w, ln_2_b, c_fc_w, c_fc_b, mlp_proj_w, mlp_proj_b;
};

class Gpt2 : public TransformerLM {
 public:
  explicit Gpt2(ModelConfig cfg) : TransformerLM(std::move(cfg)) {
    const auto& c = config_;
    const int64_t C = c.hidden_size, F = c.intermediate_size;
    wte_ = register_parameter("wte", torch::empty({c.vocab_size, C}));
    wpe_ = register_parameter("wpe", torch::empty({c.max_position, C}));
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string p = "h" + std::to_string(i) + "_";
      Gpt2Layer L;
      L.ln_1_w = register_parameter(p + "ln_1_w", torch::ones({C}));
      L.ln_1_b = register_parameter(p + "ln_1_b", torch::zeros({C}));
      L.c_attn_w = register_parameter(p + "c_attn_w", torch::empty({C, 3 * C}));
      L.c_attn_b = register_parameter(p + "c_attn_b", torch::zeros({3 * C}));
      L.c_proj_w = register_parameter(p + "c_proj_w", torch::empty({C, C}));
      L.c_proj_b = register_parameter(p + "c_proj_b", torch::zeros({C}));
      L.ln_2_w = register_parameter(p + "ln_2_w", torch::ones({C}));
      L.ln_2_b = register_parameter(p + "ln_2_b", torch::zeros({C}));
      L.c_fc_w = register_parameter(p + "c_fc_w", torch::empty({C, F}));
      L.c_fc_b = register_parameter(p + "c_fc_b", torch::zeros({F}));
      L.mlp_proj_w = register_parameter(p + "mlp_proj_w", torch::empty({F, C}));
      L.mlp_proj_b = register_parameter(p + "mlp_proj_b", torch::zeros({C}));
      layers_.push_back(L);
    }
    ln_f_w_ = register_parameter("ln_f_w", torch::ones({C}));
    ln_f_b_ = register_parameter("ln_f_b", torch::zeros({C}));
    init_heads();
  }

  torch::Tensor token_embedding() override { return wte_; }

  // Sites per layer, in this order (site id = 4·layer + j): attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj.
  static constexpr int64_t kSitesPerLayer = 4;
  std::vector<LinearSite> linear_sites() override {
    std::vector<LinearSite> s;
    auto add = [&](const std::string& module, const torch::Tensor& w) {
      s.push_back({module, w, /*fan_in_fan_out=*/true, w.size(0), w.size(1)});
    };
    for (size_t i = 0; i < layers_.size(); ++i) {
      const std::string p = "transformer.h." + std::to_string(i) + ".";
      const auto& L = layers_[i];
      add(p + "attn.c_attn", L.c_attn_w);
      add(p + "attn.c_proj", L.c_proj_w);
      add(p + "mlp.c_fc", L.c_fc_w);
      add(p + "mlp.c_proj", L.mlp_proj_w);
    }
    return s;
  }

  std::vector<NamedWeight> body_weights() override {
    std::vector<NamedWeight> w = {{"transformer.wte.weight", wte_}, {"transformer.wpe.weight", wpe_}};
    for (size_t i = 0; i < layers_.size(); ++i) {
      const std::string p = "transformer.h." + std::to_string(i) + ".";
      const auto& L = layers_[i];
      w.push_back({p + "ln_1.weight", L.ln_1_w});
      w.push_back({p + "ln_1.bias", L.ln_1_b});
      w.push_back({p + "attn.c_attn.weight", L.c_attn_w});
      w.push_back({p + "attn.c_attn.bias", L.c_attn_b});
      w.push_back({p + "attn.c_proj.weight", L.c_proj_w});
      w.push_back({p + "attn.c_proj.bias", L.c_proj_b});
      w.push_back({p + "ln_2.weight", L.ln_2_w});
      w.push_back({p + "ln_2.bias", L.ln_2_b});
      w.push_back({p + "mlp.c_fc.weight", L.c_fc_w});
      w.push_back({p + "mlp.c_fc.bias", L.c_fc_b});
      w.push_back({p + "mlp.c_proj.weight", L.mlp_proj_w});
      w.push_back({p + "mlp.c_proj.bias", L.mlp_proj_b});
    }
    w.push_back({"transformer.ln_f.weight", ln_f_w_});
    w.push_back({"transformer.ln_f.bias", ln_f_b_});
    return w;
  }

  torch::Tensor body(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                     const torch::Tensor& position_ids, KVCache* cache) override {
    const auto& c = config_;
    const int64_t B = input_ids.size(0), T = input_ids.size(1), H = c.num_heads, D = c.head_dim, C = c.hidden_size;
    TORCH_CHECK(position_ids.max().item<int64_t>() < c.max_position, "position id beyond n_positions (",
                c.max_position, "): the sequence is longer than GPT-2's position table");
    auto x = computed(torch::embedding(wte_, input_ids)) + computed(torch::embedding(wpe_, position_ids));  // (B, T, C)
    auto bias = attention_bias(attention_mask, T, x.scalar_type());                     // (B, 1, T, S)
    for (size_t l = 0; l < layers_.size(); ++l) {
      const int64_t site = kSitesPerLayer * static_cast<int64_t>(l);
      // By value: with gradient checkpointing this runs again in backward, after body() has returned.
      auto block = [this, l, site, B, T, H, D, C, bias, cache](const torch::Tensor& x_in) {
        const auto& c = config_;
        const auto& L = layers_[l];
        auto proj = [&](int64_t j, const torch::Tensor& in, const torch::Tensor& w, const torch::Tensor& b) {
          return add_delta(site + j, in, linear_kn(in, w, b));
        };
        auto h = torch::layer_norm(x_in, {C}, computed(L.ln_1_w), computed(L.ln_1_b), c.norm_eps);
        auto qkv = proj(0, h, L.c_attn_w, L.c_attn_b).view({B, T, 3, H, D});
        auto q = qkv.select(2, 0).transpose(1, 2);  // (B, H, T, D)
        auto k = qkv.select(2, 1).transpose(1, 2);
        auto v = qkv.select(2, 2).transpose(1, 2);
        auto kv = kv_cache_append(cache, static_cast<int64_t>(l), k, v);
        auto a = attention(q, kv.first, kv.second, bias);  // (B, T, C)
        auto x = x_in + proj(1, a, L.c_proj_w, L.c_proj_b);
        h = torch::layer_norm(x, {C}, computed(L.ln_2_w), computed(L.ln_2_b), c.norm_eps);
        auto f = activation(proj(2, h, L.c_fc_w, L.c_fc_b), c.activation);
        return x + proj(3, f, L.mlp_proj_w, L.mlp_proj_b);
      };
      const auto& L = layers_[l];
      x = run_block(x, cache,
                    {L.ln_1_w, L.ln_1_b, L.c_attn_w, L.c_attn_b, L.c_proj_w, L.c_proj_b, L.ln_2_w, L.ln_2_b, L.c_fc_w,
                     L.c_fc_b, L.mlp_proj_w, L.mlp_proj_b},
                    site, site + kSitesPerLayer, block);
    }
    if (cache) cache->length += T;
    return torch::layer_norm(x, {C}, computed(ln_f_w_), computed(ln_f_b_), c.norm_eps);
  }

 private:
  torch::Tensor wte_, wpe_, ln_f_w_, ln_f_b_;
  std::vector<Gpt2Layer> layers_;
};

}  // namespace

std::shared_ptr<TransformerLM> create_gpt2(const ModelConfig& config) { return std::make_shared<Gpt2>(config); }

}  // namespace rlhf
