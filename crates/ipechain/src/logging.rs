//! Log output of every `ipechain` command: text or JSON lines on stderr, filtered by `IPECHAIN_LOG` (an
//! `EnvFilter` directive string), else `RUST_LOG`, else a level (`--log-level`, `[log] level` of `up
//! --config`), else `info`. docs/config.md "Logs" documents the same rules.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines look.
#[derive(
    clap::ValueEnum, serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default,
)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines (colored when stderr is a terminal and `NO_COLOR` is unset).
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`, `span`s), for log collectors.
    Json,
}

/// The verbosity of `--log-level` and `[log] level`.
#[derive(
    clap::ValueEnum, serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Dependencies that say too much at `info`: their level when only a level is given (never more verbose than
/// that level). A directive string (`IPECHAIN_LOG`, `RUST_LOG`) is applied on top of these, so naming one of
/// the targets there (`openraft=info`) replaces its default.
const QUIET_DEPENDENCIES: &[(&str, LogLevel)] =
    &[("openraft", LogLevel::Error), ("h2", LogLevel::Warn), ("tower", LogLevel::Warn)];

/// Where the filter came from, for the rare message that needs to say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilterSource {
    /// The directives in force (defaults first, then the user's).
    pub(crate) directives: String,
    /// `IPECHAIN_LOG`, `RUST_LOG`, `--log-level`, `[log] level` or `default`.
    pub(crate) from: &'static str,
}

/// The directive string in force: `IPECHAIN_LOG` (if set and not empty), else `RUST_LOG`, else `level` (the
/// command line's, else the config file's), else `info`; always on top of [`QUIET_DEPENDENCIES`].
pub(crate) fn directives(
    ipechain_log: Option<&str>,
    rust_log: Option<&str>,
    level: Option<(LogLevel, &'static str)>,
) -> FilterSource {
    let nonempty = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let (user, from) = if let Some(s) = nonempty(ipechain_log) {
        (Some(s), "IPECHAIN_LOG")
    } else if let Some(s) = nonempty(rust_log) {
        (Some(s), "RUST_LOG")
    } else {
        (None, "")
    };
    let (base, from) = match (user.is_some(), level) {
        (true, _) => (LogLevel::Info, from),
        (false, Some((l, from))) => (l, from),
        (false, None) => (LogLevel::Info, "default"),
    };
    let mut parts = vec![base.as_str().to_owned()];
    for (target, quiet) in QUIET_DEPENDENCIES {
        parts.push(format!("{target}={}", (*quiet).min(base).as_str()));
    }
    if let Some(u) = user {
        parts.push(u);
    }
    FilterSource { directives: parts.join(","), from }
}

/// Installs the global subscriber. An invalid directive string is an error (it names the bad directive).
pub(crate) fn init(format: LogFormat, filter: &FilterSource) -> anyhow::Result<()> {
    let env = EnvFilter::builder()
        .parse(&filter.directives)
        .map_err(|e| anyhow::anyhow!("{}: invalid log filter {:?}: {e}", filter.from, filter.directives))?;
    let noise = RaftPeerErrorsAsWarnings { show: raft_warnings_enabled(&filter.directives) };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let registry = tracing_subscriber::registry().with(env).with(noise);
    match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi))
            .try_init()?,
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).with_current_span(true),
            )
            .try_init()?,
    }
    Ok(())
}

/// Whether `directives` enable `openraft` at WARN, asked of an `EnvFilter` built from them.
fn raft_warnings_enabled(directives: &str) -> bool {
    let Ok(env) = EnvFilter::builder().parse(directives) else { return false };
    let probe = tracing_subscriber::registry().with(env);
    tracing::subscriber::with_default(
        probe,
        || tracing::enabled!(target: "openraft::core::raft_core", Level::WARN),
    )
}

/// Treats openraft's reports of a Raft peer that did not answer as warnings.
///
/// openraft 0.9 logs every failed RPC to another orderer at ERROR: `while requesting vote` and `timeout`
/// (an election), `RPCError` (replication) and `timeout while confirming leadership for read request`. When
/// `ipechain up` starts its three orderers one after the other, the first one's election reaches peers that
/// are not listening yet, so every start printed a few ERROR lines although nothing was wrong: the peers are
/// retried with backoff and the cluster elects a leader moments later. An orderer that stays unreachable is
/// worth a warning, not an error of this process. Since an event's level cannot be changed once emitted,
/// these four events (target `openraft::…`, level ERROR, exactly these messages) are shown only when
/// `openraft` is enabled at WARN or finer (`IPECHAIN_LOG=info,openraft=warn`); every other ERROR of openraft
/// (storage, a fatal core error) and every ERROR of ipechain's own crates is shown as before. The default
/// keeps `openraft=error`, so a newcomer's `ipechain up` prints no ERROR line.
struct RaftPeerErrorsAsWarnings {
    /// Show them (openraft's WARN level is enabled).
    show: bool,
}

/// The messages of openraft 0.9's ERROR events about a peer that did not answer an RPC.
const RAFT_PEER_RPC_MESSAGES: &[&str] =
    &["while requesting vote", "timeout", "RPCError", "timeout while confirming leadership for read request"];

impl<S: Subscriber> Layer<S> for RaftPeerErrorsAsWarnings {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if self.show || *meta.level() != Level::ERROR || !meta.target().starts_with("openraft") {
            return true;
        }
        !is_raft_peer_rpc_error(event)
    }
}

fn is_raft_peer_rpc_error(event: &Event<'_>) -> bool {
    struct Message(Option<String>);
    impl Visit for Message {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.0 = Some(value.to_owned());
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            if field.name() == "message" {
                self.0 = Some(format!("{value:?}"));
            }
        }
    }
    let mut m = Message(None);
    event.record(&mut m);
    m.0.is_some_and(|m| RAFT_PEER_RPC_MESSAGES.contains(&m.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn precedence_of_the_filter_sources() {
        let d = directives(None, None, None);
        assert_eq!(d.directives, "info,openraft=error,h2=warn,tower=warn");
        assert_eq!(d.from, "default");
        let d = directives(None, None, Some((LogLevel::Debug, "--log-level")));
        assert_eq!(d.directives, "debug,openraft=error,h2=warn,tower=warn");
        // A quieter level quiets the dependencies too.
        let d = directives(None, None, Some((LogLevel::Error, "--log-level")));
        assert_eq!(d.directives, "error,openraft=error,h2=error,tower=error");
        let d = directives(None, Some("warn,bridge=debug"), Some((LogLevel::Debug, "--log-level")));
        assert_eq!(d.directives, "info,openraft=error,h2=warn,tower=warn,warn,bridge=debug");
        assert_eq!(d.from, "RUST_LOG");
        let d = directives(Some("peer=trace"), Some("warn"), Some((LogLevel::Debug, "--log-level")));
        assert_eq!(d.directives, "info,openraft=error,h2=warn,tower=warn,peer=trace");
        assert_eq!(d.from, "IPECHAIN_LOG");
        // Empty variables count as unset.
        assert_eq!(directives(Some(" "), Some(""), None).from, "default");
    }

    #[test]
    fn raft_warnings_follow_the_openraft_directive() {
        assert!(!raft_warnings_enabled(&directives(None, None, None).directives));
        assert!(!raft_warnings_enabled(&directives(None, None, Some((LogLevel::Trace, "x"))).directives));
        assert!(raft_warnings_enabled(&directives(Some("openraft=warn"), None, None).directives));
        assert!(raft_warnings_enabled(&directives(Some("debug,openraft=debug"), None, None).directives));
        assert!(!raft_warnings_enabled(&directives(Some("bridge=debug"), None, None).directives));
    }

    /// Collects the messages of the events that reach it.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<String>>>);
    impl<S: Subscriber> Layer<S> for Seen {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            struct V(String);
            impl Visit for V {
                fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                    if field.name() == "message" {
                        self.0 = format!("{value:?}");
                    }
                }
            }
            let mut v = V(String::new());
            event.record(&mut v);
            if let Ok(mut s) = self.0.lock() {
                s.push(format!("{} {} {}", event.metadata().level(), event.metadata().target(), v.0));
            }
        }
    }

    fn seen_with(directives: &str) -> Vec<String> {
        let seen = Seen::default();
        let env = EnvFilter::builder().parse(directives).unwrap();
        let noise = RaftPeerErrorsAsWarnings { show: raft_warnings_enabled(directives) };
        let sub = tracing_subscriber::registry().with(env).with(noise).with(seen.clone());
        tracing::subscriber::with_default(sub, || {
            // The shapes openraft 0.9 uses.
            tracing::error!(target: "openraft::core::raft_core", error = "Unreachable node", "while requesting vote");
            tracing::error!(target: "openraft::replication", err = "Unreachable node", "RPCError");
            tracing::error!(target: "openraft::core::raft_core", error = "x", "quit RaftCore::main on error");
            tracing::error!(target: "orderer::node", "orderer gRPC server: boom");
            tracing::error!(target: "peer::node", "RPCError");
        });
        seen.0.lock().unwrap().clone()
    }

    #[test]
    fn peer_rpc_errors_of_openraft_are_warnings_everything_else_stays() {
        let default = seen_with(&directives(None, None, None).directives);
        assert_eq!(
            default,
            [
                "ERROR openraft::core::raft_core quit RaftCore::main on error",
                "ERROR orderer::node orderer gRPC server: boom",
                "ERROR peer::node RPCError",
            ]
        );
        let asked = seen_with(&directives(Some("openraft=warn"), None, None).directives);
        assert_eq!(asked.len(), 5, "{asked:?}");
    }
}
