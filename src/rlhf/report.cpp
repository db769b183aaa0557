// The run report (see report.h): read the run folder's JSON and JSONL files, draw SVG line charts, write one HTML page.
// Layout of a chart (viewBox units):
//   title                     y = 20
//   legend rows (> 1 series)  y = 38, 54, ...
//   plot area                 [left, right] × [top, bottom], y axis on "nice" ticks that cover the data,
//                             x axis exactly the data's range
//   x tick labels, x label    below the plot
#include "rlhf/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/error.h"
#include "rlhf/html.h"

namespace rlhf {

namespace fs = std::filesystem;
using json = nlohmann::json;
using html::coord;
using html::escape;
using html::format_number;

// ---------------------------------------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------------------------------------

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || hi < lo || target < 1) return {};
  if (hi == lo) return {lo};
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const double eps = step * 1e-9;  // so 0.6000000001 / 0.2 does not round up to an extra tick
  const long first = static_cast<long>(std::floor(lo / step + eps));
  const long last = static_cast<long>(std::ceil(hi / step - eps));
  std::vector<double> ticks;
  for (long i = first; i <= last && ticks.size() < 1000; ++i) {
    double t = i * step;
    if (std::fabs(t) < eps) t = 0;  // no "-0"
    ticks.push_back(t);
  }
  return ticks;
}

std::string series_color(const std::string& name) {
  // Fixed colours for the report's series, so a quantity looks the same in every chart; eval_X shares X's colour
  // (drawn dashed). Others get a palette colour by a hash of the name.
  static const std::map<std::string, std::string> fixed = {
      {"score", "#2563eb"},        {"proxy", "#2563eb"},       {"reward_model", "#2563eb"}, {"gold", "#d97706"},
      {"reward", "#7c3aed"},       {"kl", "#9333ea"},          {"beta", "#0d9488"},         {"policy_loss", "#dc2626"},
      {"value_loss", "#16a34a"},   {"clip_frac", "#db2777"},   {"approx_kl", "#a855f7"},    {"entropy", "#0891b2"},
      {"response_length", "#475569"}, {"eos_frac", "#64748b"}, {"tokens_per_s", "#059669"}, {"rollout_s", "#2563eb"},
      {"scoring_s", "#d97706"},    {"train_s", "#dc2626"},     {"loss", "#dc2626"},         {"accuracy", "#2563eb"},
  };
  std::string key = name.rfind("eval_", 0) == 0 ? name.substr(5) : name;
  if (auto it = fixed.find(key); it != fixed.end()) return it->second;
  static const char* palette[] = {"#2563eb", "#d97706", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#db2777",
                                  "#65a30d"};
  return palette[std::hash<std::string>{}(key) % (sizeof palette / sizeof *palette)];
}

namespace {

// Tick label: enough decimals to tell neighbouring ticks apart, "k"/"M" for large values.
std::string tick_label(double v, double step) {
  double scale = 1;
  const char* suffix = "";
  if (std::fabs(step) >= 1e6) scale = 1e6, suffix = "M";
  else if (std::fabs(step) >= 1e3 && std::fabs(v) >= 1e4) scale = 1e3, suffix = "k";
  std::string exp_suffix;  // tiny steps (a learning rate of 1e-4): "95e-6", "100e-6", not "0.000095" cut at the edge
  if (step > 0 && step < 1e-3 && std::fabs(v) < 1000 * step) {
    const int e = static_cast<int>(std::floor(std::log10(step)));
    scale = std::pow(10.0, e);
    exp_suffix = "e" + std::to_string(e);
    suffix = exp_suffix.c_str();
  }
  v /= scale;
  step /= scale;
  int decimals = step > 0 ? std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 8) : 3;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f%s", decimals, v, suffix);
  std::string s = buf;
  if (s.rfind("-0", 0) == 0 && s.find_first_not_of("-0.") == std::string::npos) s = s.substr(1);
  return s;
}

// A rough text width at a font size (system sans-serif averages ~0.58 em per character).
double text_width(const std::string& s, double font_size) { return 0.58 * font_size * s.size(); }

}  // namespace

