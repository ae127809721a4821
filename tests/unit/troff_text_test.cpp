#include "text/troff_text.h"

#include <gtest/gtest.h>

using hsa::data::man_to_text;

TEST(ManToText, ParagraphsHeadingsFontsAndEscapes) {
  const std::string page =
      ".\\\" Copyright comment\n"
      ".TH OPEN 2 2023-02-05 \"Linux man-pages\"\n"
      ".SH NAME\n"
      "open, creat \\- open a file\n"
      ".SH DESCRIPTION\n"
      "The\n"
      ".BR open ()\n"
      "call opens\n"
      ".IR pathname .\n"
      "It is \\fBfast\\fP and \\(lqsafe\\(rq \\(em mostly.\n"
      ".PP\n"
      "Second paragraph with a\\ tie and \\e backslash.\n"
      ".SS \"Two words\"\n"
      "Last.\n";
  EXPECT_EQ(man_to_text(page),
            "NAME\n"
            "open, creat - open a file\n"
            "DESCRIPTION\n"
            "The open() call opens pathname. It is fast and \"safe\" - mostly.\n"
            "Second paragraph with a tie and \\ backslash.\n"
            "Two words\n"
            "Last.\n");
}

TEST(ManToText, DropsNoFillBlocksTablesMacrosAndKeepsTags) {
  const std::string page =
      ".SH SYNOPSIS\n"
      ".nf\n"
      ".B #include <fcntl.h>\n"
      "int open(const char *p);\n"
      ".fi\n"
      ".TS\n"
      "l l.\n"
      "a\tb\n"
      ".TE\n"
      ".de XX\n"
      "macro body\n"
      "..\n"
      ".TP\n"
      ".B O_APPEND\n"
      "The file is opened in append mode.\n"
      ".IP \\(bu 2\n"
      "A bullet item.\n"
      ".EX\n"
      "code();\n"
      ".EE\n"
      "After the\n"
      "example, continued \\\n"
      "line.\n";
  EXPECT_EQ(man_to_text(page),
            "SYNOPSIS\n"
            "O_APPEND\n"
            "The file is opened in append mode.\n"
            "A bullet item.\n"
            "After the example, continued line.\n");
}

TEST(ManToText, SoLinkPageIsEmpty) { EXPECT_EQ(man_to_text(".so man2/open.2\n"), ""); }
