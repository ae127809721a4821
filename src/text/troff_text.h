// Manual pages (troff with the man(7) macros, as in Debian's manpages packages) to plain text for the LM corpus.
#pragma once
#include <string>
#include <string_view>

namespace hsa::data {

// Text of a man page, one line per paragraph: filled text lines are joined with spaces, and a paragraph ends
// at a blank line or a break macro (.PP .P .LP .TP .IP .HP .sp .br .RS .RE .SH .SS). Section headings (.SH,
// .SS) and tags (.TP's next line, .IP's argument) are lines of their own. Font macros (.B .I .BR .IR ...) keep
// their text: .B/.I join their arguments with spaces, the alternating ones (.BR .IR .RB ...) without. Dropped:
// comments, the title (.TH), no-fill blocks (.nf/.fi, .EX/.EE: synopses and code), tables (.TS/.TE), macro
// definitions (.de to ..), conditionals and every other request. Escapes: fonts, sizes, motions and
// zero-width ones are removed; \- \(em \(en \(hy to '-', \(lq \(rq \(dq to '"', \(aq \(oq \(cq to '\'',
// \(bu to '*', \e to '\\', \~ and '\ ' to a space; other special characters are removed. A page that is only
// `.so other-page` gives "". Never throws.
std::string man_to_text(std::string_view troff);

}  // namespace hsa::data
