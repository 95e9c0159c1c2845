//! CoRE Link Format (RFC 6690, content format 40) as LwM2M uses it in Register/Update payloads and Discover
//! responses: `</>;rt="oma.lwm2m";ct=110, </1/0>, </3/0>;ver=1.1, </3303/0/5700>;pmin=10`.

use std::fmt;

/// One link: a URI reference and its attributes in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The target between `<` and `>`.
    pub target: String,
    /// Attributes; the value is `None` for a bare attribute, quotes removed.
    pub attributes: Vec<(String, Option<String>)>,
}

impl Link {
    /// The value of attribute `name`, if present with a value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref())
    }
}

/// Why a link-format payload could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed link format at byte {at}: {reason}")]
pub struct LinkError {
    /// Byte offset.
    pub at: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// Parses a link-format document. Whitespace around separators is tolerated (some clients add it).
pub fn parse(text: &str) -> Result<Vec<Link>, LinkError> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] as char).is_ascii_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if i == b.len() {
        return Ok(out);
    }
    loop {
        skip_ws(&mut i);
        if b.get(i) != Some(&b'<') {
            return Err(LinkError { at: i, reason: "expected '<'" });
        }
        let end = text[i..].find('>').ok_or(LinkError { at: i, reason: "unterminated '<'" })? + i;
        let target = text[i + 1..end].to_owned();
        i = end + 1;
        let mut attributes = Vec::new();
        loop {
            skip_ws(&mut i);
            if b.get(i) != Some(&b';') {
                break;
            }
            i += 1;
            skip_ws(&mut i);
            let start = i;
            while i < b.len() && !matches!(b[i], b'=' | b';' | b',') {
                i += 1;
            }
            let name = text[start..i].trim().to_owned();
            if name.is_empty() {
                return Err(LinkError { at: i, reason: "empty attribute name" });
            }
            let value = if b.get(i) == Some(&b'=') {
                i += 1;
                if b.get(i) == Some(&b'"') {
                    let close =
                        text[i + 1..].find('"').ok_or(LinkError { at: i, reason: "unterminated quote" })?;
                    let v = text[i + 1..i + 1 + close].to_owned();
                    i += close + 2;
                    Some(v)
                } else {
                    let start = i;
                    while i < b.len() && !matches!(b[i], b';' | b',') {
                        if b[i] == b'"' {
                            return Err(LinkError { at: i, reason: "quote inside an unquoted value" });
                        }
                        i += 1;
                    }
                    Some(text[start..i].trim().to_owned())
                }
            } else {
                None
            };
            attributes.push((name, value));
        }
        out.push(Link { target, attributes });
        skip_ws(&mut i);
        match b.get(i) {
            None => return Ok(out),
            Some(b',') => i += 1,
            Some(_) => return Err(LinkError { at: i, reason: "expected ',' between links" }),
        }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.target)?;
        for (k, v) in &self.attributes {
            match v {
                None => write!(f, ";{k}")?,
                Some(v)
                    if v.parse::<f64>().is_ok()
                        || (!v.is_empty() && !v.contains([',', ';', ' ', '"']) && k != "rt" && k != "if") =>
                {
                    write!(f, ";{k}={v}")?
                }
                Some(v) => write!(f, ";{k}=\"{v}\"")?,
            }
        }
        Ok(())
    }
}

/// Serialises links separated by `,`.
pub fn format(links: &[Link]) -> String {
    links.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}
