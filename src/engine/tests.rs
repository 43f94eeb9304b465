//! Engine unit tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn builtin_lexicon_and_bank_parse() {
    let mut lex = Lexicon::default();
    if let Err(e) = lex.parse_into(BUILTIN_LEXICON) {
        panic!("{e}");
    }
    questions::parse_bank(BUILTIN_QUESTIONS).unwrap();
}
