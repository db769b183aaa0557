// Helpers shared by the labelling tests: a scratch folder and small item sets.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "label/store.h"

namespace rlhf::label::testing {

// A fresh folder under $TMPDIR (or /tmp), removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "rlhf-label-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (!p) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// n items "prompt i" with k responses "prompt i / response j".
inline std::vector<NewItem> make_items(int n, int k) {
  std::vector<NewItem> out;
  for (int i = 0; i < n; ++i) {
    NewItem it;
    it.prompt = "prompt " + std::to_string(i);
    for (int j = 0; j < k; ++j) it.responses.push_back(it.prompt + " / response " + std::to_string(j));
    out.push_back(it);
  }
  return out;
}

// The ordering [[c0], [c1], ...] of an item's candidates in stored order (a valid strict ranking).
inline Ordering stored_order(const Item& item) {
  Ordering o;
  for (const auto& c : item.candidates) o.push_back({c.id});
  return o;
}

}  // namespace rlhf::label::testing
