#include "tokenizer/post_processor.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "common/error.h"

namespace rlhf::tok {

namespace {

struct TemplatePiece {
  bool is_sequence;
  std::vector<int32_t> ids;  // special token ids (when !is_sequence)
};

std::vector<TemplatePiece> parse_template(const nlohmann::json& single, const nlohmann::json& specials,
                                          const std::string& where) {
  std::vector<TemplatePiece> out;
  for (size_t k = 0; k < single.size(); ++k) {
    const auto& item = single[k];
    if (item.contains("Sequence")) {
      std::string which = item["Sequence"].value("id", std::string("A"));
      RLHF_CHECK(which == "A", where, ".single[", k, "]: the single template can only use sequence A, got ", which);
      out.push_back({true, {}});
    } else {
      RLHF_CHECK(item.contains("SpecialToken"), where, ".single[", k, "]: expected Sequence or SpecialToken");
      std::string name = item["SpecialToken"].at("id").get<std::string>();
      RLHF_CHECK(specials.contains(name), where, ".special_tokens: missing \"", name, "\" used by the template");
      out.push_back({false, specials[name].at("ids").get<std::vector<int32_t>>()});
    }
  }
  return out;
}

}  // namespace

PostProcessor post_processor_from_json(const nlohmann::json& j, const std::string& where,
                                       std::function<std::string(int32_t)> id_to_token) {
  if (j.is_null()) return {};
  RLHF_CHECK(j.is_object() && j.contains("type"), where, ": expected an object with a \"type\"");
  std::string type = j["type"].get<std::string>();
  if (type == "TemplateProcessing") {
    auto pieces = parse_template(j.at("single"), j.value("special_tokens", nlohmann::json::object()), where);
    return [pieces](Encoding& enc, bool add_special_tokens) {
      if (!add_special_tokens) return;
      Encoding out;
      for (const auto& p : pieces) {
        if (p.is_sequence) {
          out.ids.insert(out.ids.end(), enc.ids.begin(), enc.ids.end());
          out.offsets.insert(out.offsets.end(), enc.offsets.begin(), enc.offsets.end());
        } else {
          out.ids.insert(out.ids.end(), p.ids.begin(), p.ids.end());
          out.offsets.insert(out.offsets.end(), p.ids.size(), {0, 0});
        }
      }
      enc = std::move(out);
    };
  }
  if (type == "ByteLevel") {
    bool trim = j.value("trim_offsets", true), add_prefix_space = j.value("add_prefix_space", true);
    if (!trim) return [](Encoding&, bool) {};
    return [id_to_token, add_prefix_space](Encoding& enc, bool) {
      static const std::string kSpace = "\xC4\xA0";  // 'Ġ', the ByteLevel image of ' '
      for (size_t k = 0; k < enc.ids.size(); ++k) {
        std::string t = id_to_token(enc.ids[k]);
        size_t lead = 0, trail = 0;
        while ((lead + 1) * 2 <= t.size() && t.compare(lead * 2, 2, kSpace) == 0) ++lead;
        while ((trail + 1) * 2 <= t.size() && t.compare(t.size() - (trail + 1) * 2, 2, kSpace) == 0) ++trail;
        auto& [b, e] = enc.offsets[k];
        if (lead > 0) {
          bool first = k == 0 || b == 0;
          if (first && add_prefix_space && lead == 1) lead = 0;  // keep the space the pre-tokenizer added
          b = std::min(b + lead, e);
        }
        if (trail > 0 && e >= trail) e = std::max(e - trail, b);
      }
    };
  }
  if (type == "Sequence") {
    std::vector<PostProcessor> steps;
    const auto& list = j.at("processors");
    for (size_t k = 0; k < list.size(); ++k) {
      PostProcessor p = post_processor_from_json(list[k], cat(where, ".processors[", k, "]"), id_to_token);
      if (p) steps.push_back(std::move(p));
    }
    return [steps](Encoding& enc, bool add_special_tokens) {
      for (const auto& p : steps) p(enc, add_special_tokens);
    };
  }
  fail(where, ": unsupported post_processor type \"", type,
       "\" (supported: TemplateProcessing, ByteLevel, Sequence)");
}

}  // namespace rlhf::tok
