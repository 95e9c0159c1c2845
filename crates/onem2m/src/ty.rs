//! Resource types (TS-0004 §6.3.4.2.1) with their numeric `ty` and JSON short names.

/// A oneM2M resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ResourceType {
    /// accessControlPolicy (1), `m2m:acp`.
    AccessControlPolicy,
    /// AE (2), `m2m:ae`.
    Ae,
    /// container (3), `m2m:cnt`.
    Container,
    /// contentInstance (4), `m2m:cin`.
    ContentInstance,
    /// CSEBase (5), `m2m:cb`.
    CseBase,
    /// group (9), `m2m:grp`.
    Group,
    /// node (14), `m2m:nod`.
    Node,
    /// pollingChannel (15), `m2m:pch`.
    PollingChannel,
    /// remoteCSE (16), `m2m:csr`.
    RemoteCse,
    /// request (17), `m2m:req`.
    Request,
    /// subscription (23), `m2m:sub`.
    Subscription,
    /// flexContainer (28).
    FlexContainer,
    /// timeSeries (29), `m2m:ts`.
    TimeSeries,
    /// timeSeriesInstance (30), `m2m:tsi`.
    TimeSeriesInstance,
}

const TABLE: &[(ResourceType, u16, &str)] = &[
    (ResourceType::AccessControlPolicy, 1, "m2m:acp"),
    (ResourceType::Ae, 2, "m2m:ae"),
    (ResourceType::Container, 3, "m2m:cnt"),
    (ResourceType::ContentInstance, 4, "m2m:cin"),
    (ResourceType::CseBase, 5, "m2m:cb"),
    (ResourceType::Group, 9, "m2m:grp"),
    (ResourceType::Node, 14, "m2m:nod"),
    (ResourceType::PollingChannel, 15, "m2m:pch"),
    (ResourceType::RemoteCse, 16, "m2m:csr"),
    (ResourceType::Request, 17, "m2m:req"),
    (ResourceType::Subscription, 23, "m2m:sub"),
    (ResourceType::FlexContainer, 28, "m2m:fcnt"),
    (ResourceType::TimeSeries, 29, "m2m:ts"),
    (ResourceType::TimeSeriesInstance, 30, "m2m:tsi"),
];

impl ResourceType {
    /// The numeric resource type `ty`.
    pub fn code(self) -> u16 {
        TABLE.iter().find(|(t, _, _)| *t == self).map_or(0, |(_, c, _)| *c)
    }

    /// The type for a numeric `ty`.
    pub fn from_code(code: u16) -> Option<Self> {
        TABLE.iter().find(|(_, c, _)| *c == code).map(|(t, _, _)| *t)
    }

    /// The JSON member name of a resource of this type (e.g. `m2m:cin`).
    pub fn short_name(self) -> &'static str {
        TABLE.iter().find(|(t, _, _)| *t == self).map_or("", |(_, _, n)| n)
    }

    /// The type whose JSON member name is `name`.
    pub fn from_short_name(name: &str) -> Option<Self> {
        TABLE.iter().find(|(_, _, n)| *n == name).map(|(t, _, _)| *t)
    }

    /// The prefix of resource identifiers a CSE assigns to this type (`cnt`, `cin`, ...).
    pub fn ri_prefix(self) -> &'static str {
        self.short_name().strip_prefix("m2m:").unwrap_or("res")
    }
}
