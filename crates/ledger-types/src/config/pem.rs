//! PEM for certificates, as Fabric's MSP configuration carries them: `-----BEGIN CERTIFICATE-----`, the
//! base64 of the DER in lines of 64 characters, `-----END CERTIFICATE-----`, each line ending in `\n` (the
//! form Go's `pem.Encode`, OpenSSL and `msp::cert_pem` write). Small on purpose: ledger-types has no
//! base64 dependency.

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Why a PEM certificate did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PemError {
    #[error("not one PEM CERTIFICATE block")]
    Framing,
    #[error("bad base64 in the PEM body")]
    Base64,
}

/// The PEM form of a DER certificate.
pub(crate) fn cert_pem(der: &[u8]) -> Vec<u8> {
    let body = base64(der);
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + BEGIN.len() + END.len() + 3);
    out.extend_from_slice(BEGIN.as_bytes());
    out.push(b'\n');
    for line in body.chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(END.as_bytes());
    out.push(b'\n');
    out
}

/// The DER inside one PEM `CERTIFICATE` block (line breaks `\n` or `\r\n`; whitespace around the block is
/// ignored, anything else around it is refused).
pub(crate) fn cert_der(pem: &[u8]) -> Result<Vec<u8>, PemError> {
    let text = std::str::from_utf8(pem).map_err(|_| PemError::Framing)?.trim();
    let body = text.strip_prefix(BEGIN).and_then(|t| t.strip_suffix(END)).ok_or(PemError::Framing)?;
    if body.contains("-----") {
        return Err(PemError::Framing);
    }
    let compact: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    unbase64(&compact)
}

fn base64(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| ALPHABET[((n >> shift) & 63) as usize];
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { b'=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { b'=' });
    }
    out
}

fn unbase64(text: &[u8]) -> Result<Vec<u8>, PemError> {
    if !text.len().is_multiple_of(4) {
        return Err(PemError::Base64);
    }
    let value = |c: u8| ALPHABET.iter().position(|&a| a == c).map(|v| v as u32).ok_or(PemError::Base64);
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let quads = text.len() / 4;
    for (i, quad) in text.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != quads) {
            return Err(PemError::Base64);
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_any_bytes() {
        for len in 0..200usize {
            let der: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let pem = cert_pem(&der);
            assert_eq!(cert_der(&pem), Ok(der), "{len}");
            let crlf = String::from_utf8(pem).unwrap().replace('\n', "\r\n");
            assert!(cert_der(crlf.as_bytes()).is_ok(), "{len} with CRLF");
        }
    }

    #[test]
    fn pem_has_the_standard_shape() {
        let pem = String::from_utf8(cert_pem(&[0xff; 100])).unwrap();
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], BEGIN);
        assert_eq!((lines[1].len(), lines[2].len()), (64, 64));
        assert_eq!(lines[3], "/////w==");
        assert_eq!(lines[4], END);
        assert!(pem.ends_with("-----\n"));
        assert_eq!(base64(b"foob"), b"Zm9vYg==");
        assert_eq!(base64(b"fooba"), b"Zm9vYmE=");
        assert_eq!(base64(b"foobar"), b"Zm9vYmFy");
    }

    #[test]
    fn bad_pem_is_refused() {
        for bad in [
            &b"no pem"[..],
            b"-----BEGIN CERTIFICATE-----\nZm9v\n",
            b"-----BEGIN PRIVATE KEY-----\nZm9v\n-----END PRIVATE KEY-----\n",
            b"-----BEGIN CERTIFICATE-----\nZm9v\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nZm9v\n-----END CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE-----\nZm9\n-----END CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE-----\nZm9v!A==\n-----END CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE-----\nZg==Zm9v\n-----END CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE-----\nZ===\n-----END CERTIFICATE-----\n",
            b"\xff\xfe",
        ] {
            assert!(cert_der(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
