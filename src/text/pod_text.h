// Perl's POD documentation (perl-doc's *.pod files) to plain text for the LM corpus.
#pragma once
#include <string>
#include <string_view>

namespace hsa::data {

// Text of a POD document, one line per paragraph. Ordinary paragraphs are joined into one line; =head1..=head4
// and =item give a line holding their text (bullet items "=item *" give none: the item's paragraph follows);
// verbatim paragraphs (indented: code) are dropped, and so are =begin/=end and =for blocks, =over, =back,
// =encoding, =pod and text after =cut until the next command. Formatting codes keep their text: B<> I<> C<>
// F<> S<>, L<text|target> gives text, L<name> and L<name/"section"> give name and section without quotes;
// E<lt> E<gt> E<verbar> E<sol> E<quot> E<amp> and E<number> give their character; X<> and Z<> give nothing.
// Multi-bracket codes (C<< a->b >>) are handled. Never throws.
std::string pod_to_text(std::string_view pod);

}  // namespace hsa::data
