// The run report: HTML escaping, number formatting, tick placement and the SVG chart against hand-computed values,
// then a whole report from a synthetic run folder (charts counted, table values, escaping, self-containment,
// errors naming file and line) and the `rlhf report` command.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <regex>

#include "common/error.h"
#include "rlhf/html.h"
#include "rlhf/report.h"
#include "test_util.h"

namespace {

using rlhf::test::TempDir;

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The message of the rlhf::Error that fn throws ("" when it does not throw).
template <typename F>
std::string error_of(F fn) {
  try {
    fn();
  } catch (const rlhf::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Html, EscapesMarkupAndQuotes) {
  EXPECT_EQ(rlhf::html::escape("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
  EXPECT_EQ(rlhf::html::escape("a & \"b\" 'c'"), "a &amp; &quot;b&quot; &#39;c&#39;");
  EXPECT_EQ(rlhf::html::escape("&lt;"), "&amp;lt;");  // already-escaped text stays text
  EXPECT_EQ(rlhf::html::escape("héllo √KL"), "héllo √KL");  // UTF-8 passes through
}

TEST(Html, FormatsNumbersForPeople) {
  using rlhf::html::format_number;
  EXPECT_EQ(format_number(0.73412), "0.734");
  EXPECT_EQ(format_number(-1.8449), "-1.84");
  EXPECT_EQ(format_number(12345.6), "12346");
  EXPECT_EQ(format_number(0), "0");
  EXPECT_EQ(format_number(-0.0), "0");
  EXPECT_EQ(format_number(3e-6), "3.00e-06");
  EXPECT_EQ(format_number(NAN), "\u2014");
  EXPECT_EQ(format_number(INFINITY), "\u2014");
}

TEST(Chart, NiceTicksAreOneTwoFiveTimesAPowerOfTen) {
  const std::vector<double> unit = {0, 0.2, 0.4, 0.6, 0.8, 1};
  auto near = [](const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (std::fabs(a[i] - b[i]) > 1e-12) return false;
    return true;
  };
  EXPECT_TRUE(near(rlhf::nice_ticks(0, 1), unit));
  EXPECT_TRUE(near(rlhf::nice_ticks(0.05, 0.93), unit));  // covers the data, rounded out to whole steps
  // range 15.9 / 5 = 3.18 -> step 5; floor(-3.7/5) = -1, ceil(12.2/5) = 3
  EXPECT_TRUE(near(rlhf::nice_ticks(-3.7, 12.2), {-5, 0, 5, 10, 15}));
  // range 990 / 5 = 198 -> step 200
  EXPECT_TRUE(near(rlhf::nice_ticks(10, 1000), {0, 200, 400, 600, 800, 1000}));
  EXPECT_TRUE(near(rlhf::nice_ticks(2, 2), {2}));
  EXPECT_TRUE(rlhf::nice_ticks(NAN, 1).empty());
  EXPECT_TRUE(rlhf::nice_ticks(0, INFINITY).empty());
  EXPECT_TRUE(rlhf::nice_ticks(1, 0).empty());
}

// No non-finite value may reach an SVG attribute.
void expect_no_nan(const std::string& svg) {
  EXPECT_EQ(svg.find("nan"), std::string::npos) << svg;
  EXPECT_EQ(svg.find("inf"), std::string::npos) << svg;
}

TEST(Chart, EmptyAndAllNaNSaysNoData) {
  for (const auto& series : std::vector<std::vector<rlhf::ChartSeries>>{
           {}, {{"a", {}, {}}}, {{"a", {0, 1, 2}, {NAN, INFINITY, -INFINITY}}}}) {
    const std::string svg = rlhf::svg_line_chart("Empty", "step", series);
    EXPECT_NE(svg.find(">no data<"), std::string::npos);
    EXPECT_EQ(svg.find("<path"), std::string::npos);
    EXPECT_EQ(svg.rfind("<svg", 0), 0u);
    EXPECT_EQ(count(svg, "</svg>"), 1u);
    expect_no_nan(svg);
  }
}

TEST(Chart, SinglePointSitsMidChartAsADot) {
  const std::string svg = rlhf::svg_line_chart("One", "step", {{"a", {3}, {7}}});
  // Default 400 × 250 viewBox, no legend, x label: plot x in [50, 386], y in [36, 210]. x is padded to [2.7, 3.3]
  // -> 3 lands at the middle, (50 + 386) / 2 = 218. y is padded to [6.3, 7.7], ticks 6.2 .. 7.8 -> 7 at the middle,
  // (36 + 210) / 2 = 123.
  EXPECT_NE(svg.find("<circle cx=\"218.00\" cy=\"123.00\""), std::string::npos) << svg;
  expect_no_nan(svg);
}

TEST(Chart, ConstantSeriesGetsARangeAroundIt) {
  const std::string svg = rlhf::svg_line_chart("Flat", "step", {{"a", {0, 1, 2, 3}, {2, 2, 2, 2}}});
  // padded to [1.8, 2.2] -> step 0.1, labels with one decimal
  EXPECT_NE(svg.find(">1.8<"), std::string::npos);
  EXPECT_NE(svg.find(">2.0<"), std::string::npos);
  EXPECT_NE(svg.find(">2.2<"), std::string::npos);
  expect_no_nan(svg);
}

TEST(Chart, NaNBreaksTheLineAndLegendNamesEachSeries) {
  const std::string svg = rlhf::svg_line_chart(
      "Gap <b>", "iteration", {{"score", {0, 1, 2, 3, 4}, {1, 2, NAN, 4, 5}}, {"gold", {0, 4}, {0, 1}}});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex("<path d=\"([^\"]*)\"")));
  EXPECT_EQ(count(m[1].str(), "M"), 2u) << m[1];  // two segments: 0..1 and 3..4
  EXPECT_EQ(count(m[1].str(), "L"), 2u) << m[1];
  EXPECT_NE(svg.find(">score</text>"), std::string::npos);  // legend
  EXPECT_NE(svg.find(">gold</text>"), std::string::npos);
  EXPECT_NE(svg.find("Gap &lt;b&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<b>"), std::string::npos);
  EXPECT_NE(svg.find(rlhf::series_color("gold")), std::string::npos);
  expect_no_nan(svg);
}

TEST(Chart, MarkerIsDrawnWithItsLabel) {
  rlhf::ChartOptions opt;
  opt.markers.push_back({2.0, "peak <here>"});
  const std::string svg = rlhf::svg_line_chart("M", "x", {{"a", {0, 4}, {0, 1}}}, opt);
  EXPECT_NE(svg.find("peak &lt;here&gt;"), std::string::npos);
  // x in [0, 4] over [50, 386]: 2 -> 218; the plot spans y 36 .. 210
  EXPECT_NE(svg.find("<line x1=\"218.00\" y1=\"36.00\" x2=\"218.00\" y2=\"210.00\" stroke=\"#6b7280\""),
            std::string::npos) << svg;
}

// A run folder with every file the report reads (DPO left out, to check "not run").
void synthetic_run(const TempDir& d) {
  write(d / "eval.json", R"({"policies": {
    "base": {"gold": 0.112, "reward_model": -1.84, "kl_to_sft": 2.91, "length": 31.2, "win_rate_vs_sft": 0.21},
    "sft": {"gold": 0.405, "reward_model": 0.12, "kl_to_sft": 0, "length": 14.8, "win_rate_vs_sft": 0.5},
    "best_of_n": {"gold": 0.561, "reward_model": 1.31, "kl_to_sft": 1.05, "length": 15.9, "win_rate_vs_sft": 0.63},
    "dpo": {"gold": 0.598, "reward_model": 0.97, "kl_to_sft": 2.4, "length": 13.1, "win_rate_vs_sft": 0.66},
    "ppo": {"gold": 0.734, "reward_model": 1.92, "kl_to_sft": 4.87, "length": 12.3, "win_rate_vs_sft": 0.78}},
    "eval_prompts": 256, "seed": 1})");
  std::string ppo;
  for (int i = 0; i < 5; ++i)
    ppo += "{\"iteration\": " + std::to_string(i) + ", \"score\": " + std::to_string(0.1 * i) +
           ", \"gold\": " + std::to_string(0.05 * i) + ", \"kl\": " + (i == 2 ? "null" : std::to_string(0.3 * i)) +
           ", \"beta\": 0.05, \"policy_loss\": -0.01, \"value_loss\": 0.5, \"clip_frac\": 0.1, \"entropy\": 2.0, "
           "\"response_length\": 14, \"my_metric\": 1, \"phase\": \"rollout\"}\n";
  write(d / "ppo/metrics.jsonl", ppo);
  write(d / "reward/metrics.jsonl",
        "{\"step\": 1, \"loss\": 0.69, \"accuracy\": 0.5}\n{\"step\": 2, \"loss\": 0.6, \"accuracy\": 0.6}\n"
        "{\"step\": 2, \"eval_loss\": 0.65, \"eval_accuracy\": 0.55}\n{\"step\": 3, \"loss\": 0.5, \"accuracy\": 0.7}\n"
        "{\"step\": 3, \"eval_loss\": 0.6, \"eval_accuracy\": 0.789}\n");
  write(d / "sft/metrics.jsonl", "{\"step\": 0, \"loss\": 3.1}\n\n{\"step\": 1, \"loss\": 2.5}\n");
  write(d / "samples.jsonl",
        "{\"prompt\": \"Sort: 3 1 2\", \"sft\": \"1 2 3 3\", \"ppo\": \"1 2 3\", \"sft_gold\": 0.4, \"ppo_gold\": 1.0}\n"
        "{\"prompt\": \"Echo <script>alert(1)</script>\", \"sft\": \"<script>alert(1)</script>\", \"ppo\": \"a & b\"}\n");
  // gold peaks at KL 4 (iteration 20)
  write(d / "overoptimize.jsonl",
        "{\"iteration\": 0, \"kl\": 0, \"proxy\": 0, \"gold\": 0}\n{\"iteration\": 10, \"kl\": 1, \"proxy\": 1, \"gold\": 0.8}\n"
        "{\"iteration\": 20, \"kl\": 4, \"proxy\": 2, \"gold\": 1.1}\n{\"iteration\": 30, \"kl\": 9, \"proxy\": 3, \"gold\": 0.2}\n");
  write(d / "stages.json",
        R"([{"stage": "sft", "seconds": 35.5, "command": "rlhf sft --out run/sft"},
            {"stage": "ppo", "seconds": 90, "command": "rlhf ppo --out run/ppo"}])");
}

