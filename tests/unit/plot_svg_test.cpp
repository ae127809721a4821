#include "eval/plot_svg.h"

#include <hsa/error.h>

#include <gtest/gtest.h>

#include <regex>

using namespace hsa::eval;

namespace {

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

std::vector<std::string> polyline_points(const std::string& svg) {
  std::vector<std::string> out;
  const std::regex re("<polyline points=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1]);
  return out;
}

}  // namespace

TEST(AccuracyPlotSvg, OnePolylinePerSeriesWithAxesLegendAndTitle) {
  const std::vector<int64_t> lengths = {1024, 4096, 16384, 1 << 20};
  const std::vector<PlotSeries> series = {
      {"niah_single_1", {100, 90, 80, 70}}, {"vt", {50, 40, 30, 20}}, {"cwe", {10, 0, 0, 0}}};
  const std::string svg = accuracy_plot_svg("RULER: tiny <model> & co", lengths, series);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(count_of(svg, "<polyline "), 3u);
  EXPECT_EQ(count_of(svg, "<circle "), 3u * 4u + 3u);  // markers + one per legend entry
  EXPECT_NE(svg.find(">context length (tokens, log scale)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">accuracy (%)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">RULER: tiny &lt;model&gt; &amp; co</text>"), std::string::npos);
  for (const char* label : {">1K<", ">4K<", ">16K<", ">1M<", ">0<", ">20<", ">100<", ">niah_single_1<", ">vt<"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  // Every opened element is closed or self-closing: as many '<' as '>' and matched <g>/<svg>.
  EXPECT_EQ(count_of(svg, "<"), count_of(svg, ">"));
  EXPECT_EQ(count_of(svg, "<g>"), count_of(svg, "</g>"));
}

TEST(AccuracyPlotSvg, MapsLengthsLog2AndPercentLinearly) {
  const PlotLayout L;  // plot area x in [80, 740], y in [50, 470]
  const std::vector<int64_t> lengths = {1024, 4096, 16384};
  const std::string svg = accuracy_plot_svg("t", lengths, {{"a", {0, 50, 100}}, {"b", {100, 25, 150}}});
  const std::vector<std::string> points = polyline_points(svg);
  ASSERT_EQ(points.size(), 2u);
  // 4096 is halfway between 1024 and 16384 on a log2 axis; 150% is clamped to 100%.
  EXPECT_EQ(points[0], "80.00,470.00 410.00,260.00 740.00,50.00");
  EXPECT_EQ(points[1], "80.00,50.00 410.00,365.00 740.00,50.00");
  EXPECT_DOUBLE_EQ(plot_x(2048, lengths, L), 80 + 660.0 / 4);
  EXPECT_DOUBLE_EQ(plot_y(75, L), 470 - 0.75 * 420);
  EXPECT_DOUBLE_EQ(plot_x(4096, {4096}, L), 410);  // a single length sits in the middle
}

TEST(AccuracyPlotSvg, RejectsBadInput) {
  EXPECT_THROW(accuracy_plot_svg("t", {}, {}), hsa::Error);
  EXPECT_THROW(accuracy_plot_svg("t", {4096, 1024}, {}), hsa::Error);
  EXPECT_THROW(accuracy_plot_svg("t", {1024, 4096}, {{"a", {1.0}}}), hsa::Error);
}

TEST(LengthLabel, PowersOfTwoAbbreviated) {
  EXPECT_EQ(length_label(1024), "1K");
  EXPECT_EQ(length_label(65536), "64K");
  EXPECT_EQ(length_label(1 << 20), "1M");
  EXPECT_EQ(length_label(16 << 20), "16M");
  EXPECT_EQ(length_label(1000), "1000");
  EXPECT_EQ(length_label(512), "512");
  EXPECT_EQ(length_label(3000000), "3000000");
}