std::string svg_line_chart(const std::string& title, const std::string& x_label,
                           const std::vector<ChartSeries>& series, const ChartOptions& options) {
  const double W = options.width, H = options.height;
  std::ostringstream o;
  o << "<svg class=\"chart\" viewBox=\"0 0 " << options.width << ' ' << options.height << "\" role=\"img\" aria-label=\""
    << escape(title) << "\"><title>" << escape(title) << "</title>";
  o << "<text x=\"10\" y=\"21\" font-size=\"15\" font-weight=\"600\" fill=\"#111827\">" << escape(title) << "</text>";

  // Legend (only when there is something to tell apart), wrapped into rows.
  double top = 36;
  if (series.size() > 1) {
    double x = 10, y = 42;
    for (const auto& s : series) {
      const double w = 26 + text_width(s.name, 12.5) + 14;
      if (x + w > W - 6 && x > 10) x = 10, y += 16;
      const std::string color = s.color.empty() ? series_color(s.name) : s.color;
      o << "<line x1=\"" << coord(x) << "\" y1=\"" << coord(y - 4) << "\" x2=\"" << coord(x + 20) << "\" y2=\""
        << coord(y - 4) << "\" stroke=\"" << escape(color) << "\" stroke-width=\"2.5\""
        << (s.dashed ? " stroke-dasharray=\"5 3\"" : "") << "/>";
      o << "<text x=\"" << coord(x + 25) << "\" y=\"" << coord(y) << "\" font-size=\"12.5\" fill=\"#374151\">"
        << escape(s.name) << "</text>";
      x += w;
    }
    top = y + 12;
  }

  // Data range over finite points.
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  size_t n_finite = 0;
  for (const auto& s : series)
    for (size_t i = 0; i < std::min(s.xs.size(), s.ys.size()); ++i)
      if (std::isfinite(s.xs[i]) && std::isfinite(s.ys[i])) {
        xmin = std::min(xmin, s.xs[i]), xmax = std::max(xmax, s.xs[i]);
        ymin = std::min(ymin, s.ys[i]), ymax = std::max(ymax, s.ys[i]);
        ++n_finite;
      }
  for (const auto& m : options.markers)
    if (std::isfinite(m.x) && n_finite) xmin = std::min(xmin, m.x), xmax = std::max(xmax, m.x);

  const double left = options.y_label.empty() ? 50 : 62, right = W - 14, bottom = H - (x_label.empty() ? 26 : 40);
  auto frame = [&] {
    o << "<rect x=\"" << coord(left) << "\" y=\"" << coord(top) << "\" width=\"" << coord(right - left)
      << "\" height=\"" << coord(bottom - top) << "\" fill=\"none\" stroke=\"#d1d5db\"/>";
    if (!x_label.empty())
      o << "<text x=\"" << coord((left + right) / 2) << "\" y=\"" << coord(H - 8)
        << "\" font-size=\"12\" fill=\"#4b5563\" text-anchor=\"middle\">" << escape(x_label) << "</text>";
    if (!options.y_label.empty())
      o << "<text transform=\"translate(14 " << coord((top + bottom) / 2)
        << ") rotate(-90)\" font-size=\"12\" fill=\"#4b5563\" text-anchor=\"middle\">" << escape(options.y_label)
        << "</text>";
  };
  if (n_finite == 0) {
    frame();
    o << "<text x=\"" << coord((left + right) / 2) << "\" y=\"" << coord((top + bottom) / 2)
      << "\" font-size=\"13\" fill=\"#9ca3af\" text-anchor=\"middle\">no data</text></svg>";
    return o.str();
  }
  // A single value (one point, or a constant series) gets a range around it so it sits mid-chart.
  auto pad = [](double& lo, double& hi) {
    if (hi > lo) return;
    const double p = lo != 0 ? std::fabs(lo) * 0.1 : 1.0;
    lo -= p, hi += p;
  };
  pad(xmin, xmax);
  pad(ymin, ymax);
  const auto yticks = nice_ticks(ymin, ymax, 5);
  const double y0 = yticks.front(), y1 = yticks.back();
  // x ticks inside the data's range; whole numbers only when every x is one (iterations, steps).
  bool integral_x = true;
  for (const auto& s : series)
    for (double x : s.xs)
      if (std::isfinite(x) && x != std::floor(x)) integral_x = false;
  auto xticks = nice_ticks(xmin, xmax, 5);
  const double raw_xstep = xticks.size() > 1 ? xticks[1] - xticks[0] : 1;
  xticks.erase(std::remove_if(xticks.begin(), xticks.end(),
                              [&](double t) {
                                return t < xmin - 1e-9 * raw_xstep || t > xmax + 1e-9 * raw_xstep ||
                                       (integral_x && t != std::floor(t));
                              }),
               xticks.end());
  const double xstep = xticks.size() > 1 ? xticks[1] - xticks[0] : raw_xstep;
  auto px = [&](double x) { return left + (x - xmin) / (xmax - xmin) * (right - left); };
  auto py = [&](double y) { return bottom - (y - y0) / (y1 - y0) * (bottom - top); };

  // Grid and tick labels.
  const double ystep = yticks.size() > 1 ? yticks[1] - yticks[0] : 1;
  for (double t : yticks) {
    o << "<line x1=\"" << coord(left) << "\" y1=\"" << coord(py(t)) << "\" x2=\"" << coord(right) << "\" y2=\""
      << coord(py(t)) << "\" stroke=\"#eef0f3\"/>";
    o << "<text x=\"" << coord(left - 5) << "\" y=\"" << coord(py(t) + 4)
      << "\" font-size=\"12\" fill=\"#6b7280\" text-anchor=\"end\">" << escape(tick_label(t, ystep)) << "</text>";
  }
  for (double t : xticks) {
    o << "<line x1=\"" << coord(px(t)) << "\" y1=\"" << coord(top) << "\" x2=\"" << coord(px(t)) << "\" y2=\""
      << coord(bottom) << "\" stroke=\"#eef0f3\"/>";
    o << "<text x=\"" << coord(px(t)) << "\" y=\"" << coord(bottom + 15)
      << "\" font-size=\"12\" fill=\"#6b7280\" text-anchor=\"middle\">" << escape(tick_label(t, xstep)) << "</text>";
  }
  frame();

  // Markers under the lines.
  for (const auto& m : options.markers) {
    if (!std::isfinite(m.x)) continue;
    const double x = px(m.x);
    o << "<line x1=\"" << coord(x) << "\" y1=\"" << coord(top) << "\" x2=\"" << coord(x) << "\" y2=\"" << coord(bottom)
      << "\" stroke=\"#6b7280\" stroke-width=\"1.2\" stroke-dasharray=\"3 3\"/>";
    const bool left_side = x > (left + right) / 2;
    o << "<text x=\"" << coord(x + (left_side ? -4 : 4)) << "\" y=\"" << coord(top + 14)
      << "\" font-size=\"12\" fill=\"#374151\" text-anchor=\"" << (left_side ? "end" : "start") << "\">"
      << escape(m.label) << "</text>";
  }

  // Lines: a path per series, broken at non-finite points; dots for short series and isolated points.
  for (const auto& s : series) {
    const std::string color = escape(s.color.empty() ? series_color(s.name) : s.color);
    const size_t n = std::min(s.xs.size(), s.ys.size());
    size_t finite = 0;
    for (size_t i = 0; i < n; ++i) finite += std::isfinite(s.xs[i]) && std::isfinite(s.ys[i]);
    const bool dots = options.show_points || finite <= 20;
    std::ostringstream d, circles;
    bool pen_down = false;
    for (size_t i = 0; i < n; ++i) {
      const bool ok = std::isfinite(s.xs[i]) && std::isfinite(s.ys[i]);
      if (!ok) {
        pen_down = false;
        continue;
      }
      const bool prev_ok = i > 0 && std::isfinite(s.xs[i - 1]) && std::isfinite(s.ys[i - 1]);
      const bool next_ok = i + 1 < n && std::isfinite(s.xs[i + 1]) && std::isfinite(s.ys[i + 1]);
      d << (pen_down ? " L" : (d.tellp() > 0 ? " M" : "M")) << coord(px(s.xs[i])) << ' ' << coord(py(s.ys[i]));
      pen_down = true;
      if (dots || (!prev_ok && !next_ok))
        circles << "<circle cx=\"" << coord(px(s.xs[i])) << "\" cy=\"" << coord(py(s.ys[i])) << "\" r=\"2.6\" fill=\""
                << color << "\"/>";
    }
    o << "<g><title>" << escape(s.name) << "</title>";
    if (d.tellp() > 0)
      o << "<path d=\"" << d.str() << "\" fill=\"none\" stroke=\"" << color
        << "\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\""
        << (s.dashed ? " stroke-dasharray=\"6 4\"" : "") << "/>";
    o << circles.str() << "</g>";
  }
  o << "</svg>";
  return o.str();
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the run folder
// ---------------------------------------------------------------------------------------------------------------

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  RLHF_CHECK(in, path.string(), ": cannot open for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Parses a whole JSON file; a syntax error names the file and the line.
json parse_json_file(const fs::path& path) {
  const std::string text = read_text(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    const size_t upto = std::min(text.size(), e.byte > 0 ? static_cast<size_t>(e.byte - 1) : size_t{0});
    const long line = 1 + std::count(text.begin(), text.begin() + upto, '\n');
    fail(path.string(), ":", line, ": malformed JSON (", e.what(), ")",
         "; hint: the run's stages write this file; fix it or delete it and rerun that stage");
  } catch (const json::exception& e) {  // out_of_range: a number beyond double
    fail(path.string(), ": malformed JSON (", e.what(), ")",
         "; hint: the run's stages write this file; fix it or delete it and rerun that stage");
  }
}

// Reads a JSONL file: one JSON object per non-empty line.
std::vector<json> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  RLHF_CHECK(in, path.string(), ": cannot open for reading");
  std::vector<json> rows;
  std::string line;
  for (long n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      fail(path.string(), ":", n, ": malformed JSON (", e.what(), "); hint: each line must be one JSON object");
    }
    RLHF_CHECK(j.is_object(), path.string(), ":", n, ": expected a JSON object, got ", j.type_name());
    rows.push_back(std::move(j));
  }
  return rows;
}