TEST(Report, WholeRunFolder) {
  TempDir d;
  synthetic_run(d);
  const std::string path = rlhf::write_report(d.path.string());
  EXPECT_EQ(path, d / "report.html");
  const std::string page = read(path);
  ASSERT_FALSE(page.empty());
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);

  // PPO: reward (score + gold), KL, β, policy loss, value loss, clip fraction, entropy, length, my_metric = 9;
  // over-optimisation 1; reward model loss + accuracy 2; SFT loss 1; no DPO.
  EXPECT_EQ(count(page, "<svg"), 13u);
  EXPECT_NE(page.find("Reward: reward model (proxy) and gold"), std::string::npos);
  EXPECT_NE(page.find(">my_metric<"), std::string::npos);        // unknown keys get a chart too
  EXPECT_EQ(page.find(">phase<"), std::string::npos);            // text fields do not
  EXPECT_NE(page.find("Not run: dpo/metrics.jsonl is missing."), std::string::npos);

  // Evaluation table: values, and the best of each ↑ column highlighted (all PPO here).
  for (const char* v : {"0.112", "-1.84", "0.405", "0.561", "0.598", "4.87", "12.3", "21%", "78%"})
    EXPECT_NE(page.find(std::string(">") + v + "<"), std::string::npos) << v;
  EXPECT_EQ(count(page, "class=\"best\""), 3u);
  EXPECT_NE(page.find("<td class=\"best\">0.734</td>"), std::string::npos);
  EXPECT_NE(page.find("<td class=\"best\">78%</td>"), std::string::npos);
  const size_t base = page.find("<th>base</th>"), sft = page.find("<th>SFT</th>"), bon = page.find("<th>best-of-N</th>"),
               dpo = page.find("<th>DPO</th>"), ppo = page.find("<th>PPO</th>");
  EXPECT_TRUE(base < sft && sft < bon && bon < dpo && dpo < ppo && ppo != std::string::npos);

  // Headlines: PPO gold against SFT (0.734 - 0.405 = 0.329), held-out RM accuracy (last eval_accuracy 0.789),
  // total stage time 125.5 s.
  EXPECT_NE(page.find("PPO gold score (SFT 0.405, +0.329)"), std::string::npos);
  EXPECT_NE(page.find(">78.9%<"), std::string::npos);
  EXPECT_NE(page.find("2 min 05 s"), std::string::npos);
  EXPECT_NE(page.find("gold peaks at KL 4"), std::string::npos);
  EXPECT_NE(page.find("iteration 20"), std::string::npos);

  // Samples: markup is text.
  EXPECT_NE(page.find("Echo &lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(page.find("a &amp; b"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_NE(page.find("gold 0.4"), std::string::npos);

  // Stages table.
  EXPECT_NE(page.find("<code>rlhf ppo --out run/ppo</code>"), std::string::npos);
  EXPECT_NE(page.find("35.5 s"), std::string::npos);

  // Self-contained: nothing fetched from anywhere.
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find("src="), std::string::npos);
  EXPECT_EQ(page.find("@import"), std::string::npos);
  expect_no_nan(page);
}

