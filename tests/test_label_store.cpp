// The labelling store, export, agreement statistics and the automatic judge, without a server.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "label/candidates.h"
#include "label/export.h"
#include "label/judge.h"
#include "reward/rules.h"
#include "label/stats.h"
#include "label/store.h"
#include "test_label_util.h"

using namespace rlhf::label;
using rlhf::reward::find_rule;
using rlhf::reward::register_rule;
using rlhf::reward::Rule;
using rlhf::label::testing::make_items;
using rlhf::label::testing::stored_order;
using rlhf::label::testing::TempDir;
using nlohmann::json;

namespace {

const char* kXss = "<script>alert(1)</script>";
const char* kSql = "'; DROP TABLE rankings; --";

TEST(LabelStore, SubmitStoresOrderingWithTiesFlagsAndTime) {
  TempDir dir;
  Store store(dir.file("db.sqlite"));
  ASSERT_EQ(store.add_items(make_items(2, 4)), 2);
  store.add_annotator("alice");
  auto alice = *store.annotator_by_name("alice");
  Item item = *store.next_item(alice.id);
  const auto& c = item.candidates;
  Submission s;
  s.item_id = item.id;
  s.ordering = {{c[2].id}, {c[0].id, c[3].id}, {c[1].id}};
  s.flags = {"unsafe"};
  s.time_spent_ms = 1234;
  store.submit(alice.id, s);
  auto rs = store.rankings();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].item_id, item.id);
  EXPECT_EQ(rs[0].annotator, "alice");
  EXPECT_FALSE(rs[0].skipped);
  EXPECT_EQ(rs[0].ordering, s.ordering);
  EXPECT_EQ(rs[0].flags, std::vector<std::string>{"unsafe"});
  EXPECT_EQ(rs[0].time_spent_ms, 1234);
  EXPECT_FALSE(rs[0].created_at.empty());
  EXPECT_EQ(store.progress(alice.id).done, 1);
  EXPECT_EQ(store.progress(alice.id).total, 2);
}

