// Small self-contained SVG line charts readable in any browser without gnuplot: a log2 x axis of token counts
// (context lengths, positions) with one tick per given value, a linear y axis, one polyline with circle
// markers per series, a legend on the right, axis labels and a title. accuracy_plot_svg is the RULER chart
// (accuracy 0-100% against context length); line_plot_svg the general one (e.g. loss against position).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hsa::eval {

struct PlotSeries {
  std::string name;
  std::vector<double> values;  // one per length, in percent; clamped to [0, 100] when drawn
};

// Geometry of the chart, in SVG user units; the plot area is the rectangle the data is drawn in.
struct PlotLayout {
  double width = 960, height = 540;
  double left = 80, top = 50, right = 740, bottom = 470;  // plot area: x in [left, right], y in [top, bottom]
};

// Where a point lands: the smallest length at layout.left, the largest at layout.right, log2-spaced between
// (a single length sits in the middle); 0% at layout.bottom, 100% at layout.top.
double plot_x(int64_t length, const std::vector<int64_t>& lengths, const PlotLayout& layout = {});
double plot_y(double percent, const PlotLayout& layout = {});

// "1K", "4K", "1M", "16M" for powers of two from 1024 on, the number itself otherwise.
std::string length_label(int64_t length);

struct LineSeries {
  std::string name;
  std::vector<int64_t> x;  // positive; drawn on the chart's log2 axis
  std::vector<double> y;   // one per x; clamped to the chart's y range when drawn
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<int64_t> x_ticks;  // non-empty, positive, increasing: the axis spans the first to the last
  double y_min = 0, y_max = 100;  // y_min < y_max
  std::vector<double> y_ticks;   // grid lines, labelled with the shortest form of the value ("20", "2.5")
};

// The whole SVG document; throws hsa::Error on an empty or unordered x_ticks, an empty y range or a series
// whose x and y differ in length. Names and labels are XML-escaped.
std::string line_plot_svg(const LineChart& chart, const std::vector<LineSeries>& series,
                          const PlotLayout& layout = {});

// Where a value lands on a chart: x on the log2 axis from x_ticks.front() (layout.left) to x_ticks.back()
// (layout.right; a single tick sits in the middle), y linear from y_min (layout.bottom) to y_max (layout.top).
double chart_x(int64_t x, const std::vector<int64_t>& x_ticks, const PlotLayout& layout = {});
double chart_y(double y, double y_min, double y_max, const PlotLayout& layout = {});

// The whole SVG document. lengths must be non-empty, positive and increasing; every series has one value
// per length. Names and title are XML-escaped.
std::string accuracy_plot_svg(const std::string& title, const std::vector<int64_t>& lengths,
                              const std::vector<PlotSeries>& series, const PlotLayout& layout = {});

}  // namespace hsa::eval
