// A small self-contained SVG line chart of accuracy (0-100%) against context length, readable in any browser
// without gnuplot: log2 x axis with one tick per length, one polyline with circle markers per series, a
// legend on the right, axis labels and a title.
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

// The whole SVG document. lengths must be non-empty, positive and increasing; every series has one value
// per length. Names and title are XML-escaped.
std::string accuracy_plot_svg(const std::string& title, const std::vector<int64_t>& lengths,
                              const std::vector<PlotSeries>& series, const PlotLayout& layout = {});

}  // namespace hsa::eval
