#include "eval/plot_svg.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace hsa::eval {
namespace {

// Distinct colours (Tableau-like), cycled when there are more series.
constexpr const char* kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a"};

std::string escaped(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

double chart_x(int64_t x, const std::vector<int64_t>& x_ticks, const PlotLayout& layout) {
  const double lo = std::log2(static_cast<double>(x_ticks.front()));
  const double hi = std::log2(static_cast<double>(x_ticks.back()));
  if (hi <= lo) return (layout.left + layout.right) / 2;
  return layout.left + (std::log2(static_cast<double>(x)) - lo) / (hi - lo) * (layout.right - layout.left);
}

double chart_y(double y, double y_min, double y_max, const PlotLayout& layout) {
  const double v = std::clamp(y, y_min, y_max);
  return layout.bottom - (v - y_min) / (y_max - y_min) * (layout.bottom - layout.top);
}

double plot_x(int64_t length, const std::vector<int64_t>& lengths, const PlotLayout& layout) {
  return chart_x(length, lengths, layout);
}

double plot_y(double percent, const PlotLayout& layout) { return chart_y(percent, 0, 100, layout); }

std::string length_label(int64_t length) {
  const bool power_of_two = length > 0 && (length & (length - 1)) == 0;
  if (power_of_two && length >= (int64_t{1} << 20)) return fmt::format("{}M", length >> 20);
  if (power_of_two && length >= 1024) return fmt::format("{}K", length >> 10);
  return std::to_string(length);
}

std::string line_plot_svg(const LineChart& c, const std::vector<LineSeries>& series, const PlotLayout& L) {
  HSA_CHECK(!c.x_ticks.empty(), "line_plot_svg: no x ticks");
  for (size_t i = 0; i < c.x_ticks.size(); ++i)
    HSA_CHECK(c.x_ticks[i] > 0 && (i == 0 || c.x_ticks[i] > c.x_ticks[i - 1]),
              "line_plot_svg: x ticks must be positive and increasing, got {} at index {}", c.x_ticks[i], i);
  HSA_CHECK(c.y_min < c.y_max, "line_plot_svg: y range [{}, {}] is empty", c.y_min, c.y_max);
  for (const LineSeries& s : series) {
    HSA_CHECK(s.x.size() == s.y.size(), "line_plot_svg: series '{}' has {} x values and {} y values", s.name,
              s.x.size(), s.y.size());
    for (int64_t x : s.x) HSA_CHECK(x > 0, "line_plot_svg: series '{}' has x = {}, expected > 0", s.name, x);
  }

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"13\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"28\" text-anchor=\"middle\" font-size=\"17\">{3}</text>\n",
      L.width, L.height, (L.left + L.right) / 2, escaped(c.title));
  for (double t : c.y_ticks) {
    const double y = chart_y(t, c.y_min, c.y_max, L);
    svg += fmt::format("<line x1=\"{}\" y1=\"{:.2f}\" x2=\"{}\" y2=\"{:.2f}\" stroke=\"#dddddd\"/>\n", L.left, y,
                       L.right, y);
    svg += fmt::format("<text x=\"{}\" y=\"{:.2f}\" text-anchor=\"end\">{:g}</text>\n", L.left - 8, y + 4, t);
  }
  for (int64_t tick : c.x_ticks) {
    const double x = chart_x(tick, c.x_ticks, L);
    svg += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1}\" x2=\"{0:.2f}\" y2=\"{2}\" stroke=\"#dddddd\"/>\n", x, L.top,
                       L.bottom);
    svg += fmt::format("<text x=\"{:.2f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x, L.bottom + 18,
                       length_label(tick));
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n", L.left,
                     L.top, L.right - L.left, L.bottom - L.top);
  svg += fmt::format("<text x=\"{:.2f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (L.left + L.right) / 2,
                     L.bottom + 42, escaped(c.x_label));
  svg += fmt::format(
      "<text x=\"20\" y=\"{0:.2f}\" text-anchor=\"middle\" transform=\"rotate(-90 20 {0:.2f})\">{1}</text>\n",
      (L.top + L.bottom) / 2, escaped(c.y_label));
  for (size_t s = 0; s < series.size(); ++s) {
    const char* colour = kColours[s % std::size(kColours)];
    std::string points;
    std::string markers;
    for (size_t i = 0; i < series[s].x.size(); ++i) {
      const double x = chart_x(series[s].x[i], c.x_ticks, L), y = chart_y(series[s].y[i], c.y_min, c.y_max, L);
      points += fmt::format("{}{:.2f},{:.2f}", i ? " " : "", x, y);
      markers += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"3.5\" fill=\"{}\"/>\n", x, y, colour);
    }
    svg += fmt::format("<g><title>{}</title>\n<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" "
                       "stroke-width=\"2\"/>\n{}</g>\n",
                       escaped(series[s].name), points, colour, markers);
    const double ly = L.top + 10 + 20.0 * static_cast<double>(s);
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1:.2f}\" x2=\"{2}\" y2=\"{1:.2f}\" stroke=\"{3}\" stroke-width=\"2\"/>"
                       "<circle cx=\"{4}\" cy=\"{1:.2f}\" r=\"3.5\" fill=\"{3}\"/>"
                       "<text x=\"{5}\" y=\"{6:.2f}\">{7}</text>\n",
                       L.right + 20, ly, L.right + 44, colour, L.right + 32, L.right + 52, ly + 4,
                       escaped(series[s].name));
  }
  svg += "</svg>\n";
  return svg;
}

std::string accuracy_plot_svg(const std::string& title, const std::vector<int64_t>& lengths,
                              const std::vector<PlotSeries>& series, const PlotLayout& L) {
  HSA_CHECK(!lengths.empty(), "accuracy_plot_svg: no lengths");
  for (size_t i = 0; i < lengths.size(); ++i)
    HSA_CHECK(lengths[i] > 0 && (i == 0 || lengths[i] > lengths[i - 1]),
              "accuracy_plot_svg: lengths must be positive and increasing, got {} at index {}", lengths[i], i);
  for (const PlotSeries& s : series)
    HSA_CHECK(s.values.size() == lengths.size(), "accuracy_plot_svg: series '{}' has {} values for {} lengths",
              s.name, s.values.size(), lengths.size());
  LineChart chart{title, "context length (tokens, log scale)", "accuracy (%)", lengths, 0, 100, {0, 20, 40, 60, 80, 100}};
  std::vector<LineSeries> lines;
  for (const PlotSeries& s : series) lines.push_back({s.name, lengths, s.values});
  return line_plot_svg(chart, lines, L);
}

}  // namespace hsa::eval
