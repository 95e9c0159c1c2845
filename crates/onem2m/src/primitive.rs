//! Request and response primitives (TS-0004 §7), independent of any protocol binding.

use serde_json::Value;

use crate::rsc::Rsc;

/// The operation of a request (`op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// CREATE (1).
    Create,
    /// RETRIEVE (2); with `fu=1` a discovery.
    Retrieve,
    /// UPDATE (3).
    Update,
    /// DELETE (4).
    Delete,
    /// NOTIFY (5).
    Notify,
}

impl Operation {
    /// The numeric `op` value.
    pub fn code(self) -> u8 {
        match self {
            Operation::Create => 1,
            Operation::Retrieve => 2,
            Operation::Update => 3,
            Operation::Delete => 4,
            Operation::Notify => 5,
        }
    }

    /// The access-control operation bit (`acop`): C=1, R=2, U=4, D=8, N=16, discovery=32.
    pub fn acop_bit(self, discovery: bool) -> u8 {
        match self {
            Operation::Create => 1,
            Operation::Retrieve if discovery => 32,
            Operation::Retrieve => 2,
            Operation::Update => 4,
            Operation::Delete => 8,
            Operation::Notify => 16,
        }
    }
}

/// Result content (`rcn`, TS-0004 §6.3.4.2.16). `None` in a request means the operation's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultContent {
    /// 0: nothing.
    Nothing,
    /// 1: attributes.
    Attributes,
    /// 2: hierarchical address.
    HierarchicalAddress,
    /// 3: hierarchical address and attributes.
    HierarchicalAddressAndAttributes,
    /// 4: attributes and child resources.
    AttributesAndChildResources,
    /// 5: attributes and child resource references.
    AttributesAndChildResourceReferences,
    /// 6: child resource references.
    ChildResourceReferences,
    /// 7: original resource.
    OriginalResource,
    /// 8: child resources.
    ChildResources,
    /// 9: modified attributes.
    ModifiedAttributes,
    /// 11: discovery result references (the default of a discovery).
    DiscoveryResultReferences,
}

impl ResultContent {
    /// The type for a numeric `rcn`.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Self::Nothing,
            1 => Self::Attributes,
            2 => Self::HierarchicalAddress,
            3 => Self::HierarchicalAddressAndAttributes,
            4 => Self::AttributesAndChildResources,
            5 => Self::AttributesAndChildResourceReferences,
            6 => Self::ChildResourceReferences,
            7 => Self::OriginalResource,
            8 => Self::ChildResources,
            9 => Self::ModifiedAttributes,
            11 => Self::DiscoveryResultReferences,
            _ => return None,
        })
    }

    /// The numeric `rcn`.
    pub fn code(self) -> u8 {
        match self {
            Self::Nothing => 0,
            Self::Attributes => 1,
            Self::HierarchicalAddress => 2,
            Self::HierarchicalAddressAndAttributes => 3,
            Self::AttributesAndChildResources => 4,
            Self::AttributesAndChildResourceReferences => 5,
            Self::ChildResourceReferences => 6,
            Self::OriginalResource => 7,
            Self::ChildResources => 8,
            Self::ModifiedAttributes => 9,
            Self::DiscoveryResultReferences => 11,
        }
    }
}

impl ResultContent {
    /// Whether this result content is allowed for `op` (TS-0004 table 6.3.4.2.16-1; `discovery` for `fu=1`).
    pub fn valid_for(self, op: Operation, discovery: bool) -> bool {
        use ResultContent as R;
        match op {
            Operation::Retrieve if discovery => {
                matches!(self, R::DiscoveryResultReferences | R::ChildResourceReferences)
            }
            Operation::Retrieve => matches!(
                self,
                R::Attributes
                    | R::AttributesAndChildResources
                    | R::ChildResources
                    | R::AttributesAndChildResourceReferences
                    | R::OriginalResource
                    | R::ChildResourceReferences
            ),
            Operation::Create => matches!(
                self,
                R::Attributes
                    | R::ModifiedAttributes
                    | R::HierarchicalAddress
                    | R::HierarchicalAddressAndAttributes
                    | R::Nothing
            ),
            Operation::Update => matches!(self, R::Attributes | R::ModifiedAttributes | R::Nothing),
            Operation::Delete => matches!(
                self,
                R::Attributes
                    | R::Nothing
                    | R::AttributesAndChildResources
                    | R::ChildResources
                    | R::AttributesAndChildResourceReferences
                    | R::ChildResourceReferences
            ),
            Operation::Notify => self == R::Nothing,
        }
    }
}

