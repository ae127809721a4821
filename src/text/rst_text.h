// reStructuredText (the Linux kernel's Documentation/*.rst) to plain text for the LM corpus.
#pragma once
#include <string>
#include <string_view>

namespace hsa::data {

// Text of an rst document, one line per paragraph: the lines of a paragraph are joined with spaces; a blank
// line, a change of indentation or a list item starts a new one. Section over/underlines, grid and simple table
// borders are dropped (a title stays as its own line). Literal blocks (the indented block after a paragraph
// ending in "::"; the paragraph keeps one ':' or, for a lone "::", nothing) and directives with their indented
// bodies (".. code-block::", ".. toctree::", ".. kernel-doc::", comments, targets, footnotes) are dropped,
// except the admonitions (note, warning, important, tip, hint, caution, attention, danger, admonition) whose
// bodies are kept. Grid table rows ('|' or '+' first) are dropped. Inline markup keeps its text: ``literal``,
// *emphasis*, **strong**, `text <url>`_ and :role:`text <target>` give text, :role:`text` and `text`_ give
// text, and the escape "\ " is removed. List bullets ("- ", "* ", "+ ") are removed. Never throws.
std::string rst_to_text(std::string_view rst);

}  // namespace hsa::data
