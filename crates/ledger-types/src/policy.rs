//! Endorsement policies: `ANY`, `MAJORITY`, `AND(...)`, `OR(...)`, `OutOf(n, ...)` over organizations, in
//! Fabric's string syntax, e.g. `AND('Org1MSP.peer', OR('Org2MSP.member', 'Org3MSP.member'))`.
//!
//! A policy is satisfied by a set of endorsers; one endorser satisfies at most one principal, so
//! `AND('Org1MSP', 'Org1MSP')` needs two distinct Org1 endorsers, as in Fabric.
//!
//! ```
//! use ledger_types::policy::{Endorser, Policy};
//! let p = Policy::parse("OutOf(2, 'Org1MSP', 'Org2MSP', 'Org3MSP')").unwrap();
//! let e = [Endorser::new("Org1MSP", "peer"), Endorser::new("Org3MSP", "peer")];
//! assert!(p.is_satisfied_by(&e));
//! assert!(!p.is_satisfied_by(&e[..1]));
//! ```

use std::collections::BTreeSet;
use std::fmt;

/// The most endorsers a policy evaluation considers (extra endorsements are ignored).
pub const MAX_ENDORSERS: usize = 32;

/// A role a principal may require.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Any identity of the organization.
    Member,
    /// A peer.
    Peer,
    /// A client.
    Client,
    /// An admin.
    Admin,
    /// An orderer.
    Orderer,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        Some(match s.to_ascii_lowercase().as_str() {
            "member" => Role::Member,
            "peer" => Role::Peer,
            "client" => Role::Client,
            "admin" => Role::Admin,
            "orderer" => Role::Orderer,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Peer => "peer",
            Role::Client => "client",
            Role::Admin => "admin",
            Role::Orderer => "orderer",
        }
    }
}

/// An endorsement policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// One endorser of the organization with the role.
    SignedBy { msp_id: String, role: Role },
    /// At least `n` of the sub-policies.
    OutOf(usize, Vec<Policy>),
    /// Any one member organization of the channel (resolved with [`Policy::resolve`]).
    Any,
    /// More than half of the channel's member organizations (resolved with [`Policy::resolve`]).
    Majority,
}

/// An endorser as the policy sees it: its organization and role (from its validated certificate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endorser {
    /// MSP id of the endorser's organization.
    pub msp_id: String,
    /// Role from the certificate's OU: `peer`, `client`, `admin`, `orderer` or `member`.
    pub role: String,
}

impl Endorser {
    /// An endorser from its MSP id and role name.
    pub fn new(msp_id: impl Into<String>, role: impl Into<String>) -> Endorser {
        Endorser { msp_id: msp_id.into(), role: role.into() }
    }
}

/// Why a policy string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad endorsement policy at byte {at}: {what}")]
pub struct PolicyParseError {
    /// Byte offset in the input.
    pub at: usize,
    /// What was expected.
    pub what: String,
}