TEST(LabelStore, InvalidSubmissionsWriteNothing) {
  TempDir dir;
  Store store(dir.file("db.sqlite"));
  store.add_items(make_items(2, 3));
  store.add_annotator("alice");
  auto alice = *store.annotator_by_name("alice");
  auto items = store.items();
  const auto& c = items[0].candidates;
  const auto& other = items[1].candidates;
  auto expect_invalid = [&](Submission s, const std::string& needle) {
    try {
      store.submit(alice.id, s);
      ADD_FAILURE() << "accepted an invalid submission; expected a message containing '" << needle << "'";
    } catch (const InvalidSubmission& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  Submission s;
  s.item_id = 999;
  s.ordering = stored_order(items[0]);
  expect_invalid(s, "unknown item_id 999");
  s.item_id = items[0].id;
  s.ordering = {{c[0].id}, {c[1].id}};  // c[2] missing
  expect_invalid(s, "not a permutation");
  s.ordering = {{c[0].id}, {c[1].id}, {c[1].id}};
  expect_invalid(s, "twice");
  s.ordering = {{c[0].id}, {c[1].id}, {other[0].id}};  // a candidate of another item
  expect_invalid(s, "not a candidate of item");
  s.ordering = {{c[0].id}, {}, {c[1].id, c[2].id}};
  expect_invalid(s, "empty group");
  s.ordering = {};
  expect_invalid(s, "not a permutation");
  s.ordering = stored_order(items[0]);
  s.skip = true;
  expect_invalid(s, "skip carries no ranking");
  s.skip = false;
  s.flags = std::vector<std::string>(17, "x");
  expect_invalid(s, "at most 16 flags");
  EXPECT_TRUE(store.rankings().empty());
  EXPECT_EQ(store.progress(alice.id).done, 0);
}

TEST(LabelStore, OneRankingPerAnnotatorAndItemButTwoAnnotatorsMay) {
  TempDir dir;
  Store store(dir.file("db.sqlite"));
  store.add_items(make_items(1, 2));
  store.add_annotator("alice");
  store.add_annotator("bob");
  auto alice = *store.annotator_by_name("alice");
  auto bob = *store.annotator_by_name("bob");
  Item item = store.items()[0];
  Submission s;
  s.item_id = item.id;
  s.ordering = stored_order(item);
  store.submit(alice.id, s);
  EXPECT_THROW(store.submit(alice.id, s), AlreadyRanked);
  Submission skip;
  skip.item_id = item.id;
  skip.skip = true;
  EXPECT_THROW(store.submit(alice.id, skip), AlreadyRanked);
  store.submit(bob.id, s);
  EXPECT_EQ(store.rankings().size(), 2u);
  EXPECT_FALSE(store.next_item(alice.id).has_value());
  EXPECT_FALSE(store.next_item(bob.id).has_value());
}

TEST(LabelStore, NextItemSkipsDoneItemsAndPrefersLeastRanked) {
  TempDir dir;
  Store store(dir.file("db.sqlite"));
  store.add_items(make_items(3, 2));
  store.add_annotator("alice");
  store.add_annotator("bob");
  auto alice = *store.annotator_by_name("alice");
  auto bob = *store.annotator_by_name("bob");
  auto items = store.items();
  // alice ranks item 0 and skips item 1.
  Submission s;
  s.item_id = items[0].id;
  s.ordering = stored_order(items[0]);
  store.submit(alice.id, s);
  EXPECT_EQ(store.next_item(alice.id)->id, items[1].id);
  Submission skip;
  skip.item_id = items[1].id;
  skip.skip = true;
  store.submit(alice.id, skip);
  EXPECT_EQ(store.next_item(alice.id)->id, items[2].id);
  // bob gets an item nobody ranked yet (1: a skip is not a ranking) before item 0, which alice ranked.
  EXPECT_EQ(store.next_item(bob.id)->id, items[1].id);
  EXPECT_EQ(store.pending_items(alice.id).size(), 1u);
  EXPECT_EQ(store.progress(alice.id).done, 2);
}

TEST(LabelStore, ScriptAndSqlTextIsStoredAsText) {
  TempDir dir;
  const std::string path = dir.file("db.sqlite");
  std::string prompt = std::string("Say ") + kXss + " and " + kSql;
  {
    Store store(path);
    NewItem it{prompt, {kXss, kSql, "plain"}, "", ""};
    store.add_items({it});
    store.add_annotator(std::string("o'brien ") + kSql);
  }
  Store store(path);  // reopened: the text survived, and so did every table
  Item item = store.items().at(0);
  EXPECT_EQ(item.prompt, prompt);
  EXPECT_EQ(item.candidates[0].text, kXss);
  EXPECT_EQ(item.candidates[1].text, kSql);
  auto who = store.annotator_by_name(std::string("o'brien ") + kSql);
  ASSERT_TRUE(who.has_value());
  Submission s;
  s.item_id = item.id;
  s.ordering = stored_order(item);
  s.flags = {kSql};
  store.submit(who->id, s);
  EXPECT_EQ(store.rankings().at(0).flags.at(0), kSql);
}

TEST(LabelStore, AddItemsSkipsKnownPromptsAndTokensAreUnique) {
  TempDir dir;
  Store store(dir.file("db.sqlite"));
  EXPECT_EQ(store.add_items(make_items(3, 2)), 3);
  EXPECT_EQ(store.add_items(make_items(4, 2)), 1);  // prompts 0..2 are known
  EXPECT_EQ(store.item_count(), 4);
  std::string t1 = store.add_annotator("alice"), t2 = store.add_annotator("bob");
  EXPECT_EQ(t1.size(), 64u);
  EXPECT_NE(t1, t2);
  EXPECT_EQ(store.annotator_by_token(t1)->name, "alice");
  EXPECT_FALSE(store.annotator_by_token("").has_value());
  EXPECT_FALSE(store.annotator_by_token(t1 + "x").has_value());
  EXPECT_THROW(store.add_annotator("alice"), rlhf::Error);
}

TEST(LabelStore, OpenExistingNamesTheMissingFile) {
  TempDir dir;
  try {
    Store store(dir.file("missing.sqlite"), Store::Open::existing);
    FAIL() << "opened a database that does not exist";
  } catch (const rlhf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.sqlite"), std::string::npos) << e.what();
  }
}

TEST(LabelCandidates, ReaderNamesFileLineAndField) {
  TempDir dir;
  const std::string path = dir.file("c.jsonl");
  std::ofstream(path) << "{\"prompt\": \"a\", \"responses\": [\"x\", \"y\"]}\n\n{\"prompt\": \"b\", \"responses\": [1]}\n";
  try {
    read_candidates_jsonl(path);
    FAIL() << "accepted a non-string response";
  } catch (const rlhf::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":3"), std::string::npos) << e.what();
  }
  std::ofstream(path) << "{\"prompt\": \"a\", \"responses\": [\"x\", \"y\"]}\n{\"prompt\": \"b\", \"responses\": [\"z\", \"w\", \"v\"]}\n";
  auto items = read_candidates_jsonl(path);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[1].responses, (std::vector<std::string>{"z", "w", "v"}));
}

