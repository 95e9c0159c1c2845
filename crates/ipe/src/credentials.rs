//! Device credentials bound on chain: which security mode and which credential an LwM2M endpoint must
//! authenticate with. Only **fingerprints** are kept (every organization reads the chain): for PSK the
//! identity and the SHA-256 of the key, for X.509 the SHA-256 of the certificate's DER, for a raw public key
//! (RFC 7250) the SHA-256 of its DER SubjectPublicKeyInfo. The PSK secret stays in the gateway's key file.
//!
//! State: `dcred/<endpoint>` (a [`DeviceCredentials`]) and the index `dcid/<mode>/<identity>` → endpoint
//! (for X.509 and RPK the identity is the fingerprint), which enforces **one identity, one endpoint**. Changes are
//! admin transactions; each emits `device.credentials` to every gateway.
//!
//! An endpoint may also have a **bootstrap credential** (`bootstrap`): what the device proves itself with to
//! the LwM2M bootstrap server, which then provisions the server credential. It is separate from the server
//! credential (its own index `dcid/bs-<mode>/<identity>`, and a PSK must differ from the server PSK).

use contract::{ContractError, TxContext};
use serde::{Deserialize, Serialize};

use crate::events::{self, CredentialsEvent};
use crate::model::{Address, ListCredentialsArgs, Submitter};
use crate::{IpeContract, bad, emit, load, store, to_json};

/// Longest endpoint name accepted (bytes).
pub const MAX_ENDPOINT: usize = 255;
/// Longest PSK identity accepted (bytes).
pub const MAX_IDENTITY: usize = 128;

const CRED_PREFIX: &str = "dcred/";
const CRED_END: &str = "dcred0";
const ID_PREFIX: &str = "dcid/";

/// The security mode an endpoint authenticates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    /// Pre-shared key (DTLS PSK).
    Psk,
    /// X.509 client certificate (pinned by fingerprint).
    X509,
    /// Raw public key (RFC 7250), pinned by the fingerprint of its SubjectPublicKeyInfo.
    Rpk,
}

impl SecurityMode {
    fn as_str(self) -> &'static str {
        match self {
            SecurityMode::Psk => "psk",
            SecurityMode::X509 => "x509",
            SecurityMode::Rpk => "rpk",
        }
    }
}

/// The argument of `set_device_credentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCredentials {
    /// LwM2M endpoint name.
    pub endpoint: String,
    /// `psk`, `x509` or `rpk`.
    pub mode: String,
    /// PSK identity (PSK only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// SHA-256, hex: of the PSK key (PSK), of the certificate's DER (X.509) or of the public key's DER
    /// SubjectPublicKeyInfo (RPK).
    pub fingerprint: String,
    /// The bootstrap credential, if the device bootstraps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<SetBootstrap>,
}

/// The bootstrap part of [`SetCredentials`]: mode, identity and fingerprint as for the server credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBootstrap {
    /// `psk`, `x509` or `rpk`.
    pub mode: String,
    /// PSK identity (PSK only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// SHA-256, hex.
    pub fingerprint: String,
}

/// A bootstrap credential as kept on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapCredentials {
    /// Security mode towards the bootstrap server.
    pub mode: SecurityMode,
    /// PSK identity (PSK only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// SHA-256 (lowercase hex) of the bootstrap PSK, of the certificate's DER or of the public key's SPKI.
    pub fingerprint: String,
}

impl BootstrapCredentials {
    fn index_identity(&self) -> &str {
        match self.mode {
            SecurityMode::Psk => self.identity.as_deref().unwrap_or_default(),
            SecurityMode::X509 | SecurityMode::Rpk => &self.fingerprint,
        }
    }
}

/// An endpoint's binding as kept on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCredentials {
    /// LwM2M endpoint name.
    pub endpoint: String,
    /// Security mode.
    pub mode: SecurityMode,
    /// PSK identity (PSK only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// SHA-256 (lowercase hex, 64 characters) of the PSK key, of the certificate's DER or of the public key's
    /// DER SubjectPublicKeyInfo.
    pub fingerprint: String,
    /// The bootstrap credential, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapCredentials>,
    /// Proposal timestamp of the last change.
    pub bound_at: i64,
    /// Who bound it.
    pub bound_by: Submitter,
}

