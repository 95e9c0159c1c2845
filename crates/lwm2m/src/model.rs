//! The object model: object and resource definitions, loaded from OMA object definition XML (the LwM2M
//! registry's format) or taken from the built-in core objects 0–7 and IPSO objects 3300–3350.
//!
//! Objects not in the registry are still carried: their values decode untyped (opaque, or text where the
//! format says so).

use std::collections::HashMap;

use crate::value::ResourceType;

/// Allowed operations on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operations {
    /// No operation (internal).
    None,
    /// Read.
    R,
    /// Write.
    W,
    /// Read and write.
    RW,
    /// Execute.
    E,
}

impl Operations {
    fn parse(s: &str) -> Operations {
        match s.trim().to_ascii_uppercase().as_str() {
            "R" => Operations::R,
            "W" => Operations::W,
            "RW" => Operations::RW,
            "E" => Operations::E,
            _ => Operations::None,
        }
    }
    /// Readable.
    pub fn readable(&self) -> bool {
        matches!(self, Operations::R | Operations::RW)
    }
    /// Writable.
    pub fn writable(&self) -> bool {
        matches!(self, Operations::W | Operations::RW)
    }
    /// Executable.
    pub fn executable(&self) -> bool {
        matches!(self, Operations::E)
    }
}

/// One resource of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceModel {
    /// Resource id.
    pub id: u16,
    /// Name.
    pub name: String,
    /// Operations.
    pub operations: Operations,
    /// Whether it has resource instances.
    pub multiple: bool,
    /// Whether it is mandatory.
    pub mandatory: bool,
    /// Data type.
    pub ty: ResourceType,
    /// Units, if given.
    pub units: String,
}

/// One object definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectModel {
    /// Object id.
    pub id: u16,
    /// Name.
    pub name: String,
    /// Object version (`"1.0"` when absent).
    pub version: String,
    /// Whether it may have several instances.
    pub multiple: bool,
    /// Resources by id.
    pub resources: HashMap<u16, ResourceModel>,
}

/// Why an object definition could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Not well-formed XML.
    #[error("object definition is not XML: {0}")]
    Xml(String),
    /// A required element is missing or wrong.
    #[error("object definition: {0}")]
    Invalid(String),
}

/// A set of object definitions.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    objects: HashMap<u16, ObjectModel>,
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Registry::default()
    }

    /// The built-in core objects 0–7 and IPSO objects 3300–3350.
    pub fn builtin() -> Self {
        let mut r = Registry::empty();
        for o in crate::builtin::objects() {
            r.objects.insert(o.id, o);
        }
        r
    }

    /// The definition of object `id`, if known.
    pub fn object(&self, id: u16) -> Option<&ObjectModel> {
        self.objects.get(&id)
    }

    /// The definition of a resource, if known.
    pub fn resource(&self, object: u16, resource: u16) -> Option<&ResourceModel> {
        self.objects.get(&object)?.resources.get(&resource)
    }

    /// Type of a resource, if known.
    pub fn resource_type(&self, object: u16, resource: u16) -> Option<ResourceType> {
        self.resource(object, resource).map(|r| r.ty)
    }

    /// Adds or replaces a definition.
    pub fn insert(&mut self, model: ObjectModel) {
        self.objects.insert(model.id, model);
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Loads every `<Object>` of an OMA object definition document (`<LWM2M><Object>…</Object></LWM2M>`)
    /// into the registry, returning the ids loaded.
    pub fn load_xml(&mut self, xml: &str) -> Result<Vec<u16>, ModelError> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| ModelError::Xml(e.to_string()))?;
        let mut ids = Vec::new();
        for obj in doc.descendants().filter(|n| n.has_tag_name("Object")) {
            let text = |n: roxmltree::Node<'_, '_>, tag: &str| {
                n.children()
                    .find(|c| c.has_tag_name(tag))
                    .and_then(|c| c.text())
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            };
            let id: u16 = text(obj, "ObjectID")
                .parse()
                .map_err(|_| ModelError::Invalid("ObjectID missing or not a number".into()))?;
            let mut model = ObjectModel {
                id,
                name: text(obj, "Name"),
                version: Some(text(obj, "ObjectVersion")).filter(|v| !v.is_empty()).unwrap_or("1.0".into()),
                multiple: text(obj, "MultipleInstances").eq_ignore_ascii_case("multiple"),
                resources: HashMap::new(),
            };
            let items =
                obj.children().find(|c| c.has_tag_name("Resources")).into_iter().flat_map(|r| r.children());
            for item in items.filter(|n| n.has_tag_name("Item")) {
                let rid: u16 = item.attribute("ID").and_then(|v| v.trim().parse().ok()).ok_or_else(|| {
                    ModelError::Invalid(format!("object {id}: resource Item without numeric ID"))
                })?;
                let ty_text = text(item, "Type");
                let ty = ResourceType::from_definition(&ty_text).ok_or_else(|| {
                    ModelError::Invalid(format!("object {id} resource {rid}: type {ty_text:?}"))
                })?;
                model.resources.insert(
                    rid,
                    ResourceModel {
                        id: rid,
                        name: text(item, "Name"),
                        operations: Operations::parse(&text(item, "Operations")),
                        multiple: text(item, "MultipleInstances").eq_ignore_ascii_case("multiple"),
                        mandatory: text(item, "Mandatory").eq_ignore_ascii_case("mandatory"),
                        ty,
                        units: text(item, "Units"),
                    },
                );
            }
            ids.push(id);
            self.objects.insert(id, model);
        }
        if ids.is_empty() {
            return Err(ModelError::Invalid("no <Object> element".into()));
        }
        Ok(ids)
    }
}
