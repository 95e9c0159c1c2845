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