// A number field: null and absent are NaN (a gap), anything but a number is an error naming file and line.
double number_field(const json& j, const std::string& key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return NAN;
  RLHF_CHECK(it->is_number(), where, ": \"", key, "\" must be a number, got ", it->type_name());
  return it->get<double>();
}

std::string string_field(const json& j, const std::string& key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  RLHF_CHECK(it->is_string(), where, ": \"", key, "\" must be a string, got ", it->type_name());
  return it->get<std::string>();
}

// A metrics.jsonl as columns: every numeric key, in order of first appearance, with NaN where a row lacks it.
struct Metrics {
  std::vector<std::string> keys;
  std::map<std::string, std::vector<double>> columns;  // NaN where the row has null or lacks the key
  std::map<std::string, std::vector<char>> present;    // the row has the key (null included: a gap in the line)
  size_t rows = 0;
  std::string x_key;  // "iteration", "step" or "epoch" when present; else the row number

  bool has(const std::string& k) const {
    auto it = columns.find(k);
    return it != columns.end() && std::any_of(it->second.begin(), it->second.end(),
                                              [](double v) { return std::isfinite(v); });
  }
  std::vector<double> xs() const {
    if (!x_key.empty()) {  // a row without the x key (e.g. an eval row) sits at the previous row's x
      std::vector<double> x = columns.at(x_key);
      for (size_t i = 1; i < x.size(); ++i)
        if (!std::isfinite(x[i])) x[i] = x[i - 1];
      return x;
    }
    std::vector<double> x(rows);
    for (size_t i = 0; i < rows; ++i) x[i] = static_cast<double>(i);
    return x;
  }
  double last(const std::string& k) const {
    if (!columns.count(k)) return NAN;
    const auto& c = columns.at(k);
    for (auto it = c.rbegin(); it != c.rend(); ++it)
      if (std::isfinite(*it)) return *it;
    return NAN;
  }
};

