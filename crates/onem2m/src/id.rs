//! Identifiers: resource names and request targets in CSE-relative, SP-relative and absolute form (TS-0001 §7.2).
//!
//! ```text
//!   cse-in/ae1/cnt            CSE-relative, structured (starts with the CSEBase resource name)
//!   cnt00001                  CSE-relative, unstructured (a resource identifier)
//!   /id-in/cse-in/ae1         SP-relative (CSE-ID, then a CSE-relative part)
//!   //sp.example/id-in/ri1    absolute (SP-ID, CSE-ID, CSE-relative part)
//! ```

use thiserror::Error;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdError {
    /// Empty where a value is needed.
    #[error("identifier is empty")]
    Empty,
    /// Longer than [`MAX_ID_LEN`].
    #[error("identifier is longer than {MAX_ID_LEN} characters")]
    TooLong,
    /// Has an empty path segment (`a//b`).
    #[error("identifier has an empty segment")]
    EmptySegment,
    /// Has a character that is not allowed.
    #[error("identifier has a forbidden character {0:?}")]
    BadChar(char),
}

/// The longest identifier accepted.
pub const MAX_ID_LEN: usize = 1024;

/// True for the characters allowed in a resource name or a path segment (RFC 3986 unreserved plus a few
/// sub-delimiters that ACME and oneM2M examples use).
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '-' | '.' | '_' | '~' | '!' | '$' | '\'' | '(' | ')' | '*' | ',' | ';' | '@')
}

fn check_segment(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::EmptySegment);
    }
    match s.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(IdError::BadChar(c)),
        None => Ok(()),
    }
}

/// A validated resource name (`rn`): non-empty, at most 255 characters from the allowed set, no `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceName(String);

impl ResourceName {
    /// Validates `s` as a resource name.
    pub fn new(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() > 255 {
            return Err(IdError::TooLong);
        }
        check_segment(s)?;
        Ok(ResourceName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ResourceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request target (`to`) in one of the three scopes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// CSE-relative: `cse-in/ae1` or `ri`.
    CseRelative(String),
    /// SP-relative: `/id-in/<cse-relative>`.
    SpRelative {
        /// The CSE-ID without the leading `/`.
        cse_id: String,
        /// The CSE-relative rest (may be empty: the CSE itself).
        rest: String,
    },
    /// Absolute: `//sp/id-in/<cse-relative>`.
    Absolute {
        /// The M2M-SP-ID (a domain).
        sp_id: String,
        /// The CSE-ID without the leading `/`.
        cse_id: String,
        /// The CSE-relative rest (may be empty).
        rest: String,
    },
}

impl Target {
    /// Parses a oneM2M `to` parameter.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() > MAX_ID_LEN {
            return Err(IdError::TooLong);
        }
        if let Some(abs) = s.strip_prefix("//") {
            let mut it = abs.splitn(3, '/');
            let sp_id = it.next().unwrap_or_default();
            let cse_id = it.next().ok_or(IdError::EmptySegment)?;
            let rest = it.next().unwrap_or_default();
            check_segment(sp_id)?;
            check_segment(cse_id)?;
            check_rest(rest)?;
            Ok(Target::Absolute { sp_id: sp_id.to_owned(), cse_id: cse_id.to_owned(), rest: rest.to_owned() })
        } else if let Some(sp) = s.strip_prefix('/') {
            let (cse_id, rest) = sp.split_once('/').unwrap_or((sp, ""));
            check_segment(cse_id)?;
            check_rest(rest)?;
            Ok(Target::SpRelative { cse_id: cse_id.to_owned(), rest: rest.to_owned() })
        } else {
            check_rest(s)?;
            if s.is_empty() {
                return Err(IdError::Empty);
            }
            Ok(Target::CseRelative(s.to_owned()))
        }
    }

    /// The CSE-relative part, and the CSE-ID it is addressed to (`None` for a CSE-relative target).
    pub fn local_part(&self) -> (Option<&str>, &str) {
        match self {
            Target::CseRelative(r) => (None, r),
            Target::SpRelative { cse_id, rest } | Target::Absolute { cse_id, rest, .. } => {
                (Some(cse_id), rest)
            }
        }
    }
}

fn check_rest(rest: &str) -> Result<(), IdError> {
    if rest.is_empty() {
        return Ok(());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    rest.split('/').try_for_each(check_segment)
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sep = |r: &str| if r.is_empty() { "" } else { "/" };
        match self {
            Target::CseRelative(r) => f.write_str(r),
            Target::SpRelative { cse_id, rest } => write!(f, "/{cse_id}{}{rest}", sep(rest)),
            Target::Absolute { sp_id, cse_id, rest } => write!(f, "//{sp_id}/{cse_id}{}{rest}", sep(rest)),
        }
    }
}

/// Checks an originator (`X-M2M-Origin`): an AE-ID (`Cxyz`, `Sxyz`), a CSE-ID (`/id-in`) or an SP-relative AE-ID.
pub fn check_originator(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    let body = s.trim_start_matches('/');
    if body.is_empty() {
        return Err(IdError::Empty);
    }
    body.split('/').try_for_each(check_segment)
}
