//! The contract lifecycle on chain, as Fabric's `_lifecycle` system chaincode: organization admins approve
//! a chaincode definition (name, version, sequence, endorsement policy, and ipechain's extension: where it
//! runs), anyone may commit it once the channel's lifecycle policy (`MAJORITY` of the application
//! organizations, Fabric's default `LifecycleEndorsement`) has approved it, and from the next block on the
//! definition decides how the chaincode's transactions are endorsed and validated.
//!
//! The functions and their arguments are Fabric's (`ApproveChaincodeDefinitionForMyOrg`,
//! `CheckCommitReadiness`, `CommitChaincodeDefinition`, `QueryChaincodeDefinition`,
//! `QueryChaincodeDefinitions`, each taking the `lifecycle.*Args` message as its one argument), so a Fabric
//! admin tool that sends them through the Endorser or Gateway service speaks to it unchanged.
//!
//! State, in the `_lifecycle` namespace (public: ipechain has no private data, so approvals are public where
//! Fabric keeps them in each organization's implicit collection):
//!
//! | key | value | written by | validation requires |
//! |---|---|---|---|
//! | `namespaces/<name>` | the committed definition (`QueryChaincodeDefinitionsResult.ChaincodeDefinition`) | commit | the lifecycle policy (`MAJORITY` of the organizations' peers) |
//! | `approvals/<msp>/<name>` | that organization's approved definition (same message) | approve, by an admin of `<msp>` | a peer of `<msp>` |
//!
//! The key-level requirements are [`required_policy`]'s: a pure function of the write set, applied by the
//! validator and used by the gateway to choose endorsers. The definitions the genesis block carries are
//! sequence 1 until a committed definition replaces them.

use crate::validator::ChannelRules;
use bytes::Bytes;
use contract::{Contract, ContractError, TxContext};
use fabric_protos::lifecycle::{
    ApproveChaincodeDefinitionForMyOrgArgs, ChaincodeRuntime, CheckCommitReadinessArgs,
    CheckCommitReadinessResult, CommitChaincodeDefinitionArgs, QueryChaincodeDefinitionArgs,
    QueryChaincodeDefinitionResult, QueryChaincodeDefinitionsResult, chaincode_runtime,
    query_chaincode_definitions_result::ChaincodeDefinition,
};
use ledger_types::policy::{Endorser, Policy, Role};
use ledger_types::proto::{ChannelConfig, NsRwSet};
use ledger_types::store::{StateSnapshot, StoreError, UpdateBatch};
use prost::Message;
use std::collections::BTreeMap;

/// The lifecycle's contract name and state namespace.
pub const NAMESPACE: &str = "_lifecycle";
const DEFINITIONS: &str = "namespaces/";
const APPROVALS: &str = "approvals/";
/// Fabric's default endorsement and validation plugins (the only ones ipechain has).
pub const ESCC: &str = "escc";
/// See [`ESCC`].
pub const VSCC: &str = "vscc";

/// The state key of a committed definition.
pub fn definition_key(name: &str) -> String {
    format!("{DEFINITIONS}{name}")
}

/// The state key of an organization's approval.
pub fn approval_key(msp_id: &str, name: &str) -> String {
    format!("{APPROVALS}{msp_id}/{name}")
}

/// Whether `name` is a valid chaincode name (Fabric's rule: `^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$`, at most
/// 128 characters). `_lifecycle` itself is not definable.
pub fn valid_name(name: &str) -> bool {
    let parts_ok =
        name.split(['-', '_']).all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    !name.is_empty() && name.len() <= 128 && parts_ok
}

/// The lifecycle policy: `MAJORITY` of the channel's application organizations.
pub fn lifecycle_policy(members: &[String]) -> Policy {
    Policy::Majority.resolve(members)
}

