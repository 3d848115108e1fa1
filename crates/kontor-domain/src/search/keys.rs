//! What a search index stores of a value, defined next to the matcher so the two agree.
//!
//! - [`value_key`]: the key a stored value is found and sorted under. Byte order of keys is
//!   the matcher's order ([`super::compare`] for values that compare, [`super::sort_order`]
//!   for all): numbers and instants as fixed-width order-preserving hex after a `0`, values
//!   of those types that do not parse as `1` and their folded text, everything else its
//!   folded text. Keys are cut at [`KEY_BYTES`].
//! - [`tokens`]: the folded value from each word start on, cut at [`TOKEN_BYTES`]: a
//!   `CONTAINS_TOKEN` word, a wildcard pattern's literal part and a `query` word are each a
//!   prefix of one of them whenever they match.

use crate::property::PropertyType;
use crate::time;
use crate::value::as_number;
use std::collections::BTreeSet;

/// Longest key kept of a value (bytes, cut on a character boundary).
pub const KEY_BYTES: usize = 200;
/// Longest token kept (bytes, cut on a character boundary).
pub const TOKEN_BYTES: usize = 32;

/// The case folding every string comparison of search uses: per-character lower case, with
/// the final sigma folded like the others (so `ΟΔΟΣ`, `οδοσ` and `οδος` are one word).
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect()
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Whether values of this type are keyed by their folded text.
pub fn is_textual(kind: PropertyType) -> bool {
    !matches!(
        kind,
        PropertyType::Number | PropertyType::Date | PropertyType::Datetime
    )
}

fn number_key(n: f64) -> String {
    // -0 and 0 are one number; the bits of a float, with the sign flipped for positives and
    // every bit flipped for negatives, order as the floats do.
    let n = if n == 0.0 { 0.0 } else { n };
    let bits = n.to_bits();
    let ordered = if bits >> 63 == 0 {
        bits | (1 << 63)
    } else {
        !bits
    };
    format!("0{ordered:016x}")
}

fn instant_key(ms: i64) -> String {
    format!("0{:016x}", (ms as u64) ^ (1 << 63))
}

/// The key of a stored value.
pub fn value_key(kind: PropertyType, stored: &str) -> String {
    let typed = match kind {
        PropertyType::Number => as_number(stored).map(number_key),
        PropertyType::Date | PropertyType::Datetime => time::parse_instant(stored).map(instant_key),
        _ => return cut(fold(stored), KEY_BYTES),
    };
    typed.unwrap_or_else(|| cut(format!("1{}", fold(stored)), KEY_BYTES))
}

