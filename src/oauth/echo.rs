//! What of a request value may be repeated back: a short, sanitised quotation in
//! an `error_description`, and a bounded form of a client id that has not
//! authenticated, for the log.
//!
//! A request value can be anything up to the message limit: a megabyte of
//! `grant_type`, control characters, a secret pasted into the wrong field.
//! Echoed whole, it breaks clients (a gRPC status message travels in a header)
//! and writes whatever was pasted into the log.

use std::fmt::{self, Write as _};

/// The most characters of a request value an error description quotes: room
/// for the longest ordinary values, such as extension grant URIs (RFC 8693's
/// `urn:ietf:params:oauth:grant-type:token-exchange`, 47) and URL-shaped scopes.
pub(crate) const QUOTE_MAX_CHARS: usize = 64;

/// What follows a quotation that was cut. Plain ASCII: `…` is outside RFC 6749's
/// `error_description` alphabet.
const CUT: &str = "...";

/// A request value as an error description quotes it: at most
/// [`QUOTE_MAX_CHARS`] characters, `...` after a value that was cut, and every
/// character outside RFC 6749 §5.2's alphabet for `error_description`
/// (`%x20-21 / %x23-5B / %x5D-7E`: printable ASCII but `"` and `\`) shown as
/// `?`. A short printable value is quoted as it is, so ordinary descriptions
/// read word for word as before.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0;
        if value.len() <= QUOTE_MAX_CHARS && value.bytes().all(in_description_alphabet) {
            return f.write_str(value);
        }
        let mut chars = value.chars();
        for c in chars.by_ref().take(QUOTE_MAX_CHARS) {
            let shown = u8::try_from(c)
                .ok()
                .filter(|&b| in_description_alphabet(b))
                .map_or('?', char::from);
            f.write_char(shown)?;
        }
        if chars.next().is_some() {
            f.write_str(CUT)?;
        }
        Ok(())
    }
}

/// RFC 6749 §5.2: `error_description = 1*( %x20-21 / %x23-5B / %x5D-7E )`.
fn in_description_alphabet(b: u8) -> bool {
    matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// The most bytes of an unauthenticated client id a log line shows.
pub(crate) const LOGGED_PREFIX_MAX: usize = 8;

/// A `client_id` that has not authenticated, as the log shows it: at most
/// [`LOGGED_PREFIX_MAX`] bytes and at most half of the value, so that no value
/// is ever logged whole, then `...`; bytes other than letters, digits, `-`, `_`
/// and `.` show as `?`. An empty id shows as `-`. Enough to tell which client
/// an operator is looking at (ids are 32 hex digits), too little to give away a
/// secret pasted into the field. Built without allocating.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnverifiedClientId {
    shown: [u8; LOGGED_PREFIX_MAX],
    len: u8,
    empty: bool,
}

impl UnverifiedClientId {
    /// The bounded form of `client_id`.
    pub(crate) fn new(client_id: &str) -> Self {
        let mut shown = [b'?'; LOGGED_PREFIX_MAX];
        let len = LOGGED_PREFIX_MAX.min(client_id.len() / 2);
        for (slot, &b) in shown.iter_mut().zip(&client_id.as_bytes()[..len]) {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                *slot = b;
            }
        }
        Self {
            shown,
            // At most LOGGED_PREFIX_MAX, which fits.
            len: len as u8,
            empty: client_id.is_empty(),
        }
    }
}

impl fmt::Display for UnverifiedClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.empty {
            return f.write_str("-");
        }
        for &b in &self.shown[..usize::from(self.len)] {
            f.write_char(char::from(b))?;
        }
        f.write_str(CUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_printable_values_are_quoted_as_they_are() {
        for value in [
            "implicit",
            "admin",
            "read:all",
            "a b!#$%&'()*+,-./[]^_`{|}~",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:saml2-bearer",
            "https://www.googleapis.com/auth/cloud-platform.read-only",
        ] {
            assert_eq!(Quoted(value).to_string(), value);
        }
        let forty = "x".repeat(QUOTE_MAX_CHARS);
        assert_eq!(Quoted(&forty).to_string(), forty);
    }

    #[test]
    fn long_values_are_cut_to_a_prefix_with_an_ellipsis() {
        let long = "g".repeat(1 << 20);
        let quoted = Quoted(&long).to_string();
        assert_eq!(quoted, format!("{}...", "g".repeat(QUOTE_MAX_CHARS)));
    }

    #[test]
    fn characters_outside_the_description_alphabet_become_question_marks() {
        assert_eq!(
            Quoted("a\"b\\c\u{1}d\ne\tf\u{7f}").to_string(),
            "a?b?c?d?e?f?"
        );
        assert_eq!(Quoted("caf\u{e9} \u{1f600}").to_string(), "caf? ?");
        let quoted = Quoted(&"\u{e9}".repeat(100)).to_string();
        assert_eq!(quoted, format!("{}...", "?".repeat(QUOTE_MAX_CHARS)));
        assert!(quoted.bytes().all(in_description_alphabet));
    }

    #[test]
    fn unverified_client_ids_show_a_bounded_sanitised_prefix() {
        let id = "3f9a1c2e5b7d4e6f8a9b0c1d2e3f4a5b";
        assert_eq!(UnverifiedClientId::new(id).to_string(), "3f9a1c2e...");
        assert_eq!(UnverifiedClientId::new("hunter2").to_string(), "hun...");
        assert_eq!(UnverifiedClientId::new("x").to_string(), "...");
        assert_eq!(UnverifiedClientId::new("").to_string(), "-");
        assert_eq!(
            UnverifiedClientId::new("a\"b\nc d\u{e9}xyzxyzxyz").to_string(),
            "a?b?c?d?..."
        );
        let secret = "ocs_".to_owned() + &"Z".repeat(60_000);
        assert_eq!(UnverifiedClientId::new(&secret).to_string(), "ocs_ZZZZ...");
    }
}