Metrics read_metrics(const fs::path& path) {
  const auto rows = read_jsonl(path);
  Metrics m;
  m.rows = rows.size();
  for (size_t r = 0; r < rows.size(); ++r) {
    // The trainers' MetricsLog writes eval rows as {"step", "split": "eval", "loss", ...}: their series become
    // eval_loss, ... (the step stays the shared x axis).
    const bool eval_row = rows[r].contains("split") && rows[r]["split"] == "eval";
    for (const auto& [key, v] : rows[r].items()) {
      if (!v.is_number() && !v.is_null()) continue;  // text fields (e.g. a phase name) are not plotted
      const bool is_x = key == "iteration" || key == "step" || key == "epoch";
      const std::string k = eval_row && !is_x && key.rfind("eval_", 0) != 0 ? "eval_" + key : key;
      if (!m.columns.count(k)) {
        m.keys.push_back(k);
        m.columns[k] = std::vector<double>(rows.size(), NAN);
        m.present[k] = std::vector<char>(rows.size(), 0);
      }
      m.present[k][r] = 1;
      m.columns[k][r] = v.is_number() ? v.get<double>() : NAN;
    }
  }
  for (const char* k : {"iteration", "step", "epoch"})
    if (m.has(k)) {
      m.x_key = k;
      break;
    }
  return m;
}

// ---------------------------------------------------------------------------------------------------------------
// Page sections
// ---------------------------------------------------------------------------------------------------------------

struct Page {
  std::ostringstream body;
  std::vector<std::pair<std::string, std::string>> cards;  // headline value, what it is
};

std::string not_run(const std::string& what) {
  return "<p class=\"notrun\">Not run: " + escape(what) + " is missing.</p>";
}

std::string figure(const std::string& svg) { return "<figure>" + svg + "</figure>"; }

std::string display_name(const std::string& key) {
  static const std::map<std::string, std::string> names = {
      {"score", "reward model"}, {"gold", "gold"},
      {"reward", "reward (score − β·KL)"}, {"kl", "KL"},
      {"beta", "β"}, {"policy_loss", "policy loss"},
      {"value_loss", "value loss"}, {"clip_frac", "clip fraction"},
      {"approx_kl", "approx. KL"}, {"entropy", "entropy"},
      {"response_length", "length"}, {"eos_frac", "EOS fraction"},
      {"tokens_per_s", "tokens/s"}, {"rollout_s", "rollout"},
      {"scoring_s", "scoring"}, {"train_s", "train"},
      {"loss", "train"}, {"accuracy", "train"},
      {"eval_loss", "held-out"}, {"eval_accuracy", "held-out"},
  };
  auto it = names.find(key);
  return it != names.end() ? it->second : key;
}

ChartSeries metric_series(const Metrics& m, const std::string& key) {
  ChartSeries s;
  s.name = display_name(key);
  s.color = series_color(key);
  s.dashed = key.rfind("eval_", 0) == 0;
  const auto x = m.xs();
  const auto& y = m.columns.at(key);
  const auto& present = m.present.at(key);
  for (size_t i = 0; i < m.rows; ++i)
    if (present[i]) {  // rows without the key (e.g. train rows for an eval series) are skipped; null is a gap
      s.xs.push_back(x[i]);
      s.ys.push_back(y[i]);
    }
  return s;
}

struct ChartGroup {
  std::string title;
  std::vector<std::string> keys;
};

// Charts for the groups whose keys are present, then one chart for every other numeric key when plot_rest.
std::vector<std::string> metric_charts(const Metrics& m, const std::vector<ChartGroup>& groups, bool plot_rest,
                                       const std::string& title_prefix = "") {
  std::vector<std::string> charts;
  std::set<std::string> used = {m.x_key};
  const std::string x_label = m.x_key.empty() ? "row" : m.x_key;
  for (const auto& g : groups) {
    std::vector<ChartSeries> series;
    for (const auto& k : g.keys) {
      used.insert(k);
      if (m.has(k)) series.push_back(metric_series(m, k));
    }
    if (!series.empty()) charts.push_back(svg_line_chart(title_prefix + g.title, x_label, series));
  }
  if (plot_rest)
    for (const auto& k : m.keys)
      if (!used.count(k) && m.has(k))
        charts.push_back(svg_line_chart(title_prefix + k, x_label, {metric_series(m, k)}));
  return charts;
}