TEST(Report, EmptyRunFolderSaysNotRun) {
  TempDir d;
  const std::string page = rlhf::render_report(d.path.string());
  EXPECT_EQ(count(page, "<svg"), 0u);
  for (const char* f : {"eval.json", "ppo/metrics.jsonl", "reward/metrics.jsonl", "sft/metrics.jsonl",
                        "dpo/metrics.jsonl", "samples.jsonl", "stages.json"})
    EXPECT_NE(page.find(std::string("Not run: ") + f + " is missing."), std::string::npos) << f;
  EXPECT_EQ(page.find("overoptimize"), std::string::npos);  // optional: no section at all
}

TEST(Report, PartialEvalShowsNotRunRows) {
  TempDir d;
  write(d / "eval.json", R"({"policies": {"sft": {"gold": 0.4}, "ppo": {"gold": 0.7, "kl_to_sft": null}}})");
  const std::string page = rlhf::render_report(d.path.string());
  EXPECT_EQ(count(page, ">not run</td>"), 3u);  // base, best_of_n, dpo
  EXPECT_NE(page.find("<td class=\"best\">0.7</td>"), std::string::npos);
}

TEST(Report, EvalRowsWithoutAStepSitAtThePreviousStep) {
  TempDir d;
  write(d / "reward/metrics.jsonl",
        "{\"step\": 1, \"loss\": 0.7, \"accuracy\": 0.5}\n{\"eval_accuracy\": 0.6}\n"
        "{\"step\": 2, \"loss\": 0.6, \"accuracy\": 0.6}\n{\"eval_accuracy\": 0.7, \"eval_loss\": null}\n");
  const std::string page = rlhf::render_report(d.path.string());
  EXPECT_NE(page.find(">70%<"), std::string::npos);  // headline: the last held-out accuracy
  const size_t at = page.find("aria-label=\"Reward model: accuracy\"");
  ASSERT_NE(at, std::string::npos);
  const std::string svg = page.substr(at, page.find("</svg>", at) - at);
  EXPECT_EQ(count(svg, "<path"), 2u) << svg;  // train and held-out lines
  EXPECT_NE(svg.find("stroke-dasharray=\"6 4\""), std::string::npos);  // held-out is dashed
}