impl Policy {
    /// Parses Fabric's policy syntax (`AND`, `OR`, `OutOf`, quoted `'MSP.role'` principals) plus `ANY` and
    /// `MAJORITY`.
    pub fn parse(s: &str) -> Result<Policy, PolicyParseError> {
        let mut p = Parser { s: s.as_bytes(), pos: 0, depth: 0 };
        let policy = p.policy()?;
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(p.err("end of input"));
        }
        Ok(policy)
    }

    /// Replaces `ANY` and `MAJORITY` by explicit `OutOf` policies over the channel's member organizations.
    pub fn resolve(&self, channel_orgs: &[String]) -> Policy {
        let each = || {
            channel_orgs.iter().map(|m| Policy::SignedBy { msp_id: m.clone(), role: Role::Member }).collect()
        };
        match self {
            Policy::Any => Policy::OutOf(1, each()),
            Policy::Majority => Policy::OutOf(channel_orgs.len() / 2 + 1, each()),
            Policy::OutOf(n, subs) => {
                Policy::OutOf(*n, subs.iter().map(|p| p.resolve(channel_orgs)).collect())
            }
            s @ Policy::SignedBy { .. } => s.clone(),
        }
    }

    /// Whether the endorsers satisfy the policy. `ANY`/`MAJORITY` must be resolved first; unresolved they
    /// are never satisfied.
    pub fn is_satisfied_by(&self, endorsers: &[Endorser]) -> bool {
        let endorsers = &endorsers[..endorsers.len().min(MAX_ENDORSERS)];
        !self.satisfying_sets(endorsers).is_empty()
    }

    /// The sets (bit masks over `endorsers`) of distinct endorsers that satisfy this policy, capped in size
    /// so that a hostile transaction cannot make evaluation explode.
    fn satisfying_sets(&self, endorsers: &[Endorser]) -> BTreeSet<u64> {
        const CAP: usize = 4096;
        match self {
            Policy::SignedBy { msp_id, role } => endorsers
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    &e.msp_id == msp_id
                        && (*role == Role::Member || e.role.eq_ignore_ascii_case(role.as_str()))
                })
                .map(|(i, _)| 1u64 << i)
                .collect(),
            Policy::OutOf(n, subs) => {
                let n = *n;
                if n == 0 {
                    return BTreeSet::from([0]);
                }
                // dp[k]: masks of disjoint endorser sets satisfying k of the sub-policies seen so far.
                let mut dp: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); n + 1];
                dp[0].insert(0);
                for sub in subs {
                    let options = sub.satisfying_sets(endorsers);
                    if options.is_empty() {
                        continue;
                    }
                    for k in (0..n).rev() {
                        let mut add = Vec::new();
                        for m in &dp[k] {
                            for o in &options {
                                if m & o == 0 {
                                    add.push(m | o);
                                }
                            }
                        }
                        for a in add {
                            if dp[k + 1].len() < CAP {
                                dp[k + 1].insert(a);
                            }
                        }
                    }
                }
                std::mem::take(&mut dp[n])
            }
            Policy::Any | Policy::Majority => BTreeSet::new(),
        }
    }
}

/// The channel policy a chaincode definition names for `MAJORITY`: the application group's `Endorsement`
/// (configtxgen's default, `MAJORITY Endorsement`, which ipechain's genesis writes too). Fabric's CLI puts
/// the same reference in a definition that names no policy.
pub const MAJORITY_REFERENCE: &str = "/Channel/Application/Endorsement";

/// Why a chaincode definition's `validation_parameter` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("validation parameter: {0}")]
pub struct ApplicationPolicyError(pub String);

const MAX_POLICY_NODES: usize = 256;

impl Role {
    fn to_fabric(self) -> fabric_protos::common::msp_role::MspRoleType {
        use fabric_protos::common::msp_role::MspRoleType as R;
        match self {
            Role::Member => R::Member,
            Role::Admin => R::Admin,
            Role::Client => R::Client,
            Role::Peer => R::Peer,
            Role::Orderer => R::Orderer,
        }
    }

    fn from_fabric(role: i32) -> Option<Role> {
        use fabric_protos::common::msp_role::MspRoleType as R;
        Some(match R::try_from(role).ok()? {
            R::Member => Role::Member,
            R::Admin => Role::Admin,
            R::Client => Role::Client,
            R::Peer => Role::Peer,
            R::Orderer => Role::Orderer,
        })
    }
}