void chart_grid(std::ostringstream& o, const std::vector<std::string>& charts) {
  o << "<div class=\"grid\">";
  for (const auto& c : charts) o << figure(c);
  o << "</div>";
}

// ---- evaluation table -----------------------------------------------------------------------------------------

struct EvalColumn {
  const char* key;
  const char* header;
  int better;  // +1: higher is better (highlighted), 0: no direction
  bool percent;
};
const EvalColumn kEvalColumns[] = {
    {"gold", "gold score ↑", +1, false},
    {"reward_model", "reward-model score ↑", +1, false},
    {"kl_to_sft", "KL to SFT", 0, false},
    {"length", "length (tokens)", 0, false},
    {"win_rate_vs_sft", "win rate vs SFT ↑", +1, true},
};
const std::vector<std::pair<std::string, std::string>> kPolicies = {
    {"base", "base"}, {"sft", "SFT"}, {"best_of_n", "best-of-N"}, {"dpo", "DPO"}, {"ppo", "PPO"}};

std::string fmt_cell(double v, bool percent) {
  if (percent && std::isfinite(v)) return format_number(100 * v, 3) + "%";
  return format_number(v);
}

void section_eval(Page& p, const fs::path& run) {
  auto& o = p.body;
  o << "<section id=\"eval\"><h2>Evaluation on held-out prompts</h2>";
  const fs::path path = run / "eval.json";
  if (!fs::exists(path)) {
    o << not_run("eval.json") << "</section>";
    return;
  }
  const json j = parse_json_file(path);
  const std::string where = path.string();
  RLHF_CHECK(j.is_object() && j.contains("policies") && j["policies"].is_object(), where,
             ": expected an object {\"policies\": {\"sft\": {...}, ...}}");
  const json& pol = j["policies"];
  std::vector<std::pair<std::string, std::string>> rows;  // key, display name
  for (const auto& [k, name] : kPolicies) rows.push_back({k, name});
  for (const auto& [k, v] : pol.items())
    if (std::none_of(kPolicies.begin(), kPolicies.end(), [&](const auto& q) { return q.first == k; }))
      rows.push_back({k, k});
  std::map<std::string, std::map<std::string, double>> values;
  for (const auto& [k, name] : rows) {
    if (!pol.contains(k)) continue;
    RLHF_CHECK(pol[k].is_object(), where, ": policies.", k, " must be an object, got ", pol[k].type_name());
    for (const auto& c : kEvalColumns) values[k][c.key] = number_field(pol[k], c.key, where + ": policies." + k);
  }
  std::map<std::string, double> best;
  for (const auto& c : kEvalColumns) {
    double b = -INFINITY;
    for (const auto& [k, v] : values)
      if (std::isfinite(v.at(c.key))) b = std::max(b, v.at(c.key));
    best[c.key] = b;
  }
  o << "<p class=\"note\">Scored by the hidden gold preference, which the reward model never saw";
  if (j.contains("eval_prompts") && j["eval_prompts"].is_number())
    o << ", on " << format_number(j["eval_prompts"].get<double>(), 6) << " prompts";
  if (j.contains("seed") && j["seed"].is_number()) o << " (seed " << format_number(j["seed"].get<double>(), 12) << ")";
  o << ". Best value per ↑ column highlighted.</p>";
  o << "<div class=\"tablewrap\"><table class=\"eval\"><thead><tr><th>policy</th>";
  for (const auto& c : kEvalColumns) o << "<th>" << c.header << "</th>";
  o << "</tr></thead><tbody>";
  for (const auto& [k, name] : rows) {
    o << "<tr><th>" << escape(name) << "</th>";
    if (!values.count(k)) {
      o << "<td colspan=\"" << std::size(kEvalColumns) << "\" class=\"notrun\">not run</td></tr>";
      continue;
    }
    for (const auto& c : kEvalColumns) {
      const double v = values[k][c.key];
      const bool hi = c.better > 0 && std::isfinite(v) && v == best[c.key] && values.size() > 1;
      o << "<td" << (hi ? " class=\"best\"" : "") << ">" << fmt_cell(v, c.percent) << "</td>";
    }
    o << "</tr>";
  }
  o << "</tbody></table></div></section>";

  // Headlines: PPO against SFT.
  if (values.count("ppo")) {
    const double g = values["ppo"]["gold"];
    std::string what = "PPO gold score";
    if (values.count("sft") && std::isfinite(values["sft"]["gold"])) {
      const double d = g - values["sft"]["gold"];
      what += " (SFT " + format_number(values["sft"]["gold"]) + ", " + (d >= 0 ? "+" : "") + format_number(d) + ")";
    }
    p.cards.push_back({format_number(g), what});
    const double w = values["ppo"]["win_rate_vs_sft"];
    if (std::isfinite(w)) p.cards.push_back({fmt_cell(w, true), "PPO win rate against SFT (gold judge)"});
    const double kl = values["ppo"]["kl_to_sft"];
    if (std::isfinite(kl)) p.cards.push_back({format_number(kl), "PPO KL to SFT (nats)"});
  }
}

// ---- training sections ----------------------------------------------------------------------------------------

