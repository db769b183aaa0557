// libFuzzer target: config.json of a model folder (model/config.h). Input: the file's bytes.
// Checks: parse_model_config either gives a config whose shapes the models can be built with (positive sizes,
// heads dividing the hidden size where the family needs it) or throws rlhf::Error; never another exception.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;  // load_model_config reports invalid JSON itself (tested in test_model)
  fuzz::clear_error_or_abort("fuzz_config", [&] {
    rlhf::ModelConfig c = rlhf::parse_model_config(j, "fuzz/config.json");
    if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 ||
        c.head_dim <= 0 || c.intermediate_size <= 0 || c.num_heads % c.num_kv_heads != 0) {
      std::fprintf(stderr, "fuzz_config: accepted a config the models cannot be built with: %s\n", j.dump().c_str());
      std::abort();
    }
    c.to_json().dump();
  });
  return 0;
}
