//! Base64 (RFC 4648) for SenML `vd` (base64url, no padding) and LwM2M JSON opaque values (standard), through
//! the `base64` crate. Decoding is lenient, as peers differ: either alphabet (even mixed), padding optional.

use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD};

/// The standard alphabet, padding refused (it is trimmed first), non-zero trailing bits accepted.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Encodes `data`, URL-safe alphabet without padding when `url`, else the standard one with padding.
pub fn encode(data: &[u8], url: bool) -> String {
    if url { URL_SAFE_NO_PAD.encode(data) } else { STANDARD.encode(data) }
}

/// Decodes either alphabet, with or without padding; `None` for a character outside both alphabets (`=` inside
/// the text included) or an impossible length (a lone trailing character).
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    // The URL alphabet differs from the standard one in two characters only.
    let s: Cow<'_, str> = if s.contains(['-', '_']) {
        Cow::Owned(s.replace('-', "+").replace('_', "/"))
    } else {
        Cow::Borrowed(s)
    };
    LENIENT.decode(s.as_bytes()).ok()
}
