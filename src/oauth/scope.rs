//! `ScopeSet`: the RFC 6749 §3.3 scope parameter, parsed and compared.

use std::collections::BTreeSet;
use std::fmt;

use super::error::OAuthError;

/// A set of scope tokens. Printed space-separated in sorted order, so equal sets
/// always print the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses a space-separated scope string. RFC 6749 §3.3:
    /// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
    pub fn parse(text: &str) -> Result<Self, OAuthError> {
        let mut set = BTreeSet::new();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            let valid = token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !valid {
                return Err(OAuthError::malformed_scope(token));
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    /// The first scope of `self` that `allowed` does not contain, if any.
    pub fn first_outside(&self, allowed: &ScopeSet) -> Option<&str> {
        self.0
            .iter()
            .find(|scope| !allowed.0.contains(*scope))
            .map(String::as_str)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Whether the set holds no scope.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes both sets hold.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// Adds every scope of `other`.
    pub fn extend(&mut self, other: ScopeSet) {
        self.0.extend(other.0);
    }

    /// The scopes, in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> ScopeSet {
        ScopeSet::parse(text).unwrap()
    }

    #[test]
    fn parsing_ignores_repeated_spaces_and_duplicates() {
        assert_eq!(set("write  read read").to_string(), "read write");
    }

    #[test]
    fn scope_tokens_outside_the_rfc_alphabet_are_refused() {
        for bad in ["a\"b", "a\\b", "caf\u{e9}", "tab\there"] {
            assert_eq!(
                ScopeSet::parse(bad).unwrap_err().code(),
                "invalid_scope",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn subset_and_first_outside_agree() {
        let allowed = set("read write");
        assert!(set("read").is_subset_of(&allowed));
        assert!(set("").is_subset_of(&allowed));
        assert!(!set("read admin").is_subset_of(&allowed));
        assert_eq!(set("read admin").first_outside(&allowed), Some("admin"));
    }
}