TEST(LabelExport, RankingsUseIndicesOrRanksAndPairsFollowTheOrder) {
  TempDir dir;
  Store store(dir.file("db.sqlite"));
  store.add_items(make_items(3, 4));
  store.add_annotator("alice");
  auto alice = *store.annotator_by_name("alice");
  auto items = store.items();
  const auto& c0 = items[0].candidates;
  const auto& c1 = items[1].candidates;
  Submission strict{items[0].id, false, {{c0[3].id}, {c0[1].id}, {c0[0].id}, {c0[2].id}}, {}, {}};
  Submission tied{items[1].id, false, {{c1[1].id}, {c1[0].id, c1[3].id}, {c1[2].id}}, {"unsafe"}, {}};
  Submission skip{items[2].id, true, {}, {}, {}};
  store.submit(alice.id, strict);
  store.submit(alice.id, tied);
  store.submit(alice.id, skip);

  auto lines = export_lines(store, ExportFormat::rankings);
  ASSERT_EQ(lines.size(), 2u);  // the skip is not exported
  EXPECT_EQ(lines[0]["prompt"], "prompt 0");
  EXPECT_EQ(lines[0]["responses"][3], "prompt 0 / response 3");
  EXPECT_EQ(lines[0]["ranking"], json::parse("[3, 1, 0, 2]"));
  EXPECT_FALSE(lines[0].contains("ranks"));
  // ranks[i] is the place of responses[i]: r1 first, r0 and r3 tied second, r2 last.
  EXPECT_EQ(lines[1]["ranks"], json::parse("[2, 1, 3, 2]"));
  EXPECT_FALSE(lines[1].contains("ranking"));
  EXPECT_EQ(lines[1]["flags"], json::parse("[\"unsafe\"]"));

  auto pairs = export_lines(store, ExportFormat::pairs);
  // strict: C(4,2) = 6 pairs; tied: 4 candidates in groups of 1, 2, 1 give 6 - 1 tied pair = 5.
  ASSERT_EQ(pairs.size(), 11u);
  EXPECT_EQ(pairs[0]["chosen"], "prompt 0 / response 3");
  EXPECT_EQ(pairs[0]["rejected"], "prompt 0 / response 1");
  for (const auto& p : pairs) EXPECT_NE(p["chosen"], p["rejected"]);

  const std::string out = dir.file("out.jsonl");
  EXPECT_EQ(export_jsonl(store, ExportFormat::rankings, out), 2u);
  std::ifstream in(out);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) EXPECT_EQ(json::parse(line), lines[n++]);
  EXPECT_EQ(n, 2);
  EXPECT_THROW(parse_export_format("csv"), rlhf::Error);
}