impl DeviceCredentials {
    /// The identity the index is keyed by: the PSK identity, or the certificate's or public key's fingerprint.
    pub fn index_identity(&self) -> &str {
        match self.mode {
            SecurityMode::Psk => self.identity.as_deref().unwrap_or_default(),
            SecurityMode::X509 | SecurityMode::Rpk => &self.fingerprint,
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn cred_key(endpoint: &str) -> String {
    format!("{CRED_PREFIX}{endpoint}")
}

fn id_key(mode: SecurityMode, identity: &str) -> String {
    format!("{ID_PREFIX}{}/{identity}", mode.as_str())
}

fn bs_id_key(mode: SecurityMode, identity: &str) -> String {
    format!("{ID_PREFIX}bs-{}/{identity}", mode.as_str())
}

/// Checks an argument and normalizes it (lowercase fingerprint); the error says what is wrong.
pub fn check(arg: &SetCredentials) -> Result<(SecurityMode, Option<String>, String), String> {
    let (mode, identity, fp) =
        check_credential(&arg.endpoint, &arg.mode, arg.identity.as_ref(), &arg.fingerprint)?;
    if let Some(b) = &arg.bootstrap {
        let (_, _, bs_fp) = check_credential(&arg.endpoint, &b.mode, b.identity.as_ref(), &b.fingerprint)
            .map_err(|e| format!("bootstrap: {e}"))?;
        if bs_fp == fp {
            return Err("bootstrap: the bootstrap credential must differ from the server credential".into());
        }
    }
    Ok((mode, identity, fp))
}

/// Checks the bootstrap part (after [`check`] passed).
fn check_bootstrap(arg: &SetCredentials) -> Result<Option<BootstrapCredentials>, String> {
    match &arg.bootstrap {
        None => Ok(None),
        Some(b) => {
            let (mode, identity, fingerprint) =
                check_credential(&arg.endpoint, &b.mode, b.identity.as_ref(), &b.fingerprint)?;
            Ok(Some(BootstrapCredentials { mode, identity, fingerprint }))
        }
    }
}

fn check_credential(
    endpoint: &str,
    mode: &str,
    identity: Option<&String>,
    fp: &str,
) -> Result<(SecurityMode, Option<String>, String), String> {
    if endpoint.is_empty() {
        return Err("endpoint must not be empty".into());
    }
    if endpoint.len() > MAX_ENDPOINT || !valid_name(endpoint) {
        return Err(format!(
            "endpoint must be at most {MAX_ENDPOINT} bytes without whitespace or control characters"
        ));
    }
    let mode = match mode {
        "psk" => SecurityMode::Psk,
        "x509" => SecurityMode::X509,
        "rpk" => SecurityMode::Rpk,
        other => return Err(format!("unknown mode {other:?} (psk, x509 or rpk)")),
    };
    if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "fingerprint must be a SHA-256 in hex (64 hex digits), got {} characters",
            fp.chars().count()
        ));
    }
    let identity = match (mode, identity) {
        (SecurityMode::Psk, None) => return Err("mode psk needs an identity".into()),
        (SecurityMode::Psk, Some(id)) => {
            if id.is_empty() || id.len() > MAX_IDENTITY || !valid_name(id) {
                return Err(format!(
                    "PSK identity must be 1..={MAX_IDENTITY} bytes without whitespace or control characters"
                ));
            }
            Some(id.clone())
        }
        (SecurityMode::X509, Some(_)) => {
            return Err("mode x509 takes no identity (the certificate's fingerprint is its identity)".into());
        }
        (SecurityMode::Rpk, Some(_)) => {
            return Err("mode rpk takes no identity (the public key's fingerprint is its identity)".into());
        }
        (SecurityMode::X509 | SecurityMode::Rpk, None) => None,
    };
    Ok((mode, identity, fp.to_ascii_lowercase()))
}

impl IpeContract {
    fn require_device_admin(&self, ctx: &TxContext<'_>) -> Result<(), ContractError> {
        if self.is_admin(ctx.caller()) {
            Ok(())
        } else {
            Err(ContractError::Forbidden(
                "only admins (role admin or an admin MSP) bind device credentials".into(),
            ))
        }
    }