void section_ppo(Page& p, const fs::path& run) {
  auto& o = p.body;
  o << "<section id=\"ppo\"><h2>PPO training</h2>";
  const fs::path path = run / "ppo" / "metrics.jsonl";
  if (!fs::exists(path)) {
    o << not_run("ppo/metrics.jsonl") << "</section>";
    return;
  }
  const Metrics m = read_metrics(path);
  // The reward functions' components (--reward A --reward B: reward/<name>, before their weights) in one chart,
  // their servers' extra logs (reward/<name>/<key>) in another, and the held-out evaluation in a third.
  ChartGroup components{"Reward components (each --reward, before its weight)", {}};
  ChartGroup extra{"Reward servers' extra logs", {}};
  ChartGroup held_out{"Held-out evaluation (--eval-prompts)", {}};
  for (const auto& k : m.keys) {
    if (k.rfind("reward/", 0) == 0) (k.find('/', 7) == std::string::npos ? components : extra).keys.push_back(k);
    if (k == "eval_score" || k.rfind("eval_reward/", 0) == 0) held_out.keys.push_back(k);
  }
  std::vector<ChartGroup> groups = {
      {"Reward: reward model (proxy) and gold", {"score", "gold", "reward"}},
      held_out,
      components,
      extra,
      {"KL to the SFT policy", {"kl"}},
      {"KL coefficient β", {"beta"}},
      {"Policy loss", {"policy_loss"}},
      {"Value loss", {"value_loss"}},
      {"Clip fraction", {"clip_frac"}},
      {"Approximate KL, old → new policy", {"approx_kl"}},
      {"Entropy (nats per token)", {"entropy"}},
      {"Response length (tokens)", {"response_length"}},
      {"Fraction of responses ending in EOS", {"eos_frac"}},
      {"Throughput (tokens/s)", {"tokens_per_s"}},
      {"Seconds per iteration", {"rollout_s", "scoring_s", "train_s"}},
  };
  const auto charts = metric_charts(m, groups, /*plot_rest=*/true);
  if (charts.empty()) o << "<p class=\"notrun\">ppo/metrics.jsonl has no numeric series.</p>";
  else {
    int64_t iterations = 0;
    if (m.has("kl"))
      for (size_t r = 0; r < m.rows; ++r) iterations += m.present.at("kl")[r] ? 1 : 0;
    o << "<p class=\"note\">" << iterations << " iterations. The score is what the policy is optimised against (a "
      << "learned reward model, the proxy, or the --reward functions); gold, where there is one, is the hidden "
      << "preference a reward model approximates.</p>";
    chart_grid(o, charts);
  }
  o << "</section>";
}

void section_reward(Page& p, const fs::path& run) {
  auto& o = p.body;
  o << "<section id=\"reward\"><h2>Reward model</h2>";
  const fs::path path = run / "reward" / "metrics.jsonl";
  if (!fs::exists(path)) {
    o << not_run("reward/metrics.jsonl") << "</section>";
    return;
  }
  const Metrics m = read_metrics(path);
  const double eval_acc = m.last("eval_accuracy");
  if (std::isfinite(eval_acc)) p.cards.push_back({fmt_cell(eval_acc, true), "reward-model accuracy on held-out rankings"});
  else if (m.has("accuracy")) p.cards.push_back({fmt_cell(m.last("accuracy"), true), "reward-model accuracy (train)"});
  std::vector<ChartGroup> groups = {{"Reward model: loss", {"loss", "eval_loss"}},
                                    {"Reward model: accuracy", {"accuracy", "eval_accuracy"}}};
  for (const auto& k : m.keys)  // eval_X beside X for the other series
    if (k.rfind("eval_", 0) == 0 && k != "eval_loss" && k != "eval_accuracy")
      groups.push_back({"Reward model: " + k.substr(5), {k.substr(5), k}});
  const auto charts = metric_charts(m, groups, /*plot_rest=*/false);
  if (std::isfinite(eval_acc))
    o << "<p class=\"note\">Final held-out accuracy: <b>" << fmt_cell(eval_acc, true)
      << "</b> (how often the reward model ranks the preferred answer first).</p>";
  if (charts.empty()) o << "<p class=\"notrun\">reward/metrics.jsonl has no loss or accuracy.</p>";
  else chart_grid(o, charts);
  o << "</section>";
}

void section_sft_dpo(Page& p, const fs::path& run) {
  auto& o = p.body;
  o << "<section id=\"sft-dpo\"><h2>SFT and DPO</h2>";
  std::vector<std::string> charts, missing;
  for (const auto& [dir, name] : {std::pair<std::string, std::string>{"sft", "SFT"}, {"dpo", "DPO"}}) {
    const fs::path path = run / dir / "metrics.jsonl";
    if (!fs::exists(path)) {
      missing.push_back(dir + "/metrics.jsonl");
      continue;
    }
    const Metrics m = read_metrics(path);
    for (auto& c : metric_charts(m, {{"loss", {"loss", "eval_loss"}}, {"accuracy", {"accuracy", "eval_accuracy"}}},
                                 /*plot_rest=*/false, name + " "))
      charts.push_back(std::move(c));
  }
  for (const auto& f : missing) o << not_run(f);
  if (!charts.empty()) chart_grid(o, charts);
  o << "</section>";
}