/// A filter value as a key: `None` when it cannot equal or order against any stored value
/// (a number filter on text that is no number). `exact` is false when the key was cut, so
/// what it finds must still be checked by the matcher.
pub fn filter_key(kind: PropertyType, value: &str) -> Option<FilterKey> {
    let key = match kind {
        PropertyType::Number => number_key(as_number(value.trim())?),
        PropertyType::Date | PropertyType::Datetime => instant_key(time::parse_instant(value)?),
        _ => {
            let folded = fold(value);
            // A stored key cut at KEY_BYTES orders against a shorter value as its whole
            // text does; keep a margin of one character.
            let exact = folded.len() + 4 <= KEY_BYTES;
            return Some(FilterKey {
                key: cut(folded, KEY_BYTES),
                exact,
            });
        }
    };
    Some(FilterKey { key, exact: true })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterKey {
    pub key: String,
    pub exact: bool,
}

/// The highest key of each type's typed range: keys of values that parse start with `0`,
/// those that do not with `1`, so a range over numbers or instants stays below this.
pub const TYPED_END: &str = "1";

/// Where words start in a folded value: its start, after whitespace, and where a run of
/// letters and digits starts after anything else.
pub(crate) fn word_starts(folded: &str) -> Vec<usize> {
    let mut out = vec![0];
    let mut prev: Option<char> = None;
    for (i, c) in folded.char_indices() {
        if let Some(p) = prev {
            let after_space = p.is_whitespace() && !c.is_whitespace();
            let run_start = c.is_alphanumeric() && !p.is_alphanumeric();
            if after_space || run_start {
                out.push(i);
            }
        }
        prev = Some(c);
    }
    out
}

/// The tokens of a stored value of a text type: the folded value from each word start on,
/// cut at [`TOKEN_BYTES`], but for the first (its key already starts there). Numbers and
/// dates have none: a token search on them is left to the matcher.
pub fn tokens(kind: PropertyType, stored: &str) -> Vec<String> {
    if !is_textual(kind) {
        return Vec::new();
    }
    let folded = fold(stored);
    let mut out: Vec<String> = word_starts(&folded)
        .into_iter()
        .skip(1)
        .map(|i| cut(folded[i..].to_string(), TOKEN_BYTES))
        .filter(|t| !t.trim().is_empty())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// What an index can look up for a `CONTAINS_TOKEN` pattern: a folded prefix that every
/// matching value has at one of its word starts. `None` when the pattern gives none (a
/// leading wildcard followed by no word start, such as `*ller`).
pub fn token_prefix(pattern: &str) -> Option<String> {
    let pattern = fold(pattern.trim());
    if pattern.is_empty() {
        return None;
    }
    let mut segments = pattern.split('*');
    let first = segments.next().unwrap_or_default();
    if !first.is_empty() {
        return Some(cut(first.to_string(), TOKEN_BYTES));
    }
    // After a leading `*`: the first segment with a word start inside it.
    for seg in segments {
        let starts = word_starts(seg);
        if let Some(&i) = starts.get(1) {
            return Some(cut(seg[i..].to_string(), TOKEN_BYTES));
        }
    }
    None
}

/// A `query` word as a prefix to look up, and whether a token starting with it is a match
/// by itself (it was not cut).
pub fn query_prefix(word: &str) -> (String, bool) {
    let folded = fold(word);
    let exact = folded.len() + 4 <= TOKEN_BYTES;
    (cut(folded, TOKEN_BYTES), exact)
}

/// A word prefix of more characters than this that holds a digit has no posting list (see
/// [`grams`]).
pub const GRAM_DIGITS_CHARS: usize = 4;
/// The longest word prefix, in characters, that has a posting list (see [`grams`]).
pub const GRAM_CHARS: usize = 8;

/// Whether a prefix of `n` characters, holding a digit or not, has a posting list: up to
/// [`GRAM_CHARS`] characters, but past [`GRAM_DIGITS_CHARS`] not when it holds a digit.
fn is_gram(n: usize, digit: bool) -> bool {
    n <= GRAM_DIGITS_CHARS || (n <= GRAM_CHARS && !digit)
}

/// The word prefixes of a stored value of a text type that have posting lists (its *grams*):
/// the prefixes of its key and of each of its tokens for which [`is_gram`] holds. A record
/// has a key or token starting with `p` exactly when `p` is one of its grams, for any `p`
/// that [`as_gram`] takes, so a `query` word or token pattern that short is answered by one
/// posting list per property.
///
/// A prefix shared by many records costs little per record as a list; one held by a single
/// record costs a row. Prefixes of letters are mostly shared (names, words); long prefixes
/// with digits mostly are not (`5550123` of a phone number, `smith123` of an e-mail address,
/// `12 main` of a street address), and a look-up of one finds few records, so the key and
/// token rows serve it at a row per record found.
pub fn grams(kind: PropertyType, stored: &str) -> BTreeSet<String> {
    if !is_textual(kind) {
        return BTreeSet::new();
    }
    let key = value_key(kind, stored);
    grams_of_keys(
        std::iter::once(key.as_str()).chain(tokens(kind, stored).iter().map(|t| t.as_str())),
    )
}

/// The grams of a value from its index rows: its key and its tokens (see [`grams`]).
pub fn grams_of_keys<'a>(keys: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for k in keys {
        let mut digit = false;
        for (n, (i, c)) in k.char_indices().enumerate().take(GRAM_CHARS) {
            digit |= c.is_ascii_digit();
            if is_gram(n + 1, digit) {
                out.insert(k[..i + c.len_utf8()].to_string());
            }
        }
    }
    out
}

