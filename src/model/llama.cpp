// Llama, Qwen2 and Qwen3 (one body, switched by config flags).
//
//   x = embed[ids]
//   per layer: h = RMSNorm(x)
//              q, k, v = h·Wq^T (+bq), h·Wk^T (+bk), h·Wv^T (+bv)        (B,H,T,D), (B,Hkv,T,D)
//              qwen3: q, k = RMSNorm_q(q), RMSNorm_k(k) over D
//              q, k = RoPE(q, pos), RoPE(k, pos);  x += Wo · attention(q, k, v)
//              x += W_down · (silu(h2·W_gate^T) ⊙ (h2·W_up^T)),  h2 = RMSNorm(x)
//   hidden = RMSNorm(x)
#include "model/llama.h"

#include "model/decode_kernels.h"

namespace rlhf {

namespace {

struct LlamaLayer {
  torch::Tensor in_norm, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, q_norm, k_norm;
  torch::Tensor post_norm, gate_w, up_w, down_w, gate_b, up_b, down_b;
};

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return linear_nk(x, w, b);
}

class Llama : public TransformerLM {
 public:
  explicit Llama(ModelConfig cfg) : TransformerLM(std::move(cfg)) {
    const auto& c = config_;
    const int64_t C = c.hidden_size, D = c.head_dim, H = c.num_heads, Hkv = c.num_kv_heads, F = c.intermediate_size;
    // Qwen2 has q/k/v biases but none on o_proj; Llama's attention_bias covers all four.
    const bool qkv_bias = c.attention_bias;
    const bool o_bias = c.attention_bias && c.family == "llama";
    embed_ = register_parameter("embed", torch::empty({c.vocab_size, C}));
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string p = "l" + std::to_string(i) + "_";
      LlamaLayer L;
      L.in_norm = register_parameter(p + "in_norm", torch::ones({C}));
      L.q_w = register_parameter(p + "q_w", torch::empty({H * D, C}));
      L.k_w = register_parameter(p + "k_w", torch::empty({Hkv * D, C}));
      L.v_w = register_parameter(p + "v_w", torch::empty({Hkv * D, C}));
      L.o_w = register_parameter(p + "o_w", torch::empty({C, H * D}));
      if (qkv_bias) {
        L.q_b = register_parameter(p + "q_b", torch::zeros({H * D}));
        L.k_b = register_parameter(p + "k_b", torch::zeros({Hkv * D}));
        L.v_b = register_parameter(p + "v_b", torch::zeros({Hkv * D}));
      }
      if (o_bias) L.o_b = register_parameter(p + "o_b", torch::zeros({C}));
      if (c.qk_norm) {
        L.q_norm = register_parameter(p + "q_norm", torch::ones({D}));
        L.k_norm = register_parameter(p + "k_norm", torch::ones({D}));
      }
      L.post_norm = register_parameter(p + "post_norm", torch::ones({C}));
      L.gate_w = register_parameter(p + "gate_w", torch::empty({F, C}));
      L.up_w = register_parameter(p + "up_w", torch::empty({F, C}));
      L.down_w = register_parameter(p + "down_w", torch::empty({C, F}));
      if (c.mlp_bias) {
        L.gate_b = register_parameter(p + "gate_b", torch::zeros({F}));
        L.up_b = register_parameter(p + "up_b", torch::zeros({F}));
        L.down_b = register_parameter(p + "down_b", torch::zeros({C}));
      }
      layers_.push_back(L);
    }
    norm_ = register_parameter("norm", torch::ones({C}));
    init_heads();
  }

  torch::Tensor token_embedding() override { return embed_; }

  // Sites per layer, in this order (site id = 7·layer + j): self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj.
  static constexpr int64_t kSitesPerLayer = 7;
  std::vector<LinearSite> linear_sites() override {
    std::vector<LinearSite> s;
    auto add = [&](const std::string& module, const torch::Tensor& w) {
      s.push_back({module, w, /*fan_in_fan_out=*/false, w.size(1), w.size(0)});
    };
    for (size_t i = 0; i < layers_.size(); ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      const auto& L = layers_[i];
      add(p + "self_attn.q_proj", L.q_w);
      add(p + "self_attn.k_proj", L.k_w);
      add(p + "self_attn.v_proj", L.v_w);
      add(p + "self_attn.o_proj", L.o_w);
      add(p + "mlp.gate_proj", L.gate_w);
      add(p + "mlp.up_proj", L.up_w);
      add(p + "mlp.down_proj", L.down_w);
    }
    return s;
  }