impl Policy {
    /// The policy as a chaincode definition carries it: an encoded `common.ApplicationPolicy`. `MAJORITY`
    /// becomes a reference to the channel's [`MAJORITY_REFERENCE`]; anything else, `ANY` resolved over
    /// `channel_orgs`, a `SignaturePolicyEnvelope` as Fabric's `policydsl` compiles the same expression.
    pub fn to_application_policy(&self, channel_orgs: &[String]) -> Vec<u8> {
        use fabric_protos::common::{ApplicationPolicy, SignaturePolicyEnvelope, application_policy};
        use prost::Message;
        let ty = match self {
            Policy::Majority => {
                application_policy::Type::ChannelConfigPolicyReference(MAJORITY_REFERENCE.into())
            }
            other => {
                let mut identities = Vec::new();
                let rule = other.resolve(channel_orgs).to_signature_policy(&mut identities);
                application_policy::Type::SignaturePolicy(SignaturePolicyEnvelope {
                    version: 0,
                    rule: Some(rule),
                    identities,
                })
            }
        };
        ApplicationPolicy { r#type: Some(ty) }.encode_to_vec()
    }

    fn to_signature_policy(
        &self,
        identities: &mut Vec<fabric_protos::common::MspPrincipal>,
    ) -> fabric_protos::common::SignaturePolicy {
        use fabric_protos::common::{
            MspPrincipal, MspRole, SignaturePolicy, msp_principal, signature_policy,
        };
        use prost::Message;
        let ty = match self {
            Policy::SignedBy { msp_id, role } => {
                let principal = MspPrincipal {
                    principal_classification: msp_principal::Classification::Role as i32,
                    principal: MspRole { msp_identifier: msp_id.clone(), role: role.to_fabric() as i32 }
                        .encode_to_vec()
                        .into(),
                };
                let index = match identities.iter().position(|p| *p == principal) {
                    Some(i) => i,
                    None => {
                        identities.push(principal);
                        identities.len() - 1
                    }
                };
                signature_policy::Type::SignedBy(index as i32)
            }
            Policy::OutOf(n, subs) => signature_policy::Type::NOutOf(signature_policy::NOutOf {
                n: *n as i32,
                rules: subs.iter().map(|s| s.to_signature_policy(identities)).collect(),
            }),
            // Resolved before: unreachable for a resolved policy; an empty OutOf(1) is never satisfied.
            Policy::Any | Policy::Majority => {
                signature_policy::Type::NOutOf(signature_policy::NOutOf { n: 1, rules: Vec::new() })
            }
        };
        SignaturePolicy { r#type: Some(ty) }
    }

    /// Reads a definition's `validation_parameter` (an encoded `common.ApplicationPolicy`): a signature
    /// policy over role principals, or a reference to the channel's `Endorsement` or `LifecycleEndorsement`
    /// policy (both `MAJORITY` in ipechain's channels). Empty bytes are `MAJORITY`, as Fabric's CLI
    /// defaults. Other references, identity principals and malformed bytes are refused.
    pub fn from_application_policy(bytes: &[u8]) -> Result<Policy, ApplicationPolicyError> {
        use fabric_protos::common::{ApplicationPolicy, application_policy};
        use prost::Message;
        if bytes.is_empty() {
            return Ok(Policy::Majority);
        }
        let ap = ApplicationPolicy::decode(bytes)
            .map_err(|e| ApplicationPolicyError(format!("not a common.ApplicationPolicy: {e}")))?;
        match ap.r#type {
            Some(application_policy::Type::ChannelConfigPolicyReference(r)) => match r.as_str() {
                MAJORITY_REFERENCE | "/Channel/Application/LifecycleEndorsement" => Ok(Policy::Majority),
                other => Err(ApplicationPolicyError(format!(
                    "channel policy {other:?} is not one ipechain channels define (use {MAJORITY_REFERENCE})"
                ))),
            },
            Some(application_policy::Type::SignaturePolicy(env)) => {
                let rule = env
                    .rule
                    .ok_or_else(|| ApplicationPolicyError("signature policy without a rule".into()))?;
                let mut nodes = 0;
                Policy::from_signature_policy(&rule, &env.identities, 0, &mut nodes)
            }
            None => Err(ApplicationPolicyError("empty application policy".into())),
        }
    }

    fn from_signature_policy(
        rule: &fabric_protos::common::SignaturePolicy,
        identities: &[fabric_protos::common::MspPrincipal],
        depth: usize,
        nodes: &mut usize,
    ) -> Result<Policy, ApplicationPolicyError> {
        use fabric_protos::common::{MspRole, msp_principal, signature_policy};
        use prost::Message;
        *nodes += 1;
        if depth > 32 || *nodes > MAX_POLICY_NODES {
            return Err(ApplicationPolicyError("signature policy too large or too deep".into()));
        }
        match &rule.r#type {
            Some(signature_policy::Type::SignedBy(i)) => {
                let p = usize::try_from(*i)
                    .ok()
                    .and_then(|i| identities.get(i))
                    .ok_or_else(|| ApplicationPolicyError(format!("signed_by {i} names no identity")))?;
                if p.principal_classification != msp_principal::Classification::Role as i32 {
                    return Err(ApplicationPolicyError(
                        "only role principals ('MSP.role') are supported".into(),
                    ));
                }
                let role = MspRole::decode(p.principal.as_ref())
                    .map_err(|e| ApplicationPolicyError(format!("principal: {e}")))?;
                let r = Role::from_fabric(role.role)
                    .ok_or_else(|| ApplicationPolicyError(format!("unknown role {}", role.role)))?;
                Ok(Policy::SignedBy { msp_id: role.msp_identifier, role: r })
            }
            Some(signature_policy::Type::NOutOf(n)) => {
                let subs = n
                    .rules
                    .iter()
                    .map(|r| Policy::from_signature_policy(r, identities, depth + 1, nodes))
                    .collect::<Result<Vec<_>, _>>()?;
                let count = usize::try_from(n.n).ok().filter(|c| *c <= subs.len()).ok_or_else(|| {
                    ApplicationPolicyError(format!("n_out_of {} of {} rules", n.n, subs.len()))
                })?;
                Ok(Policy::OutOf(count, subs))
            }
            None => Err(ApplicationPolicyError("signature policy node without a type".into())),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::SignedBy { msp_id, role } => write!(f, "'{msp_id}.{}'", role.as_str()),
            Policy::Any => f.write_str("ANY"),
            Policy::Majority => f.write_str("MAJORITY"),
            Policy::OutOf(n, subs) => {
                write!(f, "OutOf({n}")?;
                for s in subs {
                    write!(f, ", {s}")?;
                }
                f.write_str(")")
            }
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> PolicyParseError {
        PolicyParseError { at: self.pos, what: format!("expected {what}") }
    }

    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
            self.pos += 1;
        }
        std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("")
    }

