//! E.164 phone numbers, parsed once at the edge: `+`, a non-zero country digit, 7-15 digits in
//! all. Spaces, dashes, dots and parentheses that people type are dropped first.

use std::fmt;
use std::str::FromStr;

/// A normalised E.164 phone number such as `+15551234567`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

/// Why a string is not an E.164 phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("phone must be in E.164 format, e.g. +15551234567")]
pub struct PhoneError;

impl Phone {
    /// The number, `+` and digits only.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but the country prefix and the last four digits hidden, for logs.
    pub fn masked(&self) -> String {
        let n = self.0.len();
        let head = self.0.get(..2).unwrap_or_default();
        let tail = self.0.get(n.saturating_sub(4)..).unwrap_or_default();
        format!("{head}{}{tail}", "*".repeat(n.saturating_sub(6)))
    }
}

impl FromStr for Phone {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, PhoneError> {
        // ASCII whitespace only: the rule stays one a JSON Schema pattern states exactly.
        let compact: String = s
            .trim_matches(|c: char| c.is_ascii_whitespace())
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').ok_or(PhoneError)?;
        let ok = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Phone(compact))
        } else {
            Err(PhoneError)
        }
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_are_normalised() {
        let p: Phone = " +1 (555) 123-4567 ".parse().unwrap();
        assert_eq!(p.as_str(), "+15551234567");
        assert_eq!(p.masked(), "+1******4567");
    }

    #[test]
    fn non_e164_numbers_are_rejected() {
        for bad in [
            "15551234567",
            "+0555123456",
            "+12345",
            "+1234567890123456",
            "+1555abc4567",
            "",
        ] {
            assert!(bad.parse::<Phone>().is_err(), "{bad:?} accepted");
        }
    }
}
