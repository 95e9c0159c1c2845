//! The node tree view of content: an object, an object instance, a resource (single or multiple) or a
//! resource instance, built from and flattened back to [`Record`]s.

use std::collections::BTreeMap;

use crate::codec::Record;
use crate::path::{LwM2mPath, PathError};
use crate::value::Value;

/// A resource: one value or resource instances.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    /// Single-instance resource.
    Single(Value),
    /// Multiple-instance resource, by resource-instance id.
    Multiple(BTreeMap<u16, Value>),
}

/// An object instance: resources by id.
pub type Instance = BTreeMap<u16, Resource>;

/// Content rooted at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `/o`: instances by id.
    Object(u16, BTreeMap<u16, Instance>),
    /// `/o/i`: resources by id.
    Instance(u16, Instance),
    /// `/o/i/r`.
    Resource(u16, Resource),
    /// `/o/i/r/ri`.
    ResourceInstance(u16, Value),
}

/// Why records do not form a node at a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A record is not under the path, or not a resource.
    #[error("{0} does not belong under the node path")]
    Outside(LwM2mPath),
    /// A resource has a value and instances, or the root was asked for.
    #[error("records do not form one node: {0}")]
    Shape(String),
    /// Path arithmetic failed.
    #[error(transparent)]
    Path(#[from] PathError),
}

impl Node {
    /// Builds the node at `path` from `records` (each a resource or resource instance under `path`).
    pub fn from_records(path: &LwM2mPath, records: &[Record]) -> Result<Node, NodeError> {
        let mut objects: BTreeMap<u16, Instance> = BTreeMap::new();
        for r in records {
            if !r.path.starts_with(path) || r.path.depth() < 3 {
                return Err(NodeError::Outside(r.path));
            }
            let (Some(i), Some(res)) = (r.path.instance(), r.path.resource()) else {
                return Err(NodeError::Outside(r.path));
            };
            let inst = objects.entry(i).or_default();
            match (r.path.resource_instance(), inst.get_mut(&res)) {
                (None, None) => {
                    inst.insert(res, Resource::Single(r.value.clone()));
                }
                (Some(ri), None) => {
                    inst.insert(res, Resource::Multiple(BTreeMap::from([(ri, r.value.clone())])));
                }
                (Some(ri), Some(Resource::Multiple(m))) => {
                    m.insert(ri, r.value.clone());
                }
                _ => return Err(NodeError::Shape(format!("{} given as value and with instances", r.path))),
            }
        }
        let ids = path.ids();
        Ok(match ids.len() {
            1 => Node::Object(ids[0], objects),
            2 => Node::Instance(ids[1], objects.remove(&ids[1]).unwrap_or_default()),
            3 => {
                let res = objects.remove(&ids[1]).and_then(|mut i| i.remove(&ids[2]));
                Node::Resource(ids[2], res.ok_or_else(|| NodeError::Shape(format!("no value for {path}")))?)
            }
            4 => match objects.remove(&ids[1]).and_then(|mut i| i.remove(&ids[2])) {
                Some(Resource::Multiple(mut m)) => Node::ResourceInstance(
                    ids[3],
                    m.remove(&ids[3]).ok_or_else(|| NodeError::Shape(format!("no value for {path}")))?,
                ),
                _ => return Err(NodeError::Shape(format!("no value for {path}"))),
            },
            _ => return Err(NodeError::Shape("the root is not a node".into())),
        })
    }

    /// Flattens the node at `path` (the path of the node itself) to records.
    pub fn to_records(&self, path: &LwM2mPath) -> Result<Vec<Record>, NodeError> {
        let mut out = Vec::new();
        fn resource(out: &mut Vec<Record>, p: LwM2mPath, r: &Resource) -> Result<(), NodeError> {
            match r {
                Resource::Single(v) => out.push(Record::new(p, v.clone())),
                Resource::Multiple(m) => {
                    for (ri, v) in m {
                        out.push(Record::new(p.child(*ri)?, v.clone()));
                    }
                }
            }
            Ok(())
        }
        fn instance(out: &mut Vec<Record>, p: LwM2mPath, i: &Instance) -> Result<(), NodeError> {
            for (rid, r) in i {
                resource(out, p.child(*rid)?, r)?;
            }
            Ok(())
        }
        match self {
            Node::Object(_, instances) => {
                for (iid, i) in instances {
                    instance(&mut out, path.child(*iid)?, i)?;
                }
            }
            Node::Instance(_, i) => instance(&mut out, *path, i)?,
            Node::Resource(_, r) => resource(&mut out, *path, r)?,
            Node::ResourceInstance(_, v) => out.push(Record::new(*path, v.clone())),
        }
        Ok(out)
    }
}
