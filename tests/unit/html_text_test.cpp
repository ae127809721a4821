#include "text/html_text.h"

#include <gtest/gtest.h>

using hsa::data::html_to_text;

TEST(HtmlToText, BlocksBecomeLinesAndInlineMarkupStaysInTheLine) {
  const std::string html =
      "<html><body><h1>Title  of\n the page</h1>\n"
      "<p>The <code class=\"x\"><span class=\"pre\">len()</span></code> function returns the\n   "
      "<em>length</em> of an object.</p><ul><li>first item</li><li>second<br/>line</li></ul>"
      "<div>outer<div>inner</div>tail</div></body></html>";
  EXPECT_EQ(html_to_text(html),
            "Title of the page\n"
            "The len() function returns the length of an object.\n"
            "first item\nsecond\nline\nouter\ninner\ntail\n");
}

TEST(HtmlToText, DropsHeadCodeTablesAndNavigationWithTheirContents) {
  const std::string html =
      "<!DOCTYPE html><html><head><title>t</title><script>if (a<b) x = '</div>';</script>"
      "<style>p { color: red }</style></head><body>"
      "<div class=\"related\" role=\"navigation\"><div><h3>Navigation</h3></div><a>next</a></div>"
      "<nav><p>menu</p></nav>"
      "<p>Kept before.</p><pre>$ apt-get install foo\n</pre>"
      "<table><tr><td>pkg</td><td>1.0</td></tr><tr><td><table><tr><td>nested</td></tr></table></td></tr></table>"
      "<!-- a comment <p>hidden</p> --><p>Kept after.</p></body></html>";
  EXPECT_EQ(html_to_text(html), "Kept before.\nKept after.\n");
}

TEST(HtmlToText, DecodesEntities) {
  EXPECT_EQ(html_to_text("<p>a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#39; &#x41;&#66;</p>"),
            "a & b <c> \"d\" 'e' AB\n");
  EXPECT_EQ(html_to_text("<p>x&nbsp;&nbsp;y &mdash; z&hellip; &rsquo;</p>"),
            "x y \xE2\x80\x94 z\xE2\x80\xA6 \xE2\x80\x99\n");
  // Not entities: kept as written.
  EXPECT_EQ(html_to_text("<p>AT&T &unknown; &#xZZ; & done</p>"), "AT&T &unknown; &#xZZ; & done\n");
}

TEST(HtmlToText, AttributesWithAngleBracketsAndMalformedEndings) {
  EXPECT_EQ(html_to_text("<p title=\"a > b\">text</p>"), "text\n");
  EXPECT_EQ(html_to_text("<p>complete</p><p>unclosed <a href=\"x"), "complete\nunclosed\n");
  EXPECT_EQ(html_to_text("<p>before</p><pre>never closed"), "before\n");
  EXPECT_EQ(html_to_text(""), "");
}