// Reference values computed by hand (and equal to scipy.stats.kendalltau, which computes tau-b).
TEST(LabelStats, KendallTauBAndPairwiseAgreementMatchHandComputation) {
  auto r = [](std::vector<int> ranks) {
    Ranks out;
    for (size_t i = 0; i < ranks.size(); ++i) out[static_cast<int64_t>(i)] = ranks[i];
    return out;
  };
  // One adjacent swap in 4: nc = 5, nd = 1, tau = 4/6.
  EXPECT_NEAR(kendall_tau_b(r({1, 2, 3, 4}), r({1, 3, 2, 4})), 4.0 / 6.0, 1e-12);
  EXPECT_NEAR(pairwise_agreement(r({1, 2, 3, 4}), r({1, 3, 2, 4})), 5.0 / 6.0, 1e-12);
  // A tie on one side: nc = 5, nd = 0, n0 = 6, n1 = 1, n2 = 0 -> 5 / sqrt(5 * 6) = 0.9128709291752769.
  EXPECT_NEAR(kendall_tau_b(r({1, 2, 2, 3}), r({1, 2, 3, 4})), 0.9128709291752769, 1e-12);
  EXPECT_NEAR(pairwise_agreement(r({1, 2, 2, 3}), r({1, 2, 3, 4})), 5.0 / 6.0, 1e-12);
  // Reversed: every pair discordant.
  EXPECT_NEAR(kendall_tau_b(r({1, 2, 3}), r({3, 2, 1})), -1.0, 1e-12);
  EXPECT_NEAR(pairwise_agreement(r({1, 2, 3}), r({3, 2, 1})), 0.0, 1e-12);
  // The same tie on both sides: nc = 2, n0 = 3, n1 = n2 = 1 -> 2 / sqrt(2 * 2) = 1.
  EXPECT_NEAR(kendall_tau_b(r({1, 1, 2}), r({1, 1, 2})), 1.0, 1e-12);
  EXPECT_NEAR(pairwise_agreement(r({1, 1, 2}), r({1, 1, 2})), 1.0, 1e-12);
  // Everything tied on one side: undefined.
  EXPECT_TRUE(std::isnan(kendall_tau_b(r({1, 1, 1}), r({1, 2, 3}))));
}

TEST(LabelStats, CountsPerAnnotatorAndAgreementOnDoublyRankedItems) {
  TempDir dir;
  Store store(dir.file("db.sqlite"));
  store.add_items(make_items(3, 4));
  for (const char* n : {"alice", "bob", "carol"}) store.add_annotator(n);
  auto id = [&](const char* n) { return store.annotator_by_name(n)->id; };
  auto items = store.items();
  const auto& c = items[0].candidates;
  // Item 0 ranked by alice and bob (one adjacent swap: agreement 5/6, tau 2/3) and by carol (reversed from alice:
  // agreement 0, tau -1; from bob: agreement 1/6, tau -2/3).
  store.submit(id("alice"), {items[0].id, false, {{c[0].id}, {c[1].id}, {c[2].id}, {c[3].id}}, {}, 2000});
  store.submit(id("bob"), {items[0].id, false, {{c[0].id}, {c[2].id}, {c[1].id}, {c[3].id}}, {"unsafe"}, 4000});
  store.submit(id("carol"), {items[0].id, false, {{c[3].id}, {c[2].id}, {c[1].id}, {c[0].id}}, {}, {}});
  store.submit(id("alice"), {items[1].id, false, stored_order(items[1]), {}, 1000});
  store.submit(id("bob"), {items[2].id, true, {}, {}, {}});
  LabelStats s = compute_stats(store);
  EXPECT_EQ(s.items, 3);
  EXPECT_EQ(s.items_ranked, 2);
  EXPECT_EQ(s.rankings, 4);
  EXPECT_EQ(s.skips, 1);
  EXPECT_EQ(s.items_ranked_twice, 1);
  EXPECT_EQ(s.comparisons, 3);
  EXPECT_NEAR(s.pairwise_agreement, (5.0 / 6 + 0 + 1.0 / 6) / 3, 1e-12);
  EXPECT_NEAR(s.kendall_tau, (2.0 / 3 - 1 - 2.0 / 3) / 3, 1e-12);
  ASSERT_EQ(s.annotators.size(), 3u);
  EXPECT_EQ(s.annotators[0].name, "alice");
  EXPECT_EQ(s.annotators[0].ranked, 2);
  EXPECT_NEAR(s.annotators[0].median_seconds, 1.5, 1e-12);
  EXPECT_EQ(s.annotators[1].skipped, 1);
  EXPECT_EQ(s.annotators[1].flagged, 1);
  EXPECT_NE(stats_to_text(s).find("Kendall"), std::string::npos);
  EXPECT_EQ(stats_to_json(s)["agreement"]["comparisons"], 3);
}

