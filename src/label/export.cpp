// Rankings from the store to training JSONL; the formats are described in export.h.
#include "label/export.h"

#include <cstdio>
#include <fstream>
#include <map>

namespace rlhf::label {

using nlohmann::json;

ExportFormat parse_export_format(const std::string& name) {
  if (name == "rankings") return ExportFormat::rankings;
  if (name == "pairs") return ExportFormat::pairs;
  fail("unknown export format \"", name, "\": allowed are rankings, pairs");
}

std::vector<json> export_lines(Store& store, ExportFormat format) {
  std::map<int64_t, Item> items;
  for (auto& it : store.items()) items.emplace(it.id, std::move(it));
  std::vector<json> out;
  for (const auto& r : store.rankings()) {
    if (r.skipped) continue;
    const Item& item = items.at(r.item_id);
    // Responses in stored (generation) order; index_of maps a candidate id to its index there.
    std::vector<std::string> responses;
    std::map<int64_t, size_t> index_of;
    for (const auto& c : item.candidates) {
      index_of[c.id] = responses.size();
      responses.push_back(c.text);
    }
    if (format == ExportFormat::rankings) {
      json line{{"prompt", item.prompt}, {"responses", responses}};
      bool ties = false;
      for (const auto& g : r.ordering) ties = ties || g.size() > 1;
      if (ties) {
        std::vector<int> ranks(responses.size(), 0);
        for (size_t g = 0; g < r.ordering.size(); ++g)
          for (int64_t id : r.ordering[g]) ranks[index_of.at(id)] = static_cast<int>(g) + 1;
        line["ranks"] = ranks;
      } else {
        std::vector<size_t> ranking;
        for (const auto& g : r.ordering) ranking.push_back(index_of.at(g[0]));
        line["ranking"] = ranking;
      }
      line["item_id"] = r.item_id;
      line["annotator"] = r.annotator;
      line["flags"] = r.flags;
      out.push_back(std::move(line));
    } else {
      for (size_t a = 0; a < r.ordering.size(); ++a)
        for (size_t b = a + 1; b < r.ordering.size(); ++b)
          for (int64_t w : r.ordering[a])
            for (int64_t l : r.ordering[b])
              out.push_back(json{{"prompt", item.prompt},
                                 {"chosen", responses[index_of.at(w)]},
                                 {"rejected", responses[index_of.at(l)]},
                                 {"item_id", r.item_id},
                                 {"annotator", r.annotator}});
    }
  }
  return out;
}

size_t export_jsonl(Store& store, ExportFormat format, const std::string& path) {
  auto lines = export_lines(store, format);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    RLHF_CHECK(out, "cannot write ", tmp, " (hint: does the folder exist?)");
    for (const auto& line : lines) out << line.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';  // invalid UTF-8 -> U+FFFD
    out.flush();
    RLHF_CHECK(out, "error while writing ", tmp, " (disk full?)");
  }
  RLHF_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename ", tmp, " to ", path);
  return lines.size();
}

}  // namespace rlhf::label