/// What endorsements a `_lifecycle` transaction with this write set needs: a peer of `<msp>` for each
/// approval it writes, the lifecycle policy for a definition (or for anything else, which the lifecycle
/// never writes). `None` for a key outside the layout: such a transaction cannot be valid.
pub fn required_policy(rwset: &[NsRwSet], members: &[String]) -> Option<Policy> {
    let mut subs: Vec<Policy> = Vec::new();
    let mut push = |p: Policy| {
        if !subs.contains(&p) {
            subs.push(p);
        }
    };
    for ns in rwset {
        for w in &ns.writes {
            if let Some(rest) = w.key.strip_prefix(APPROVALS) {
                let (msp, name) = rest.rsplit_once('/')?;
                if msp.is_empty() || !valid_name(name) {
                    return None;
                }
                push(Policy::SignedBy { msp_id: msp.to_owned(), role: Role::Peer });
            } else if let Some(name) = w.key.strip_prefix(DEFINITIONS) {
                if !valid_name(name) {
                    return None;
                }
                push(lifecycle_policy(members));
            } else {
                return None;
            }
        }
    }
    Some(match subs.len() {
        0 => lifecycle_policy(members),
        1 => subs.remove(0),
        n => Policy::OutOf(n, subs),
    })
}

/// The definitions a genesis block carries, as sequence-1 committed definitions that run as installed.
pub fn genesis_definitions(config: &ChannelConfig) -> BTreeMap<String, ChaincodeDefinition> {
    let members = config.member_msp_ids();
    config
        .contracts
        .iter()
        .map(|c| {
            // An unparsable genesis policy is refused by `ChannelConfig::validate` before this runs; an empty
            // OutOf is never satisfied, should one slip through.
            let vp = Policy::parse(&c.endorsement_policy)
                .map(|p| p.to_application_policy(&members))
                .unwrap_or_else(|_| Policy::OutOf(1, Vec::new()).to_application_policy(&members));
            let def = ChaincodeDefinition {
                name: c.name.clone(),
                sequence: 1,
                version: c.version.clone(),
                endorsement_plugin: ESCC.into(),
                validation_plugin: VSCC.into(),
                validation_parameter: vp.into(),
                collections: Vec::new().into(),
                init_required: false,
                ipechain_runtime: None,
            };
            (c.name.clone(), def)
        })
        .collect()
}

/// The definitions committed through the lifecycle, from state (a value that does not decode is skipped:
/// every peer skips it alike).
pub fn committed_definitions(
    snapshot: &dyn StateSnapshot,
) -> Result<BTreeMap<String, ChaincodeDefinition>, StoreError> {
    let mut out = BTreeMap::new();
    // '0' follows '/': the range covers exactly the keys under `namespaces/`.
    for (key, v) in snapshot.range(NAMESPACE, DEFINITIONS, "namespaces0", usize::MAX)? {
        let Some(name) = key.strip_prefix(DEFINITIONS) else { continue };
        match ChaincodeDefinition::decode(v.value.as_slice()) {
            Ok(mut def) => {
                def.name = name.to_owned();
                out.insert(name.to_owned(), def);
            }
            Err(e) => tracing::warn!(%key, error = %e, "undecodable chaincode definition in state: skipped"),
        }
    }
    Ok(out)
}

/// Where a definition says its chaincode runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// As the peer has it installed: a built-in contract of that name, or the peer's own
    /// `[chaincodes.<name>]` server (definitions from the genesis block and from Fabric's tools).
    AsInstalled,
    /// A contract built into the peer.
    BuiltIn,
    /// A chaincode server at `address` (TLS when `tls_root_cert` is not empty).
    External {
        /// `host:port`.
        address: String,
        /// PEM of the server certificate's CA; empty for plain TCP.
        tls_root_cert: Vec<u8>,
    },
}

/// The runtime a definition names.
pub fn runtime(def: &ChaincodeDefinition) -> Runtime {
    match def.ipechain_runtime.as_ref().and_then(|r| r.kind.as_ref()) {
        None => Runtime::AsInstalled,
        Some(chaincode_runtime::Kind::BuiltIn(_)) => Runtime::BuiltIn,
        Some(chaincode_runtime::Kind::External(e)) => {
            Runtime::External { address: e.address.clone(), tls_root_cert: e.tls_root_cert.to_vec() }
        }
    }
}