TEST(LabelJudge, RulesOrderByScoreWithTies) {
  Rule length = find_rule("length");
  EXPECT_GT(length("", "longer", {}), length("", "short", {}));
  EXPECT_GT(find_rule("short")("", "ab", {}), find_rule("short")("", "abc", {}));
  EXPECT_EQ(find_rule("contains:please")("", "yes please", {}), 1.0);
  EXPECT_EQ(find_rule("contains:please")("", "no", {}), 0.0);
  EXPECT_THROW(find_rule("nope"), rlhf::Error);
  register_rule("first_char", rlhf::reward::TextRule([](const std::string&, const std::string& r) {
                  return r.empty() ? 0.0 : r[0];
                }));
  EXPECT_EQ(find_rule("first_char")("", "b", {}), 'b');

  std::vector<Candidate> c{{10, "aa"}, {11, "a"}, {12, "aaaa"}, {13, "bb"}};
  std::vector<double> scores;
  for (const auto& x : c) scores.push_back(length("", x.text, {}));
  EXPECT_EQ(ordering_from_scores(c, scores), (Ordering{{12}, {10, 13}, {11}}));
}

TEST(LabelJudge, NoiseSwapsAdjacentGroupsAtTheGivenRate) {
  std::mt19937_64 rng(1);
  Ordering o{{1}, {2}, {3}, {4}};
  EXPECT_EQ(add_noise(o, 0.0, rng), o);
  EXPECT_EQ(add_noise(o, 1.0, rng), (Ordering{{2}, {1}, {4}, {3}}));
  // With two groups one swap happens with probability p: 10000 draws, sd of the rate 0.0046.
  int swaps = 0;
  for (int i = 0; i < 10000; ++i) swaps += add_noise({{1}, {2}}, 0.3, rng)[0][0] == 2;
  EXPECT_NEAR(swaps / 10000.0, 0.3, 0.03);
}

TEST(LabelJudge, AutoRankIsReproducibleAndRanksOnlyPendingItems) {
  TempDir dir;
  Store store(dir.file("db.sqlite"));
  std::vector<NewItem> items;
  for (int i = 0; i < 20; ++i) items.push_back({"p" + std::to_string(i), {"a", "aaa", "aa", "aaaa"}, "", ""});
  store.add_items(items);
  AutoOptions clean{"judge-clean", 0.0, 0, 7, -1};
  EXPECT_EQ(auto_rank(store, rule_scorer(find_rule("length")), clean), 20);
  EXPECT_EQ(auto_rank(store, rule_scorer(find_rule("length")), clean), 0);  // nothing pending any more
  for (const auto& r : store.rankings()) {
    Item it = *store.item(r.item_id);
    // longest first: "aaaa" (3), "aaa" (1), "aa" (2), "a" (0)
    EXPECT_EQ(r.ordering, (Ordering{{it.candidates[3].id}, {it.candidates[1].id}, {it.candidates[2].id},
                                    {it.candidates[0].id}}));
  }
  // Same seed, different batching: the same noisy rankings.
  AutoOptions a{"noisy-a", 0.5, 42, 3, -1}, b{"noisy-b", 0.5, 42, 64, -1};
  auto_rank(store, rule_scorer(find_rule("length")), a);
  auto_rank(store, rule_scorer(find_rule("length")), b);
  std::map<int64_t, Ordering> ra, rb;
  for (const auto& r : store.rankings()) {
    if (r.annotator == "noisy-a") ra[r.item_id] = r.ordering;
    if (r.annotator == "noisy-b") rb[r.item_id] = r.ordering;
  }
  EXPECT_EQ(ra, rb);
  LabelStats s = compute_stats(store);
  EXPECT_LT(s.pairwise_agreement, 1.0);  // noise made some rankings differ from the clean judge
  AutoOptions bad{"x", 1.5, 0, 8, -1};
  EXPECT_THROW(auto_rank(store, rule_scorer(find_rule("length")), bad), rlhf::Error);
}

}  // namespace