    pub(crate) fn set_device_credentials(
        &self,
        ctx: &mut TxContext<'_>,
        arg: SetCredentials,
    ) -> Result<Vec<u8>, ContractError> {
        self.require_device_admin(ctx)?;
        let (mode, identity, fingerprint) = check(&arg).map_err(bad)?;
        let bootstrap = check_bootstrap(&arg).map_err(bad)?;
        let caller = ctx.caller();
        let rec = DeviceCredentials {
            endpoint: arg.endpoint,
            mode,
            identity,
            fingerprint,
            bootstrap,
            bound_at: ctx.timestamp(),
            bound_by: Submitter { msp: caller.msp_id.clone(), subject: caller.subject.clone() },
        };
        let idx = id_key(mode, rec.index_identity());
        if let Some(owner) = load::<String>(ctx, &idx)?
            && owner != rec.endpoint
        {
            let what = match mode {
                SecurityMode::Psk => format!("PSK identity {:?}", rec.index_identity()),
                SecurityMode::X509 => format!("certificate {}", rec.fingerprint),
                SecurityMode::Rpk => format!("public key {}", rec.fingerprint),
            };
            return Err(ContractError::Conflict(format!(
                "{what} is already bound to endpoint {owner:?}: one identity, one endpoint"
            )));
        }
        let bs_idx = rec.bootstrap.as_ref().map(|b| bs_id_key(b.mode, b.index_identity()));
        if let Some(bs_idx) = &bs_idx
            && let Some(owner) = load::<String>(ctx, bs_idx)?
            && owner != rec.endpoint
        {
            return Err(ContractError::Conflict(format!(
                "bootstrap identity {:?} is already bound to endpoint {owner:?}: one identity, one endpoint",
                rec.bootstrap.as_ref().map(|b| b.index_identity()).unwrap_or_default()
            )));
        }
        if let Some(old) = load::<DeviceCredentials>(ctx, &cred_key(&rec.endpoint))? {
            let old_idx = id_key(old.mode, old.index_identity());
            if old_idx != idx {
                ctx.delete_state(&old_idx)?;
            }
            if let Some(old_bs) = &old.bootstrap {
                let old_bs_idx = bs_id_key(old_bs.mode, old_bs.index_identity());
                if Some(&old_bs_idx) != bs_idx.as_ref() {
                    ctx.delete_state(&old_bs_idx)?;
                }
            }
        }
        if let Some(bs_idx) = &bs_idx {
            store(ctx, bs_idx, &rec.endpoint)?;
        }
        store(ctx, &idx, &rec.endpoint)?;
        store(ctx, &cred_key(&rec.endpoint), &rec)?;
        let ev = CredentialsEvent {
            to: Address::Gateways,
            endpoint: rec.endpoint.clone(),
            credentials: Some(rec.clone()),
        };
        emit(ctx, events::DEVICE_CREDENTIALS, &ev)?;
        to_json(&rec)
    }

    pub(crate) fn remove_device_credentials(
        &self,
        ctx: &mut TxContext<'_>,
        endpoint: &str,
    ) -> Result<Vec<u8>, ContractError> {
        self.require_device_admin(ctx)?;
        if endpoint.is_empty() {
            return Err(bad("endpoint must not be empty"));
        }
        let Some(old) = load::<DeviceCredentials>(ctx, &cred_key(endpoint))? else {
            return Err(ContractError::NotFound(format!("endpoint {endpoint:?} has no credentials")));
        };
        ctx.delete_state(&id_key(old.mode, old.index_identity()))?;
        if let Some(b) = &old.bootstrap {
            ctx.delete_state(&bs_id_key(b.mode, b.index_identity()))?;
        }
        ctx.delete_state(&cred_key(endpoint))?;
        let ev = CredentialsEvent { to: Address::Gateways, endpoint: endpoint.to_owned(), credentials: None };
        emit(ctx, events::DEVICE_CREDENTIALS, &ev)?;
        to_json(&old)
    }

    pub(crate) fn get_device_credentials(
        &self,
        ctx: &mut TxContext<'_>,
        endpoint: &str,
    ) -> Result<Vec<u8>, ContractError> {
        if endpoint.is_empty() {
            return Err(bad("endpoint must not be empty"));
        }
        match load::<DeviceCredentials>(ctx, &cred_key(endpoint))? {
            Some(rec) => to_json(&rec),
            None => Err(ContractError::NotFound(format!("endpoint {endpoint:?} has no credentials"))),
        }
    }

    /// All bindings in endpoint order; the optional argument is `{"after": EP, "limit": N}` (N ≤ 1000).
    pub(crate) fn list_device_credentials(
        &self,
        ctx: &mut TxContext<'_>,
        filter: &ListCredentialsArgs,
    ) -> Result<Vec<u8>, ContractError> {
        let limit = filter.limit.unwrap_or(1000).clamp(1, 1000) as usize;
        let start = match &filter.after {
            Some(after) => format!("{CRED_PREFIX}{after}\u{1}"),
            None => CRED_PREFIX.to_owned(),
        };
        let rows = ctx.get_range(&start, CRED_END, limit)?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, v) in rows {
            let d: DeviceCredentials = serde_json::from_slice(&v)
                .map_err(|e| ContractError::Internal(format!("state {k} is not valid: {e}")))?;
            out.push(d);
        }
        to_json(&out)
    }
}
