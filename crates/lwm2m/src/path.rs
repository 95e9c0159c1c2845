//! LwM2M paths (`/3/0/1/2`): a validated newtype with object, instance, resource and resource-instance levels.

use std::fmt;
use std::str::FromStr;

/// Largest id an object, instance, resource or resource instance may have (65535 is reserved).
pub const MAX_ID: u16 = 65534;

/// Why a path is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A segment is not a number in 0..=65534.
    #[error("invalid path segment {0:?}")]
    Segment(String),
    /// More than four levels.
    #[error("path deeper than object/instance/resource/resource-instance")]
    TooDeep,
}

/// A path into the object tree: root (`/`), object, object instance, resource or resource instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LwM2mPath {
    ids: [u16; 4],
    len: u8,
}

impl LwM2mPath {
    /// The root path `/`.
    pub const ROOT: LwM2mPath = LwM2mPath { ids: [0; 4], len: 0 };

    /// A path from its ids (0 to 4 of them, each ≤ [`MAX_ID`]).
    pub fn new(ids: &[u16]) -> Result<Self, PathError> {
        if ids.len() > 4 {
            return Err(PathError::TooDeep);
        }
        let mut p = LwM2mPath::ROOT;
        for id in ids {
            if *id > MAX_ID {
                return Err(PathError::Segment(id.to_string()));
            }
            p.ids[usize::from(p.len)] = *id;
            p.len += 1;
        }
        Ok(p)
    }

    /// A path from URI segments (`["3", "0", "1"]`).
    pub fn from_segments<S: AsRef<str>>(segs: &[S]) -> Result<Self, PathError> {
        let mut ids = Vec::with_capacity(segs.len());
        for s in segs.iter().map(AsRef::as_ref).filter(|s| !s.is_empty()) {
            let id: u16 = s.parse().map_err(|_| PathError::Segment(s.to_owned()))?;
            ids.push(id);
        }
        LwM2mPath::new(&ids)
    }

    /// The ids, root first.
    pub fn ids(&self) -> &[u16] {
        &self.ids[..usize::from(self.len)]
    }

    /// Object id, if any.
    pub fn object(&self) -> Option<u16> {
        self.ids().first().copied()
    }
    /// Instance id, if any.
    pub fn instance(&self) -> Option<u16> {
        self.ids().get(1).copied()
    }
    /// Resource id, if any.
    pub fn resource(&self) -> Option<u16> {
        self.ids().get(2).copied()
    }
    /// Resource-instance id, if any.
    pub fn resource_instance(&self) -> Option<u16> {
        self.ids().get(3).copied()
    }
    /// Number of levels (0 for root).
    pub fn depth(&self) -> usize {
        usize::from(self.len)
    }
    /// Whether this is `/`.
    pub fn is_root(&self) -> bool {
        self.len == 0
    }
    /// Whether this path names a resource (exactly three levels).
    pub fn is_resource(&self) -> bool {
        self.len == 3
    }
    /// Whether this path names a resource instance.
    pub fn is_resource_instance(&self) -> bool {
        self.len == 4
    }

    /// This path with one more level.
    pub fn child(&self, id: u16) -> Result<Self, PathError> {
        let mut ids = self.ids().to_vec();
        ids.push(id);
        LwM2mPath::new(&ids)
    }

    /// Whether `self` is `other` or below it.
    pub fn starts_with(&self, other: &LwM2mPath) -> bool {
        self.len >= other.len && self.ids()[..other.depth()] == *other.ids()
    }
}

impl fmt::Display for LwM2mPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str("/");
        }
        for id in self.ids() {
            write!(f, "/{id}")?;
        }
        Ok(())
    }
}

impl FromStr for LwM2mPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, PathError> {
        let segs: Vec<&str> = s.split('/').collect();
        LwM2mPath::from_segments(&segs)
    }
}
