//! The access policy held on chain: which oneM2M originators may do what on which devices.
//!
//! The policy is one JSON document at state key `pol/policy`:
//!
//! ```json
//! {"version": 3, "rules": [
//!   {"id": "r1", "originators": ["Capp-*"], "devices": ["imei:*"], "ops": ["read", "observe"]},
//!   {"id": "ops", "originators": ["Cadmin"], "devices": ["*"], "ops": ["*"]}
//! ]}
//! ```
//!
//! A pattern is an exact name, `*` (anything) or a prefix ending in `*` (`Capp-*`). Device patterns match the
//! LwM2M endpoint name or its oneM2M AE-ID. Default: **deny**; a request is allowed when some rule matches its
//! originator, device and permission (and, when the rule lists `msps`, the submitter's organization). Permissions: `read` (read, discover), `write` (write, create, delete),
//! `execute`, `observe` (observe, cancel-observe, write-attributes), `answer` (answer a device's own request) or `*`.

use serde::{Deserialize, Serialize};

/// A permission a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Read and discover.
    Read,
    /// Write, create and delete.
    Write,
    /// Execute.
    Execute,
    /// Observe and cancel-observe.
    Observe,
    /// Answer a request an LwM2M client sent (scenario 2).
    Answer,
    /// Everything.
    #[serde(rename = "*")]
    All,
}

/// One grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Rule id, unique in the policy (used by `revoke`).
    pub id: String,
    /// Originator patterns (oneM2M AE-IDs).
    pub originators: Vec<String>,
    /// Device patterns (endpoint names or AE-IDs).
    pub devices: Vec<String>,
    /// Granted permissions.
    pub ops: Vec<Permission>,
    /// MSP ids whose members may submit under this rule (the application's organization, and the gateway's
    /// for requests written into a CSE); empty: any channel member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub msps: Vec<String>,
}

/// The whole policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Incremented by every admin change (0: never set).
    #[serde(default)]
    pub version: u64,
    /// Grants, in the order they were added.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// Whether `name` matches `pattern` (`*`, `prefix*` or exact).
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

impl Policy {
    /// Whether `originator`, submitted by a member of `msp`, may use `perm` on the device (`endpoint`,
    /// `ae_id`).
    pub fn allows(&self, originator: &str, msp: &str, endpoint: &str, ae_id: &str, perm: Permission) -> bool {
        self.rules.iter().any(|r| {
            r.ops.iter().any(|p| *p == perm || *p == Permission::All)
                && (r.msps.is_empty() || r.msps.iter().any(|m| m == msp))
                && r.originators.iter().any(|p| matches(p, originator))
                && r.devices.iter().any(|p| matches(p, endpoint) || matches(p, ae_id))
        })
    }

    /// Checks a rule before it is added: non-empty id, patterns and permissions.
    pub fn check_rule(rule: &Rule) -> Result<(), String> {
        if rule.id.is_empty() || rule.id.len() > 128 {
            return Err("rule id must be 1..=128 bytes".into());
        }
        if rule.originators.is_empty() || rule.devices.is_empty() || rule.ops.is_empty() {
            return Err(format!("rule {:?} needs originators, devices and ops", rule.id));
        }
        let bad = rule
            .originators
            .iter()
            .chain(&rule.devices)
            .find(|p| p.is_empty() || p.strip_suffix('*').unwrap_or(p).contains('*'));
        if let Some(p) = bad {
            return Err(format!("pattern {p:?}: '*' is allowed only at the end"));
        }
        Ok(())
    }
}
