//! Health: named checks, Fabric's `/healthz` JSON, and the pure verdicts of the ledger's checks.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// One component's health check.
pub trait HealthCheck: Send + Sync {
    /// The component, e.g. `peer0.org1`.
    fn component(&self) -> &str;
    /// `Err(reason)` when the component is not healthy.
    fn check(&self) -> Result<(), String>;
}

struct FnCheck<F> {
    component: String,
    check: F,
}

impl<F: Fn() -> Result<(), String> + Send + Sync> HealthCheck for FnCheck<F> {
    fn component(&self) -> &str {
        &self.component
    }
    fn check(&self) -> Result<(), String> {
        (self.check)()
    }
}

/// A failing check in the `/healthz` answer.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct FailedCheck {
    /// The component.
    pub component: String,
    /// Why it is not healthy.
    pub reason: String,
}

/// The `/healthz` answer, as Fabric's: `{"status":"OK"}` or `{"status":"Service Unavailable",
/// "failed_checks":[{"component":…,"reason":…}]}`.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct HealthReport {
    /// `OK` or `Service Unavailable`.
    pub status: &'static str,
    /// The failing checks (absent when none fails).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<FailedCheck>,
}

impl HealthReport {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.failed_checks.is_empty()
    }
}

/// The process's health checks.
#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<RwLock<Vec<Arc<dyn HealthCheck>>>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").finish_non_exhaustive()
    }
}

impl Health {
    /// Adds a check.
    pub fn add(&self, check: Arc<dyn HealthCheck>) {
        self.checks.write().unwrap_or_else(std::sync::PoisonError::into_inner).push(check);
    }

    /// Adds a check made of a closure.
    pub fn add_fn(
        &self,
        component: impl Into<String>,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.add(Arc::new(FnCheck { component: component.into(), check }));
    }

    /// Runs every check.
    pub fn report(&self) -> HealthReport {
        let checks = self.checks.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let failed_checks: Vec<FailedCheck> = checks
            .iter()
            .filter_map(|c| {
                c.check().err().map(|reason| FailedCheck { component: c.component().to_owned(), reason })
            })
            .collect();
        HealthReport {
            status: if failed_checks.is_empty() { "OK" } else { "Service Unavailable" },
            failed_checks,
        }
    }
}

/// Where a peer's height was last seen to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The height.
    pub height: u64,
    /// When it was first seen at this height.
    pub since: Instant,
}

/// A peer's verdict: not healthy when blocks wait (`waiting_height`, the orderers' or its Deliver
/// stream's height, is above its own) and its height has not moved for `grace`. Pure: the previous
/// [`Progress`] and the time come in, the next progress goes out with the verdict.
pub fn peer_progress(
    prev: Option<Progress>,
    height: u64,
    waiting_height: u64,
    now: Instant,
    grace: Duration,
) -> (Progress, Result<(), String>) {
    let progress = match prev {
        Some(p) if p.height == height => p,
        _ => Progress { height, since: now },
    };
    let stalled = now.saturating_duration_since(progress.since);
    let verdict = if waiting_height > height && stalled >= grace {
        Err(format!(
            "not committing: at height {height} for {}s while blocks up to height {waiting_height} wait",
            crate::metrics::secs(stalled)
        ))
    } else {
        Ok(())
    };
    (progress, verdict)
}

/// An orderer's verdict: not healthy when it has known no Raft leader for `grace`. `leaderless_since` is
/// the previous result's first value (since when no leader is known; `None` while one is).
pub fn leader_known(
    leaderless_since: Option<Instant>,
    leader: Option<u64>,
    now: Instant,
    grace: Duration,
) -> (Option<Instant>, Result<(), String>) {
    if leader.is_some() {
        return (None, Ok(()));
    }
    let since = leaderless_since.unwrap_or(now);
    let without = now.saturating_duration_since(since);
    if without >= grace {
        (Some(since), Err(format!("no Raft leader known for {}s", crate::metrics::secs(without))))
    } else {
        (Some(since), Ok(()))
    }
}

/// State for [`leader_known`] kept between checks.
#[derive(Debug, Default)]
pub struct LeaderWatch(std::sync::Mutex<Option<Instant>>);

impl LeaderWatch {
    /// The verdict for `leader` now (the state is kept for the next call).
    pub fn check(&self, leader: Option<u64>, now: Instant, grace: Duration) -> Result<(), String> {
        let mut s = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (next, verdict) = leader_known(*s, leader, now, grace);
        *s = next;
        verdict
    }
}

/// State for [`peer_progress`] kept between checks.
#[derive(Debug, Default)]
pub struct ProgressWatch(std::sync::Mutex<Option<Progress>>);

impl ProgressWatch {
    /// The verdict for a peer at `height` with blocks up to `waiting_height` now.
    pub fn check(
        &self,
        height: u64,
        waiting_height: u64,
        now: Instant,
        grace: Duration,
    ) -> Result<(), String> {
        let mut s = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (next, verdict) = peer_progress(*s, height, waiting_height, now, grace);
        *s = Some(next);
        verdict
    }
}

/// A condition's verdict: not healthy once it has held without a break for `grace`. `bad` is `Some(reason)`
/// while it holds; `since` is the previous result's first value (since when it holds; `None` while it does
/// not). Pure: the time comes in.
pub fn sustained(
    since: Option<Instant>,
    bad: Option<String>,
    now: Instant,
    grace: Duration,
) -> (Option<Instant>, Result<(), String>) {
    let Some(reason) = bad else { return (None, Ok(())) };
    let since = since.unwrap_or(now);
    let held = now.saturating_duration_since(since);
    if held >= grace {
        (Some(since), Err(format!("{reason} for {}s", crate::metrics::secs(held))))
    } else {
        (Some(since), Ok(()))
    }
}

/// State for [`sustained`] kept between checks.
#[derive(Debug, Default)]
pub struct SustainedWatch(std::sync::Mutex<Option<Instant>>);

impl SustainedWatch {
    /// The verdict for the condition now (`bad`: `Some(reason)` while it holds).
    pub fn check(&self, bad: Option<String>, now: Instant, grace: Duration) -> Result<(), String> {
        let mut s = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (next, verdict) = sustained(*s, bad, now, grace);
        *s = next;
        verdict
    }
}
