#include "text/rst_text.h"

#include <gtest/gtest.h>

using hsa::data::rst_to_text;

TEST(RstToText, TitlesParagraphsListsAndInlineMarkup) {
  const std::string rst =
      ".. SPDX-License-Identifier: GPL-2.0\n"
      "\n"
      "=====\n"
      "Title\n"
      "=====\n"
      "\n"
      "A paragraph with ``literal``, *emphasis*, **strong**,\n"
      "a `link <https://example.org>`_ and :ref:`a role <target>` and :c:func:`kmalloc`.\n"
      "\n"
      "Section\n"
      "-------\n"
      "\n"
      "- first item\n"
      "  continued\n"
      "- second item\n"
      "\n"
      "1. numbered item\n";
  EXPECT_EQ(rst_to_text(rst),
            "Title\n"
            "A paragraph with literal, emphasis, strong, a link and a role and kmalloc.\n"
            "Section\n"
            "first item continued\n"
            "second item\n"
            "1. numbered item\n");
}

TEST(RstToText, DropsLiteralBlocksDirectivesAndTablesKeepsAdmonitions) {
  const std::string rst =
      "Use it like this::\n"
      "\n"
      "    int x = f();\n"
      "\n"
      "    return x;\n"
      "\n"
      "After the code.\n"
      "\n"
      ".. code-block:: c\n"
      "\n"
      "   dropped();\n"
      "\n"
      ".. note::\n"
      "   Kept note text.\n"
      "\n"
      "+-----+-----+\n"
      "| a   | b   |\n"
      "+-----+-----+\n"
      "\n"
      "Lone marker:\n"
      "\n"
      "::\n"
      "\n"
      "    also code\n"
      "\n"
      "End.\n";
  EXPECT_EQ(rst_to_text(rst),
            "Use it like this:\n"
            "After the code.\n"
            "Kept note text.\n"
            "Lone marker:\n"
            "End.\n");
}