TEST(Report, SplitEvalRowsBecomeHeldOutSeries) {
  // What the trainers' MetricsLog writes: {"step", "split": "eval", "accuracy", ...}.
  TempDir d;
  write(d / "reward/metrics.jsonl",
        "{\"step\": 1, \"split\": \"train\", \"loss\": 0.7, \"accuracy\": 0.5}\n"
        "{\"step\": 2, \"split\": \"train\", \"loss\": 0.6, \"accuracy\": 0.95}\n"
        "{\"step\": 2, \"split\": \"eval\", \"loss\": 0.65, \"accuracy\": 0.8}\n");
  const std::string page = rlhf::render_report(d.path.string());
  EXPECT_NE(page.find(">80%<"), std::string::npos);  // the held-out accuracy, not the last train value
  EXPECT_NE(page.find("accuracy on held-out rankings"), std::string::npos);
  const size_t at = page.find("aria-label=\"Reward model: accuracy\"");
  ASSERT_NE(at, std::string::npos);
  const std::string svg = page.substr(at, page.find("</svg>", at) - at);
  EXPECT_NE(svg.find("stroke-dasharray=\"6 4\""), std::string::npos);  // held-out drawn apart, dashed
}

TEST(Report, MalformedFilesNameFileAndLine) {
  {
    TempDir d;
    write(d / "eval.json", "{\n  \"policies\": {\n    \"sft\": {\"gold\": 0.5,,}\n  }\n}\n");
    const std::string e = error_of([&] { rlhf::render_report(d.path.string()); });
    EXPECT_NE(e.find("eval.json:3: malformed JSON"), std::string::npos) << e;
  }
  {
    TempDir d;
    write(d / "ppo/metrics.jsonl", "{\"iteration\": 0}\n{\"iteration\": 1}\n{\"iteration\": 2,\n");
    const std::string e = error_of([&] { rlhf::render_report(d.path.string()); });
    EXPECT_NE(e.find("ppo/metrics.jsonl:3: malformed JSON"), std::string::npos) << e;
  }
  {
    TempDir d;
    write(d / "reward/metrics.jsonl", "{\"step\": 0}\n[1, 2]\n");
    const std::string e = error_of([&] { rlhf::render_report(d.path.string()); });
    EXPECT_NE(e.find("reward/metrics.jsonl:2: expected a JSON object"), std::string::npos) << e;
  }
  {
    TempDir d;
    write(d / "eval.json", R"({"policies": {"ppo": {"gold": "high"}}})");
    const std::string e = error_of([&] { rlhf::render_report(d.path.string()); });
    EXPECT_NE(e.find("policies.ppo: \"gold\" must be a number"), std::string::npos) << e;
  }
  {
    TempDir d;
    write(d / "samples.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": 5}\n");
    const std::string e = error_of([&] { rlhf::render_report(d.path.string()); });
    EXPECT_NE(e.find("samples.jsonl:2: \"prompt\" must be a string"), std::string::npos) << e;
  }
  EXPECT_NE(error_of([] { rlhf::render_report("/nonexistent/run"); }).find("not a folder"), std::string::npos);
}

TEST(ReportCommand, WritesThePageAndPrintsItsPath) {
  TempDir d;
  synthetic_run(d);
  std::string out;
  ASSERT_EQ(rlhf::test::run_rlhf("report " + d.path.string(), &out), 0) << out;
  EXPECT_NE(out.find(d / "report.html"), std::string::npos) << out;
  EXPECT_EQ(count(read(d / "report.html"), "<svg"), 13u);

  ASSERT_EQ(rlhf::test::run_rlhf("report " + d.path.string() + " --out " + (d / "other.html"), &out), 0) << out;
  EXPECT_NE(out.find(d / "other.html"), std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::exists(d / "other.html"));

  write(d / "stages.json", "[{\"stage\": \"sft\",]");
  EXPECT_NE(rlhf::test::run_rlhf("report " + d.path.string(), &out), 0);
  EXPECT_NE(out.find("stages.json:1: malformed JSON"), std::string::npos) << out;
  EXPECT_NE(rlhf::test::run_rlhf("report " + (d / "missing"), &out), 0);
  EXPECT_NE(out.find("not a folder"), std::string::npos) << out;
}

}  // namespace
