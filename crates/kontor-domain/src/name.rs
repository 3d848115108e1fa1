//! Names people give things that others see: an account's name shows in every member's
//! console, in the operator's listings and in e-mail subjects.

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Length,
    /// Control characters (line breaks, tabs, escapes) or the direction overrides that make
    /// text display as something other than what it is.
    Characters,
}

impl NameError {
    pub fn message(self, what: &str, max_chars: usize) -> String {
        match self {
            NameError::Length => format!("{what} must be 1 to {max_chars} characters"),
            NameError::Characters => {
                format!("{what} must not contain line breaks, tabs, control characters or text direction overrides")
            }
        }
    }
}

fn refused(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// The name, trimmed, when it is 1 to `max_chars` characters of displayable text.
pub fn check(name: &str, max_chars: usize) -> Result<&str, NameError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > max_chars {
        return Err(NameError::Length);
    }
    if name.chars().any(refused) {
        return Err(NameError::Characters);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_line_of_plain_text() {
        assert_eq!(check("  Acme GmbH ", 200), Ok("Acme GmbH"));
        assert_eq!(check("Ünïcödé 株式会社", 200), Ok("Ünïcödé 株式会社"));
        assert_eq!(check("", 200), Err(NameError::Length));
        assert_eq!(check(&"é".repeat(200), 200).map(|n| n.len()), Ok(400));
        assert_eq!(check(&"é".repeat(201), 200), Err(NameError::Length));
        for bad in [
            "a\nb",
            "a\r\nBcc: x",
            "a\tb",
            "a\u{1b}[31mb",
            "a\u{0}b",
            "evil\u{202E}txt.exe",
            "a\u{2067}b",
        ] {
            assert_eq!(check(bad, 200), Err(NameError::Characters), "{bad:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Any text: an accepted name is trimmed, short enough, and holds no character that
        /// could break a line or turn text around.
        #[test]
        fn accepted_names_are_always_plain(s in "\\PC{0,10}[\\x00-\\x1f\\u{202A}-\\u{202E}]?\\PC{0,10}") {
            if let Ok(n) = check(&s, 12) {
                proptest::prop_assert!(!n.is_empty() && n.chars().count() <= 12);
                proptest::prop_assert_eq!(n, n.trim());
                proptest::prop_assert!(!n.chars().any(refused));
            }
        }
    }
}