/// A definition's fields as the arguments carry them (the name is the key's).
struct Proposed {
    name: String,
    def: ChaincodeDefinition,
}

#[allow(clippy::too_many_arguments)]
fn proposed(
    sequence: i64,
    name: String,
    version: String,
    endorsement_plugin: String,
    validation_plugin: String,
    validation_parameter: Bytes,
    collections: Bytes,
    init_required: bool,
    runtime: Option<ChaincodeRuntime>,
) -> Result<Proposed, ContractError> {
    let bad = |m: String| Err(ContractError::BadRequest(m));
    if !valid_name(&name) {
        return bad(format!("invalid chaincode name {name:?}: letters and digits, parts joined by - or _"));
    }
    if version.is_empty() || version.len() > 128 {
        return bad("a chaincode definition needs a version of 1..=128 characters".into());
    }
    if sequence < 1 {
        return bad(format!("sequence must be at least 1, got {sequence}"));
    }
    if !collections.is_empty() {
        return bad("private data collections are not supported".into());
    }
    let escc = if endorsement_plugin.is_empty() { ESCC.to_owned() } else { endorsement_plugin };
    let vscc = if validation_plugin.is_empty() { VSCC.to_owned() } else { validation_plugin };
    if escc != ESCC || vscc != VSCC {
        return bad(format!("only the endorsement plugin {ESCC:?} and validation plugin {VSCC:?} exist"));
    }
    if let Err(e) = Policy::from_application_policy(&validation_parameter) {
        return bad(e.to_string());
    }
    if let Some(chaincode_runtime::Kind::External(e)) = runtime.as_ref().and_then(|r| r.kind.as_ref())
        && (e.address.is_empty() || !e.address.contains(':'))
    {
        return bad(format!("external chaincode address {:?} is not host:port", e.address));
    }
    let def = ChaincodeDefinition {
        name: String::new(),
        sequence,
        version,
        endorsement_plugin: escc,
        validation_plugin: vscc,
        validation_parameter,
        collections: Vec::new().into(),
        init_required,
        ipechain_runtime: runtime,
    };
    Ok(Proposed { name, def })
}

/// The `_lifecycle` contract of one channel. Every peer has it; it is not defined by a definition.
pub struct LifecycleContract {
    members: Vec<String>,
    genesis: BTreeMap<String, ChaincodeDefinition>,
}

impl LifecycleContract {
    /// The lifecycle of the channel `config` describes.
    pub fn new(config: &ChannelConfig) -> LifecycleContract {
        LifecycleContract { members: config.member_msp_ids(), genesis: genesis_definitions(config) }
    }

    /// The committed definition of `name` (state first, then the genesis block's), read into the rwset.
    fn current(
        &self,
        ctx: &mut TxContext<'_>,
        name: &str,
    ) -> Result<Option<ChaincodeDefinition>, ContractError> {
        match ctx.get_state(&definition_key(name))? {
            Some(bytes) => {
                let mut def = ChaincodeDefinition::decode(bytes.as_slice())
                    .map_err(|e| ContractError::Internal(format!("stored definition of {name}: {e}")))?;
                def.name = String::new();
                Ok(Some(def))
            }
            None => Ok(self.genesis.get(name).cloned().map(|mut d| {
                d.name = String::new();
                d
            })),
        }
    }

    /// Every organization's approval of exactly `def` for `name`.
    fn approvals(
        &self,
        ctx: &mut TxContext<'_>,
        name: &str,
        def: &ChaincodeDefinition,
    ) -> Result<BTreeMap<String, bool>, ContractError> {
        let mut out = BTreeMap::new();
        for msp in &self.members {
            let approved = match ctx.get_state(&approval_key(msp, name))? {
                Some(bytes) => ChaincodeDefinition::decode(bytes.as_slice()).is_ok_and(|a| &a == def),
                None => false,
            };
            out.insert(msp.clone(), approved);
        }
        Ok(out)
    }

