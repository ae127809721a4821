#include "text/pod_text.h"

#include <gtest/gtest.h>

using hsa::data::pod_to_text;

TEST(PodToText, HeadingsParagraphsItemsAndCodes) {
  const std::string pod =
      "=encoding utf8\n\n"
      "=head1 NAME\n\n"
      "perlsyn - Perl syntax\n\n"
      "=head2 Declarations\n\n"
      "The B<only> things you I<need> to declare\n"
      "are C<< $a->b >> and L<formats|perlform> and L<perlfunc/\"open\">, with E<lt>E<gt> X<index>Z<>here.\n\n"
      "    my $verbatim = 'code';\n"
      "    print $verbatim;\n\n"
      "=over 4\n\n"
      "=item *\n\n"
      "Bullet text.\n\n"
      "=item B<-x>\n\n"
      "Option text.\n\n"
      "=back\n\n"
      "=begin html\n\n"
      "<p>raw html</p>\n\n"
      "=end html\n\n"
      "=cut\n\n"
      "sub code { }\n\n"
      "=head1 AFTER\n\n"
      "Back in pod.\n";
  EXPECT_EQ(pod_to_text(pod),
            "NAME\n"
            "perlsyn - Perl syntax\n"
            "Declarations\n"
            "The only things you need to declare are $a->b and formats and perlfunc open, with <> here.\n"
            "Bullet text.\n"
            "-x\n"
            "Option text.\n"
            "AFTER\n"
            "Back in pod.\n");
}
