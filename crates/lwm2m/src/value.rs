//! Resource values and types (LwM2M 1.1 §C: String, Integer, Unsigned Integer, Float, Boolean, Opaque, Time,
//! Objlnk, Corelnk, and "none" for executable resources).

use std::fmt;

/// The data type of a resource, as in an object definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResourceType {
    /// UTF-8 text.
    String,
    /// Signed 64-bit integer.
    Integer,
    /// Unsigned 64-bit integer (1.1).
    Unsigned,
    /// 64-bit float.
    Float,
    /// Boolean.
    Boolean,
    /// Bytes.
    Opaque,
    /// Seconds since the Unix epoch.
    Time,
    /// Object link `objectId:instanceId`.
    Objlnk,
    /// CoRE link text (1.1).
    Corelnk,
    /// Executable resources carry no value.
    None,
}

impl ResourceType {
    /// Parses the `<Type>` text of an OMA object definition (case-insensitive).
    pub fn from_definition(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "string" => ResourceType::String,
            "integer" => ResourceType::Integer,
            "unsigned integer" | "unsigned" => ResourceType::Unsigned,
            "float" => ResourceType::Float,
            "boolean" => ResourceType::Boolean,
            "opaque" => ResourceType::Opaque,
            "time" => ResourceType::Time,
            "objlnk" => ResourceType::Objlnk,
            "corelnk" => ResourceType::Corelnk,
            "" | "none" => ResourceType::None,
            _ => return None,
        })
    }

    /// Upper-case name as Leshan's REST API spells it (`"FLOAT"`).
    pub fn name(&self) -> &'static str {
        match self {
            ResourceType::String => "STRING",
            ResourceType::Integer => "INTEGER",
            ResourceType::Unsigned => "UNSIGNED_INTEGER",
            ResourceType::Float => "FLOAT",
            ResourceType::Boolean => "BOOLEAN",
            ResourceType::Opaque => "OPAQUE",
            ResourceType::Time => "TIME",
            ResourceType::Objlnk => "OBJLNK",
            ResourceType::Corelnk => "CORELINK",
            ResourceType::None => "NONE",
        }
    }
}

/// A resource value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// String.
    String(String),
    /// Integer.
    Integer(i64),
    /// Unsigned integer.
    Unsigned(u64),
    /// Float.
    Float(f64),
    /// Boolean.
    Boolean(bool),
    /// Opaque bytes; also how values of unknown (untyped) resources are carried.
    Opaque(Vec<u8>),
    /// Time (seconds since the Unix epoch).
    Time(i64),
    /// Object link.
    Objlnk(u16, u16),
    /// CoRE link text.
    Corelnk(String),
}

impl Value {
    /// The type of this value.
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Value::String(_) => ResourceType::String,
            Value::Integer(_) => ResourceType::Integer,
            Value::Unsigned(_) => ResourceType::Unsigned,
            Value::Float(_) => ResourceType::Float,
            Value::Boolean(_) => ResourceType::Boolean,
            Value::Opaque(_) => ResourceType::Opaque,
            Value::Time(_) => ResourceType::Time,
            Value::Objlnk(..) => ResourceType::Objlnk,
            Value::Corelnk(_) => ResourceType::Corelnk,
        }
    }

    /// Parses the plain-text representation (content format 0) as `ty`.
    pub fn from_text(ty: ResourceType, s: &str) -> Option<Value> {
        let s = s.trim_matches(char::from(0));
        Some(match ty {
            ResourceType::String | ResourceType::None => Value::String(s.to_owned()),
            ResourceType::Corelnk => Value::Corelnk(s.to_owned()),
            ResourceType::Integer => Value::Integer(s.trim().parse().ok()?),
            ResourceType::Unsigned => Value::Unsigned(s.trim().parse().ok()?),
            ResourceType::Time => Value::Time(s.trim().parse().ok()?),
            ResourceType::Float => Value::Float(s.trim().parse().ok()?),
            ResourceType::Boolean => match s.trim() {
                "1" | "true" => Value::Boolean(true),
                "0" | "false" => Value::Boolean(false),
                _ => return None,
            },
            ResourceType::Opaque => Value::Opaque(s.as_bytes().to_vec()),
            ResourceType::Objlnk => {
                let (a, b) = s.trim().split_once(':')?;
                Value::Objlnk(a.parse().ok()?, b.parse().ok()?)
            }
        })
    }

    /// Converts to `ty` where that loses nothing meaningful (e.g. an untyped opaque TLV value to an integer).
    pub fn coerce(self, ty: ResourceType) -> Value {
        if self.resource_type() == ty {
            return self;
        }
        let text = match &self {
            Value::Opaque(b) => String::from_utf8_lossy(b).into_owned(),
            other => other.to_string(),
        };
        Value::from_text(ty, &text).unwrap_or(self)
    }
}

impl fmt::Display for Value {
    /// The plain-text representation (content format 0); opaque values are shown as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) | Value::Corelnk(s) => f.write_str(s),
            Value::Integer(v) | Value::Time(v) => write!(f, "{v}"),
            Value::Unsigned(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Boolean(b) => f.write_str(if *b { "1" } else { "0" }),
            Value::Opaque(b) => b.iter().try_for_each(|x| write!(f, "{x:02x}")),
            Value::Objlnk(a, b) => write!(f, "{a}:{b}"),
        }
    }
}