    fn approve(&self, ctx: &mut TxContext<'_>, arg: &[u8]) -> Result<Vec<u8>, ContractError> {
        let a = decode::<ApproveChaincodeDefinitionForMyOrgArgs>(arg)?;
        let caller = ctx.caller().clone();
        if !caller.role.eq_ignore_ascii_case("admin") {
            return Err(ContractError::Forbidden(format!(
                "approving a chaincode definition takes an admin of {}; {} is a {}",
                caller.msp_id, caller.subject, caller.role
            )));
        }
        if !self.members.contains(&caller.msp_id) {
            return Err(ContractError::Forbidden(format!(
                "{} is not an application organization of this channel",
                caller.msp_id
            )));
        }
        let p = proposed(
            a.sequence,
            a.name,
            a.version,
            a.endorsement_plugin,
            a.validation_plugin,
            a.validation_parameter,
            a.collections,
            a.init_required,
            a.ipechain_runtime,
        )?;
        let current = self.current(ctx, &p.name)?;
        let committed = current.as_ref().map_or(0, |d| d.sequence);
        let same_as_committed = current.as_ref() == Some(&p.def);
        if p.def.sequence != committed + 1 && !(p.def.sequence == committed && same_as_committed) {
            return Err(ContractError::BadRequest(format!(
                "requested sequence is {}, but new definition must be sequence {}",
                p.def.sequence,
                committed + 1
            )));
        }
        ctx.put_state(&approval_key(&caller.msp_id, &p.name), p.def.encode_to_vec())?;
        Ok(Vec::new())
    }

    fn check_commit_readiness(&self, ctx: &mut TxContext<'_>, arg: &[u8]) -> Result<Vec<u8>, ContractError> {
        let a = decode::<CheckCommitReadinessArgs>(arg)?;
        let p = proposed(
            a.sequence,
            a.name,
            a.version,
            a.endorsement_plugin,
            a.validation_plugin,
            a.validation_parameter,
            a.collections,
            a.init_required,
            a.ipechain_runtime,
        )?;
        let approvals = self.approvals(ctx, &p.name, &p.def)?;
        Ok(CheckCommitReadinessResult { approvals }.encode_to_vec())
    }

    fn commit(&self, ctx: &mut TxContext<'_>, arg: &[u8]) -> Result<Vec<u8>, ContractError> {
        let a = decode::<CommitChaincodeDefinitionArgs>(arg)?;
        let p = proposed(
            a.sequence,
            a.name,
            a.version,
            a.endorsement_plugin,
            a.validation_plugin,
            a.validation_parameter,
            a.collections,
            a.init_required,
            a.ipechain_runtime,
        )?;
        let committed = self.current(ctx, &p.name)?.map_or(0, |d| d.sequence);
        if p.def.sequence != committed + 1 {
            return Err(ContractError::BadRequest(format!(
                "requested sequence is {}, but new definition must be sequence {}",
                p.def.sequence,
                committed + 1
            )));
        }
        let approvals = self.approvals(ctx, &p.name, &p.def)?;
        let approving: Vec<Endorser> = approvals
            .iter()
            .filter(|(_, ok)| **ok)
            .map(|(m, _)| Endorser::new(m.clone(), "member"))
            .collect();
        let policy = lifecycle_policy(&self.members);
        if !policy.is_satisfied_by(&approving) {
            let list: Vec<String> = approvals.iter().map(|(m, ok)| format!("{m}: {ok}")).collect();
            return Err(ContractError::Conflict(format!(
                "chaincode definition not agreed to by enough organizations ({policy} needed; approvals: [{}])",
                list.join(", ")
            )));
        }
        ctx.put_state(&definition_key(&p.name), p.def.encode_to_vec())?;
        ctx.set_event("ChaincodeDefinitionCommitted", p.name.into_bytes());
        Ok(Vec::new())
    }

    fn query_one(&self, ctx: &mut TxContext<'_>, arg: &[u8]) -> Result<Vec<u8>, ContractError> {
        let a = decode::<QueryChaincodeDefinitionArgs>(arg)?;
        let def = self
            .current(ctx, &a.name)?
            .ok_or_else(|| ContractError::NotFound(format!("namespace {} is not defined", a.name)))?;
        let approvals = self.approvals(ctx, &a.name, &def)?;
        Ok(QueryChaincodeDefinitionResult {
            sequence: def.sequence,
            version: def.version,
            endorsement_plugin: def.endorsement_plugin,
            validation_plugin: def.validation_plugin,
            validation_parameter: def.validation_parameter,
            collections: Vec::new().into(),
            init_required: def.init_required,
            approvals,
            ipechain_runtime: def.ipechain_runtime,
        }
        .encode_to_vec())
    }