    fn policy(&mut self) -> Result<Policy, PolicyParseError> {
        self.depth += 1;
        if self.depth > 32 {
            return Err(self.err("less nesting (at most 32 levels)"));
        }
        self.skip_ws();
        let result = if self.s.get(self.pos) == Some(&b'\'') {
            self.principal()
        } else {
            let word = self.word().to_ascii_uppercase();
            match word.as_str() {
                "ANY" => Ok(Policy::Any),
                "MAJORITY" => Ok(Policy::Majority),
                "AND" | "OR" => {
                    let subs = self.args()?;
                    let n = if word == "AND" { subs.len() } else { 1 };
                    Ok(Policy::OutOf(n, subs))
                }
                "OUTOF" => {
                    if !self.eat(b'(') {
                        return Err(self.err("'('"));
                    }
                    let digits = self.word().to_owned();
                    let n: usize = digits.parse().map_err(|_| self.err("a count"))?;
                    let mut subs = Vec::new();
                    while self.eat(b',') {
                        subs.push(self.policy()?);
                    }
                    if !self.eat(b')') {
                        return Err(self.err("')'"));
                    }
                    if n > subs.len() {
                        return Err(self.err("a count no larger than the number of sub-policies"));
                    }
                    Ok(Policy::OutOf(n, subs))
                }
                _ => Err(self.err("ANY, MAJORITY, AND, OR, OutOf or a quoted principal")),
            }
        };
        self.depth -= 1;
        result
    }

    fn args(&mut self) -> Result<Vec<Policy>, PolicyParseError> {
        if !self.eat(b'(') {
            return Err(self.err("'('"));
        }
        let mut subs = vec![self.policy()?];
        while self.eat(b',') {
            subs.push(self.policy()?);
        }
        if !self.eat(b')') {
            return Err(self.err("')' or ','"));
        }
        Ok(subs)
    }

    fn principal(&mut self) -> Result<Policy, PolicyParseError> {
        self.pos += 1; // opening quote
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(|b| *b != b'\'') {
            self.pos += 1;
        }
        if self.pos >= self.s.len() {
            return Err(self.err("closing quote"));
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| self.err("UTF-8"))?;
        self.pos += 1;
        let (msp, role) = match text.rsplit_once('.') {
            Some((m, r)) => match Role::parse(r) {
                Some(role) => (m, role),
                None => (text, Role::Member),
            },
            None => (text, Role::Member),
        };
        if msp.is_empty() {
            return Err(self.err("an MSP id"));
        }
        Ok(Policy::SignedBy { msp_id: msp.to_owned(), role })
    }
}