/// A prefix to look up as a gram: `Some` when it has a posting list (see [`is_gram`]).
pub fn as_gram(prefix: &str) -> Option<&str> {
    let digit = prefix.chars().any(|c| c.is_ascii_digit());
    (!prefix.is_empty() && is_gram(prefix.chars().count(), digit)).then_some(prefix)
}

/// The gram that a prefix too long to be one starts with, when there is one: its first
/// [`GRAM_CHARS`] characters, if they hold no digit. Every record with a word starting with
/// `prefix` has this gram, so its posting list is a superset to narrow from.
pub fn gram_within(prefix: &str) -> Option<&str> {
    let (at, c) = prefix.char_indices().nth(GRAM_CHARS - 1)?;
    let cut = &prefix[..at + c.len_utf8()];
    (as_gram(prefix).is_none() && as_gram(cut).is_some()).then_some(cut)
}

/// The smallest string above every string that starts with `prefix` (for a range scan).
pub fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{compare, contains_token, query_matches, sort_order};
    use proptest::prelude::*;
    use std::cmp::Ordering;

    #[test]
    fn numbers_order_as_numbers() {
        let k = |v: &str| value_key(PropertyType::Number, v);
        assert!(k("-10") < k("-9.5"));
        assert!(k("-9.5") < k("-0"));
        assert_eq!(k("-0"), k("0"));
        assert_eq!(k("1.0"), k("1"));
        assert!(k("9") < k("10"));
        assert!(k("1e300") < k("abc"));
        assert!(k("abc") < k("abd"));
    }

    #[test]
    fn instants_order_as_instants() {
        let k = |v: &str| value_key(PropertyType::Datetime, v);
        assert_eq!(k("2024-05-01"), k("1714521600000"));
        assert!(k("1969-12-31T23:59:59Z") < k("0"));
        assert!(k("2024-05-01T00:00:00.001Z") > k("2024-05-01"));
    }

    #[test]
    fn tokens_start_at_word_starts() {
        let t = tokens(PropertyType::String, "Emma.Mueller@Example.com");
        assert_eq!(t, vec!["com", "example.com", "mueller@example.com"]);
        let t = tokens(PropertyType::String, "+1-555 0100");
        assert_eq!(t, vec!["0100", "1-555 0100", "555 0100"]);
        assert!(tokens(PropertyType::Number, "42").is_empty());
        assert_eq!(
            token_prefix("*@hubspot.com").as_deref(),
            Some("hubspot.com")
        );
        assert_eq!(token_prefix("Mue*"), Some("mue".into()));
        assert_eq!(token_prefix("*ller"), None);
        assert_eq!(fold("ΟΔΟΣ"), fold("οδος"));
        let g = grams(
            PropertyType::String,
            "Emma Smith-Jones smith123 555-0100123",
        );
        for x in [
            "e", "emma s", "smith-jo", "jones", "smith", "555-", "0100", "smith-j",
        ] {
            assert!(g.contains(x), "{x}");
        }
        // Longer than GRAM_CHARS, or than GRAM_DIGITS_CHARS and holding a digit.
        for x in [
            "emma smit",
            "smith123",
            "smith1",
            "01001",
            "0100123",
            "555-0",
        ] {
            assert!(!g.contains(x), "{x}");
        }
        assert!(!g.contains("mma"));
        assert!(grams(PropertyType::Number, "42").is_empty());
        assert_eq!(as_gram("emmanuel"), Some("emmanuel"));
        assert_eq!(as_gram("emmanuell"), None);
        assert_eq!(as_gram("0100"), Some("0100"));
        assert_eq!(gram_within("rodriguez"), Some("rodrigue"));
        assert_eq!(gram_within("schöneberger"), Some("schönebe"));
        assert_eq!(gram_within("emmanuel"), None, "a gram itself");
        assert_eq!(
            gram_within("contact123"),
            None,
            "its gram would hold a digit"
        );
        assert_eq!(gram_within("rodrigue1"), Some("rodrigue"));
        assert_eq!(as_gram("01001"), None);
        assert_eq!(as_gram("1 elm st"), None);
        assert_eq!(as_gram(""), None);
    }

    fn kind() -> impl Strategy<Value = PropertyType> {
        prop_oneof![
            Just(PropertyType::String),
            Just(PropertyType::Number),
            Just(PropertyType::Datetime),
            Just(PropertyType::Enumeration),
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "-?[0-9]{1,4}(\\.[0-9]{1,2})?",
            "20[0-9]{2}-0[1-9]-[12][0-9]",
            "[a-zA-ZÄÖÜäöüßΣσς0-9 .@+-]{0,12}",
            "[a-z]{1,3}",
            "\\+?[0-9]{1,3}[ -][0-9]{3,8}[a-z]{0,2}",
        ]
    }

    proptest! {
        /// Keys order as the matcher sorts, and equal keys are equal values.
        #[test]
        fn keys_order_as_the_matcher(kind in kind(), a in value(), b in value()) {
            let (ka, kb) = (value_key(kind, &a), value_key(kind, &b));
            prop_assert_eq!(ka.cmp(&kb), sort_order(kind, Some(&a), Some(&b)));
            if let (Some(fa), Some(o)) = (filter_key(kind, &a), compare(kind, &b, &a)) {
                prop_assert_eq!(kb.cmp(&fa.key), o);
            }
            if compare(kind, &a, &b) == Some(Ordering::Equal) {
                prop_assert_eq!(ka, kb);
            }
        }

        /// Whenever a token pattern or a query word matches a value, the index finds it.
        #[test]
        fn tokens_find_every_match(kind in kind(), v in value(), p in "[a-zA-Zäσς.@ *+-]{1,6}") {
            if !is_textual(kind) {
                return Ok(());
            }
            let mut keys = tokens(kind, &v);
            keys.push(value_key(kind, &v));
            // A pattern that gives no prefix (`*`, `*ller`) is left to the matcher.
            if let (true, Some(prefix)) = (contains_token(&v, &p), token_prefix(&p)) {
                prop_assert!(keys.iter().any(|t| t.starts_with(&prefix)), "{p:?} matched {v:?}: {keys:?}");
            }
            for word in p.split_whitespace() {
                if query_matches(word, None, std::iter::once(v.as_str())) {
                    let (prefix, _) = query_prefix(word);
                    prop_assert!(keys.iter().any(|t| t.starts_with(&prefix)), "{word:?} matched {v:?}: {keys:?}");
                }
            }
        }

        /// A prefix that has posting lists is a gram of a value exactly when one of its keys
        /// starts with it.
        #[test]
        fn grams_are_the_prefixes(
            kind in kind(),
            v in value(),
            p in "[a-zA-Zäσς0-9.@ +-]{1,10}",
            own in any::<bool>(),
            at in 0usize..8,
            n in 1usize..14,
        ) {
            let mut keys = tokens(kind, &v);
            if is_textual(kind) {
                keys.push(value_key(kind, &v));
            }
            // Half the prefixes are taken from the value's own keys.
            let p = match keys.get(at % keys.len().max(1)) {
                Some(k) if own => k.chars().take(n).collect(),
                _ => p,
            };
            let (prefix, _) = query_prefix(&p);
            if let Some(g) = as_gram(&prefix) {
                let starts = keys.iter().any(|t| t.starts_with(g));
                prop_assert_eq!(grams(kind, &v).contains(g), starts, "{:?} in {:?}: {:?}", g, v, keys);
            }
            // A longer prefix's gram is held by every value with a key starting with it.
            if let Some(g) = gram_within(&prefix) {
                prop_assert!(prefix.starts_with(g));
                if keys.iter().any(|t| t.starts_with(&prefix)) {
                    prop_assert!(grams(kind, &v).contains(g), "{:?} in {:?}", g, v);
                }
            }
        }
    }
}