    fn query_all(&self, ctx: &mut TxContext<'_>) -> Result<Vec<u8>, ContractError> {
        let mut all = self.genesis.clone();
        for (key, bytes) in ctx.get_range(DEFINITIONS, "namespaces0", contract::MAX_RANGE)? {
            let Some(name) = key.strip_prefix(DEFINITIONS) else { continue };
            if let Ok(def) = ChaincodeDefinition::decode(bytes.as_slice()) {
                all.insert(name.to_owned(), def);
            }
        }
        let chaincode_definitions = all
            .into_iter()
            .map(|(name, mut def)| {
                def.name = name;
                def
            })
            .collect();
        Ok(QueryChaincodeDefinitionsResult { chaincode_definitions }.encode_to_vec())
    }
}

fn decode<M: Message + Default>(arg: &[u8]) -> Result<M, ContractError> {
    M::decode(arg).map_err(|e| ContractError::BadRequest(format!("arguments do not decode: {e}")))
}

impl Contract for LifecycleContract {
    fn name(&self) -> &str {
        NAMESPACE
    }

    fn invoke(
        &self,
        ctx: &mut TxContext<'_>,
        function: &str,
        args: &[Vec<u8>],
    ) -> Result<Vec<u8>, ContractError> {
        let arg = args.first().map_or(&[][..], Vec::as_slice);
        match function {
            "ApproveChaincodeDefinitionForMyOrg" => self.approve(ctx, arg),
            "CheckCommitReadiness" => self.check_commit_readiness(ctx, arg),
            "CommitChaincodeDefinition" => self.commit(ctx, arg),
            "QueryChaincodeDefinition" => self.query_one(ctx, arg),
            "QueryChaincodeDefinitions" => self.query_all(ctx),
            "InstallChaincode"
            | "QueryInstalledChaincode"
            | "QueryInstalledChaincodes"
            | "GetInstalledChaincodePackage" => Err(ContractError::BadRequest(format!(
                "{function}: ipechain peers install no packages; a definition names where its chaincode runs \
                 (built in, or a chaincode server's address)"
            ))),
            other => Err(ContractError::BadRequest(format!("unknown _lifecycle function {other:?}"))),
        }
    }
}

/// The rules a channel has after its committed definitions: the genesis block's, with each committed
/// definition replacing or adding one (policy, version, runtime).
pub fn rules_with_definitions(
    base: &ChannelRules,
    committed: BTreeMap<String, ChaincodeDefinition>,
) -> ChannelRules {
    let mut rules = base.clone();
    for (name, def) in committed {
        // A policy that does not read (only a crafted definition could carry one) is never satisfied.
        let policy = Policy::from_application_policy(&def.validation_parameter)
            .map(|p| p.resolve(&rules.members))
            .unwrap_or_else(|_| Policy::OutOf(1, Vec::new()));
        rules.policies.insert(name.clone(), policy);
        rules.versions.insert(name.clone(), def.version.clone());
        rules.definitions.insert(name, def);
    }
    rules
}

/// The key in a chaincode's own namespace that records which definition sequence initialized it (Fabric's
/// `"\x00" + utf8.MaxRune + "initialized"`, a key no composite key or ordinary key collides with).
pub const INITIALIZED_KEY: &str = "\u{0}\u{10FFFF}initialized";