/// Filter usage (`fu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterUsage {
    /// 1: discovery.
    Discovery,
    /// 2: conditional retrieval.
    ConditionalRetrieval,
    /// 3: IPE on-demand discovery.
    IpeOnDemandDiscovery,
}

/// Filter criteria (TS-0004 §6.3.5.8), as far as this crate supports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterCriteria {
    /// `fu`.
    pub fu: Option<FilterUsage>,
    /// `ty` (several: matched per `fo`).
    pub ty: Vec<u16>,
    /// `lbl` (several: matched per `fo`).
    pub lbl: Vec<String>,
    /// `cra`: created after (oneM2M timestamp).
    pub cra: Option<String>,
    /// `crb`: created before.
    pub crb: Option<String>,
    /// `ms`: modified since.
    pub ms: Option<String>,
    /// `us`: unmodified since.
    pub us: Option<String>,
    /// `sts`: stateTag smaller.
    pub sts: Option<u64>,
    /// `stb`: stateTag bigger.
    pub stb: Option<u64>,
    /// `lim`: at most this many results.
    pub lim: Option<usize>,
    /// `ofst`: skip this many results (1-based in the spec: `ofst=1` is the first).
    pub ofst: Option<usize>,
    /// `lvl`: at most this many levels below the target.
    pub lvl: Option<usize>,
    /// `fo`: filter operation, `true` = AND (1, default), `false` = OR (2).
    pub fo_and: bool,
}

impl FilterCriteria {
    /// An empty filter (AND).
    pub fn new() -> Self {
        FilterCriteria { fo_and: true, ..Default::default() }
    }

    /// True if a condition (other than `fu`, `lim`, `ofst`, `lvl`) is set.
    pub fn has_conditions(&self) -> bool {
        !self.ty.is_empty()
            || !self.lbl.is_empty()
            || self.cra.is_some()
            || self.crb.is_some()
            || self.ms.is_some()
            || self.us.is_some()
            || self.sts.is_some()
            || self.stb.is_some()
    }
}

/// Discovery result type (`drt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DiscResType {
    /// 1: structured (hierarchical) addresses.
    #[default]
    Structured,
    /// 2: unstructured (resource identifiers).
    Unstructured,
}

/// A request primitive.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestPrimitive {
    /// `op`.
    pub op: Operation,
    /// `to`, as given (parse with [`crate::Target::parse`]).
    pub to: String,
    /// `fr`: the originator; `None` only for an initial AE registration.
    pub fr: Option<String>,
    /// `rqi`.
    pub rqi: String,
    /// `rvi`: the release version (`"3"`, `"4"`, `"5"`, ...).
    pub rvi: String,
    /// `ty` for CREATE, as given (the CSE checks it).
    pub ty: Option<u16>,
    /// `pc`: the content.
    pub pc: Option<Value>,
    /// `rcn`.
    pub rcn: Option<ResultContent>,
    /// Filter criteria.
    pub fc: FilterCriteria,
    /// `drt`.
    pub drt: DiscResType,
}

impl RequestPrimitive {
    /// A request with default fields.
    pub fn new(op: Operation, to: impl Into<String>, fr: Option<String>, rqi: impl Into<String>) -> Self {
        RequestPrimitive {
            op,
            to: to.into(),
            fr,
            rqi: rqi.into(),
            rvi: "3".to_owned(),
            ty: None,
            pc: None,
            rcn: None,
            fc: FilterCriteria::new(),
            drt: DiscResType::Structured,
        }
    }
}

/// A response primitive.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsePrimitive {
    /// `rsc`.
    pub rsc: Rsc,
    /// `rqi`, copied from the request.
    pub rqi: String,
    /// `rvi`, copied from the request.
    pub rvi: String,
    /// `pc`.
    pub pc: Option<Value>,
    /// For CREATE: the created resource's address (HTTP `Content-Location`).
    pub content_location: Option<String>,
}

impl ResponsePrimitive {
    /// A response with the given code and content.
    pub fn new(rsc: Rsc, rqi: impl Into<String>, pc: Option<Value>) -> Self {
        ResponsePrimitive { rsc, rqi: rqi.into(), rvi: "3".to_owned(), pc, content_location: None }
    }

    /// An error response whose content is `{"m2m:dbg": message}` (the debug-info convention of ACME and others).
    pub fn error(rsc: Rsc, rqi: impl Into<String>, message: impl Into<String>) -> Self {
        let mut m = serde_json::Map::new();
        m.insert("m2m:dbg".to_owned(), Value::String(message.into()));
        Self::new(rsc, rqi, Some(Value::Object(m)))
    }

    /// The `m2m:dbg` message of an error response.
    pub fn debug_message(&self) -> Option<&str> {
        self.pc.as_ref()?.get("m2m:dbg")?.as_str()
    }
}
