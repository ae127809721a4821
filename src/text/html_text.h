// HTML to plain text for the filler corpus: the readable prose of a documentation page, one line per block.
#pragma once
#include <string>
#include <string_view>

namespace hsa::data {

// Text of `html`, one line per block element (p, li, div, h1..h6, dt, dd, br, ...); inline elements (a, code,
// em, span, ...) stay inside their line. Dropped with their contents: head, script, style, pre, table, nav,
// svg, form and any element with role="navigation" or role="search" (navigation, code listings and package
// tables are not prose). Comments, doctype and processing instructions are dropped. Entities (&amp;, &#8212;,
// &#x2019;, &nbsp;, ...) are decoded to UTF-8; unknown named entities stay as written. Whitespace inside a
// line is collapsed to single spaces; lines are trimmed; empty lines are left out. Never throws on malformed
// input: an unclosed tag or element ends the text.
std::string html_to_text(std::string_view html);

}  // namespace hsa::data