/// Fabric's initialization rule, checked before the contract runs: a definition with `init_required` takes
/// one `is_init` invocation first (per definition sequence, recorded under [`INITIALIZED_KEY`] in the
/// transaction's writes), and no other invocation before it; a definition without it refuses `is_init`.
pub fn check_init(
    ctx: &mut TxContext<'_>,
    def: Option<&ChaincodeDefinition>,
    is_init: bool,
) -> Result<(), ContractError> {
    ctx.set_init(is_init);
    let Some(def) = def.filter(|d| d.init_required) else {
        return if is_init {
            Err(ContractError::BadRequest(
                "the chaincode does not require initialization but was called as init".into(),
            ))
        } else {
            Ok(())
        };
    };
    let done = ctx.get_state(INITIALIZED_KEY)?.is_some_and(|v| v == def.sequence.to_string().into_bytes());
    match (is_init, done) {
        (true, true) => Err(ContractError::BadRequest(format!(
            "the chaincode is already initialized for sequence {} but was called as init",
            def.sequence
        ))),
        (true, false) => ctx.put_state(INITIALIZED_KEY, def.sequence.to_string().into_bytes()),
        (false, false) => Err(ContractError::BadRequest(format!(
            "the chaincode has not been initialized for sequence {}: call it as init first",
            def.sequence
        ))),
        (false, true) => Ok(()),
    }
}

/// Whether a block's updates commit a chaincode definition (the rules change after it).
pub fn defines_contracts(batch: &UpdateBatch) -> bool {
    batch
        .updates
        .range((NAMESPACE.to_owned(), DEFINITIONS.to_owned())..)
        .next()
        .is_some_and(|((ns, key), _)| ns == NAMESPACE && key.starts_with(DEFINITIONS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_types::proto::KvWrite;

    fn writes(keys: &[&str]) -> Vec<NsRwSet> {
        vec![NsRwSet {
            namespace: NAMESPACE.into(),
            writes: keys
                .iter()
                .map(|k| KvWrite { key: (*k).into(), is_delete: false, value: vec![1] })
                .collect(),
            ..Default::default()
        }]
    }

    #[test]
    fn each_key_names_who_must_endorse_it() {
        let members = vec!["Org1MSP".to_owned(), "Org2MSP".to_owned(), "Org3MSP".to_owned()];
        let peer = |m: &str| Endorser::new(m, "peer");
        // An approval: a peer of the approving organization, no other.
        let p = required_policy(&writes(&["approvals/Org2MSP/assets"]), &members).unwrap();
        assert!(p.is_satisfied_by(&[peer("Org2MSP")]));
        assert!(!p.is_satisfied_by(&[peer("Org1MSP"), peer("Org3MSP")]));
        // A definition: a majority (2 of 3).
        let p = required_policy(&writes(&[&definition_key("assets")]), &members).unwrap();
        assert!(p.is_satisfied_by(&[peer("Org1MSP"), peer("Org3MSP")]));
        assert!(!p.is_satisfied_by(&[peer("Org1MSP")]));
        // Anything outside the layout can never be valid.
        for bad in ["elsewhere", "approvals/assets", "namespaces/bad name", "approvals//assets"] {
            assert!(required_policy(&writes(&[bad]), &members).is_none(), "{bad}");
        }
    }

    #[test]
    fn names_follow_fabrics_rule() {
        for ok in ["assets", "a-b_c", "ipe", "kv2"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "_lifecycle", "a--b", "-a", "a b", "a/b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn policies_survive_the_definition_encoding() {
        let members = vec!["Org1MSP".to_owned(), "Org2MSP".to_owned()];
        for text in
            ["MAJORITY", "AND('Org1MSP.peer', 'Org2MSP.peer')", "OutOf(1, 'Org1MSP.member', 'Org2MSP.admin')"]
        {
            let p = Policy::parse(text).unwrap();
            let back = Policy::from_application_policy(&p.to_application_policy(&members)).unwrap();
            assert_eq!(back.resolve(&members), p.resolve(&members), "{text}");
        }
        // ANY is written out over the channel's organizations, as Fabric's policydsl would need it.
        let any = Policy::from_application_policy(&Policy::Any.to_application_policy(&members)).unwrap();
        assert_eq!(any, Policy::Any.resolve(&members));
        assert_eq!(Policy::from_application_policy(&[]).unwrap(), Policy::Majority);
        assert!(Policy::from_application_policy(&[0xff, 0x01]).is_err());
    }
}