  std::vector<NamedWeight> body_weights() override {
    std::vector<NamedWeight> w = {{"model.embed_tokens.weight", embed_}};
    auto add = [&](const std::string& name, const torch::Tensor& t) {
      if (t.defined()) w.push_back({name, t});
    };
    for (size_t i = 0; i < layers_.size(); ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      const auto& L = layers_[i];
      add(p + "input_layernorm.weight", L.in_norm);
      add(p + "self_attn.q_proj.weight", L.q_w);
      add(p + "self_attn.q_proj.bias", L.q_b);
      add(p + "self_attn.k_proj.weight", L.k_w);
      add(p + "self_attn.k_proj.bias", L.k_b);
      add(p + "self_attn.v_proj.weight", L.v_w);
      add(p + "self_attn.v_proj.bias", L.v_b);
      add(p + "self_attn.o_proj.weight", L.o_w);
      add(p + "self_attn.o_proj.bias", L.o_b);
      add(p + "self_attn.q_norm.weight", L.q_norm);
      add(p + "self_attn.k_norm.weight", L.k_norm);
      add(p + "post_attention_layernorm.weight", L.post_norm);
      add(p + "mlp.gate_proj.weight", L.gate_w);
      add(p + "mlp.gate_proj.bias", L.gate_b);
      add(p + "mlp.up_proj.weight", L.up_w);
      add(p + "mlp.up_proj.bias", L.up_b);
      add(p + "mlp.down_proj.weight", L.down_w);
      add(p + "mlp.down_proj.bias", L.down_b);
    }
    w.push_back({"model.norm.weight", norm_});
    return w;
  }

  torch::Tensor body(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                     const torch::Tensor& position_ids, KVCache* cache) override {
    const auto& c = config_;
    const int64_t B = input_ids.size(0), T = input_ids.size(1);
    const int64_t H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
    auto x = computed(torch::embedding(embed_, input_ids));  // (B, T, C)
    auto bias = attention_bias(attention_mask, T, x.scalar_type());
    auto [cos, sin] = rope_cos_sin(c, position_ids, x.scalar_type());
    for (size_t l = 0; l < layers_.size(); ++l) {
      const int64_t site = kSitesPerLayer * static_cast<int64_t>(l);
      // By value: with gradient checkpointing this runs again in backward, after body() has returned.
      auto block = [this, l, site, B, T, H, Hkv, D, bias, cos, sin, cache](const torch::Tensor& x_in) {
        const auto& c = config_;
        const auto& L = layers_[l];
        auto proj = [&](int64_t j, const torch::Tensor& in, const torch::Tensor& w, const torch::Tensor& b) {
          return add_delta(site + j, in, linear(in, w, b));
        };
        auto h = rms_norm(x_in, L.in_norm, c.norm_eps);
        auto q = proj(0, h, L.q_w, L.q_b).view({B, T, H, D});
        auto k = proj(1, h, L.k_w, L.k_b).view({B, T, Hkv, D});
        auto v = proj(2, h, L.v_w, L.v_b).view({B, T, Hkv, D}).transpose(1, 2);
        if (c.qk_norm) {
          q = rms_norm(q, L.q_norm, c.norm_eps);
          k = rms_norm(k, L.k_norm, c.norm_eps);
        }
        q = rope_apply(q.transpose(1, 2), cos, sin);  // (B, H, T, D)
        k = rope_apply(k.transpose(1, 2), cos, sin);  // (B, Hkv, T, D)
        auto kv = kv_cache_append(cache, static_cast<int64_t>(l), k, v);
        auto a = attention(q, kv.first, kv.second, bias);  // (B, T, H·D)
        auto x = x_in + proj(3, a, L.o_w, L.o_b);
        h = rms_norm(x, L.post_norm, c.norm_eps);
        auto g = activation(proj(4, h, L.gate_w, L.gate_b), c.activation) * proj(5, h, L.up_w, L.up_b);
        return x + proj(6, g, L.down_w, L.down_b);
      };
      const auto& L = layers_[l];
      x = run_block(x, cache,
                    {L.in_norm, L.q_w, L.q_b, L.k_w, L.k_b, L.v_w, L.v_b, L.o_w, L.o_b, L.q_norm, L.k_norm, L.post_norm,
                     L.gate_w, L.up_w, L.down_w, L.gate_b, L.up_b, L.down_b},
                    site, site + kSitesPerLayer, block);
    }
    if (cache) cache->length += T;
    return rms_norm(x, norm_, c.norm_eps);
  }

 private:
  torch::Tensor embed_, norm_;
  std::vector<LlamaLayer> layers_;
};

}  // namespace

std::shared_ptr<TransformerLM> create_llama(const ModelConfig& config) { return std::make_shared<Llama>(config); }

}  // namespace rlhf
