// `rlhf label export`: the stored rankings as the JSONL that `rlhf reward` and `rlhf dpo` read. Skipped items are
// left out; each (item, annotator) ranking is one line.
//
//   rankings: {"prompt": str, "responses": [str, ...], "ranking": [i0, i1, ...]}  indices into responses, best first;
//             with ties instead {"prompt", "responses", "ranks": [1, 2, 2, 3]}  (rank of each response, 1 = best,
//             tied responses share a rank, dense). Plus "item_id", "annotator", "flags" for provenance.
//   pairs:    {"prompt": str, "chosen": str, "rejected": str} for every pair the ranking orders strictly
//             (ties give no pair), plus "item_id", "annotator".
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "label/store.h"

namespace rlhf::label {

enum class ExportFormat { rankings, pairs };

// "rankings" | "pairs"; anything else throws with the allowed values.
ExportFormat parse_export_format(const std::string& name);

// The lines of the export, in ranking id order.
std::vector<nlohmann::json> export_lines(Store& store, ExportFormat format);

// Writes export_lines to path atomically (a temporary file renamed over it). Returns the number of lines.
size_t export_jsonl(Store& store, ExportFormat format, const std::string& path);

}  // namespace rlhf::label