void section_overoptimize(Page& p, const fs::path& run) {
  const fs::path path = run / "overoptimize.jsonl";
  if (!fs::exists(path)) return;  // an optional experiment: no section at all unless it ran
  auto& o = p.body;
  o << "<section id=\"overoptimize\"><h2>Over-optimisation: proxy against gold</h2>";
  const auto rows = read_jsonl(path);
  struct Point {
    double iteration, kl, proxy, gold;
  };
  std::vector<Point> pts;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string where = path.string() + ":" + std::to_string(i + 1);
    pts.push_back({number_field(rows[i], "iteration", where), number_field(rows[i], "kl", where),
                   number_field(rows[i], "proxy", where), number_field(rows[i], "gold", where)});
  }
  std::stable_sort(pts.begin(), pts.end(), [](const Point& a, const Point& b) { return a.kl < b.kl; });
  ChartSeries proxy{"proxy (reward model)", {}, {}, series_color("proxy")}, gold{"gold", {}, {}, series_color("gold")};
  const Point* peak = nullptr;
  for (const auto& q : pts) {
    const double x = std::isfinite(q.kl) ? std::sqrt(std::max(q.kl, 0.0)) : NAN;
    proxy.xs.push_back(x), proxy.ys.push_back(q.proxy);
    gold.xs.push_back(x), gold.ys.push_back(q.gold);
    if (std::isfinite(x) && std::isfinite(q.gold) && (!peak || q.gold > peak->gold)) peak = &q;
  }
  ChartOptions opt;
  opt.width = 640;
  opt.height = 300;
  if (peak) opt.markers.push_back({std::sqrt(std::max(peak->kl, 0.0)), "gold peaks at KL " + format_number(peak->kl)});
  o << "<p class=\"note\">Rewards against √KL from the SFT policy, as in Gao et al. (2022), who found that "
       "the proxy keeps rising as the policy exploits the reward model while the gold reward peaks and then falls.";
  if (peak)
    o << " Here gold peaks at <b>KL " << format_number(peak->kl) << "</b> (√KL " << format_number(std::sqrt(
                                                                                       std::max(peak->kl, 0.0)))
      << (std::isfinite(peak->iteration) ? ", iteration " + format_number(peak->iteration, 6) : std::string())
      << ") with gold " << format_number(peak->gold) << "; at the largest KL gold is "
      << format_number(pts.back().gold) << " and the proxy " << format_number(pts.back().proxy) << ".";
  o << "</p><div class=\"wide\">" << figure(svg_line_chart("Proxy and gold reward against √KL", "√KL(policy ‖ SFT)",
                                                         {proxy, gold}, opt))
    << "</div></section>";
}

void section_samples(Page& p, const fs::path& run) {
  auto& o = p.body;
  o << "<section id=\"samples\"><h2>Samples: SFT and PPO on the same prompts</h2>";
  const fs::path path = run / "samples.jsonl";
  if (!fs::exists(path)) {
    o << not_run("samples.jsonl") << "</section>";
    return;
  }
  const auto rows = read_jsonl(path);
  constexpr size_t kMaxSamples = 16;  // enough to get a feel; the file has them all
  if (rows.size() > kMaxSamples)
    o << "<p class=\"note\">The first " << kMaxSamples << " of " << rows.size() << " samples.</p>";
  o << "<div class=\"tablewrap\"><table class=\"samples\"><thead><tr><th>prompt</th><th>SFT</th><th>PPO</th></tr></thead><tbody>";
  for (size_t i = 0; i < std::min(rows.size(), kMaxSamples); ++i) {
    const std::string where = path.string() + ":" + std::to_string(i + 1);
    const double gs = number_field(rows[i], "sft_gold", where), gp = number_field(rows[i], "ppo_gold", where);
    auto answer = [&](const std::string& text, double g, double other) {
      std::string cls = std::isfinite(g) && std::isfinite(other) && g > other ? " class=\"better\"" : "";
      std::string s = "<td" + cls + "><div class=\"text\">" + escape(text) + "</div>";
      if (std::isfinite(g)) s += "<div class=\"gold\">gold " + format_number(g) + "</div>";
      return s + "</td>";
    };
    o << "<tr><td><div class=\"text\">" << escape(string_field(rows[i], "prompt", where)) << "</div></td>"
      << answer(string_field(rows[i], "sft", where), gs, gp) << answer(string_field(rows[i], "ppo", where), gp, gs)
      << "</tr>";
  }
  o << "</tbody></table></div></section>";
}

std::string format_seconds(double s) {
  if (!std::isfinite(s)) return "\u2014";
  char buf[48];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1f s", s);
  else std::snprintf(buf, sizeof buf, "%d min %02d s", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return buf;
}

void section_stages(Page& p, const fs::path& run) {
  auto& o = p.body;
  o << "<section id=\"stages\"><h2>Stages</h2>";
  const fs::path path = run / "stages.json";
  if (!fs::exists(path)) {
    o << not_run("stages.json") << "</section>";
    return;
  }
  const json j = parse_json_file(path);
  RLHF_CHECK(j.is_array(), path.string(), ": expected an array [{\"stage\", \"seconds\", \"command\"}, ...], got ",
             j.type_name());
  double total = 0;
  o << "<div class=\"tablewrap\"><table class=\"stages\"><thead><tr><th>stage</th><th>time</th><th>command</th></tr></thead><tbody>";
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string where = path.string() + ": element " + std::to_string(i);
    RLHF_CHECK(j[i].is_object(), where, ": expected an object, got ", j[i].type_name());
    const double s = number_field(j[i], "seconds", where);
    if (std::isfinite(s)) total += s;
    o << "<tr><td>" << escape(string_field(j[i], "stage", where)) << "</td><td class=\"num\">" << format_seconds(s)
      << "</td><td><code>" << escape(string_field(j[i], "command", where)) << "</code></td></tr>";
  }
  o << "<tr class=\"total\"><td>total</td><td class=\"num\">" << format_seconds(total) << "</td><td></td></tr>";
  o << "</tbody></table></div></section>";
  p.cards.push_back({format_seconds(total), "total time for " + std::to_string(j.size()) + " stages"});
}

const char* kStyle = R"css(
:root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f6f7f9; --card: #fff; --good: #dcfce7; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 28px 24px 56px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
.lede { color: #374151; max-width: 90ch; margin: 6px 0 0; }
.run { color: var(--muted); font-size: 13px; margin: 0; }
.note { color: #4b5563; max-width: 100ch; margin: 4px 0 12px; }
.notrun { color: var(--muted); font-style: italic; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 12px; margin: 20px 0 4px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; }
.card .v { font-size: 28px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .k { color: var(--muted); font-size: 13px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 14px; }
.wide { max-width: 820px; }
figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 6px; }
svg.chart { display: block; width: 100%; height: auto; font-family: inherit; }
.tablewrap { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; background: var(--card); border: 1px solid var(--line); font-variant-numeric: tabular-nums; }
th, td { padding: 7px 12px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: #f3f4f6; font-size: 13px; color: #374151; }
table.eval td { text-align: right; }
td.best { background: var(--good); font-weight: 650; }
table.samples { width: 100%; table-layout: fixed; }
table.samples .text { white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 13px; }
table.samples td.better { background: #f0fdf4; }
.gold { color: var(--muted); font-size: 12px; margin-top: 4px; }
table.stages code { font-size: 12.5px; overflow-wrap: anywhere; }
td.num { text-align: right; white-space: nowrap; }
tr.total td { font-weight: 650; }
footer { color: var(--muted); font-size: 12px; margin-top: 40px; }
@media (max-width: 600px) { main { padding: 16px 12px 40px; } .cards { grid-template-columns: 1fr 1fr; } .card .v { font-size: 22px; } .grid { grid-template-columns: 1fr; } th, td { padding: 6px 8px; } }
)css";

}  // namespace

std::string render_report(const std::string& run_dir) {
  const fs::path run(run_dir);
  RLHF_CHECK(fs::is_directory(run), run_dir, ": not a folder; hint: pass the run folder written by `rlhf demo --out DIR`");
  Page p;
  // Sections fill p.body and p.cards; the cards are shown first.
  section_eval(p, run);
  section_ppo(p, run);
  section_overoptimize(p, run);
  section_reward(p, run);
  section_sft_dpo(p, run);
  section_samples(p, run);
  section_stages(p, run);

  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<title>RLHF run report: " << escape(fs::absolute(run).lexically_normal().filename().string()) << "</title>"
    << "<style>" << kStyle << "</style></head><body><main>";
  o << "<h1>RLHF run report</h1><p class=\"run\">" << escape(fs::absolute(run).lexically_normal().string()) << "</p>";
  o << "<p class=\"lede\">What you are looking at: a policy fine-tuned on demonstrations (SFT), a reward model trained "
       "on ranked answers, and that policy optimised against the reward model with PPO (DPO and best-of-N for "
       "comparison), all evaluated on held-out prompts by a hidden <b>gold</b> preference the reward model never "
       "saw. RLHF works when the gold score rises, not just the reward-model score.</p>";
  if (!p.cards.empty()) {
    o << "<div class=\"cards\">";
    for (const auto& [v, k] : p.cards)
      o << "<div class=\"card\"><div class=\"v\">" << escape(v) << "</div><div class=\"k\">" << escape(k) << "</div></div>";
    o << "</div>";
  }
  o << p.body.str();
  o << "<footer>Written by <code>rlhf report</code>. One self-contained file: inline SVG and CSS, no scripts.</footer>";
  o << "</main></body></html>\n";
  return o.str();
}

std::string write_report(const std::string& run_dir, const std::string& out_html) {
  const std::string out = out_html.empty() ? (fs::path(run_dir) / "report.html").string() : out_html;
  const std::string page = render_report(run_dir);
  const std::string tmp = out + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    RLHF_CHECK(f, tmp, ": cannot open for writing; hint: does the folder exist and is it writable?");
    f << page;
    f.close();
    RLHF_CHECK(f, tmp, ": write failed (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, out, ec);
  RLHF_CHECK(!ec, "cannot move ", tmp, " to ", out, ": ", ec.message());
  return out;
}

}  // namespace rlhf
