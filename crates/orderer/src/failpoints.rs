//! Named failpoints at the persist, send and apply boundaries (STYLE habit 13), compiled in only with the
//! `failpoints` feature; without it `hit` is an empty inline function.
//!
//! A failpoint is armed for one orderer, named by its data directory (several orderers share a process in
//! tests), to pass `ok` more times and then fail every call until disarmed:
//!
//! | name | where | failure |
//! |---|---|---|
//! | [`RAFT_LOG_APPEND`] | before the Raft log's durable commit | the append fails: openraft stops this orderer |
//! | [`RAFT_SEND`] | before an outgoing Raft RPC | the peer looks unreachable (a one-way partition) |
//! | [`BLOCK_APPLY`] | before a committed block is appended to the block store | apply fails: the orderer halts |

/// Before the Raft log's durable commit.
pub const RAFT_LOG_APPEND: &str = "raft-log-append";
/// Before every outgoing Raft RPC.
pub const RAFT_SEND: &str = "raft-send";
/// Before a committed block is appended to the block store.
pub const BLOCK_APPLY: &str = "block-apply";

#[cfg(feature = "failpoints")]
mod imp {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::{Mutex, OnceLock};

    type Key = (String, &'static str);

    fn registry() -> &'static Mutex<HashMap<Key, u64>> {
        static R: OnceLock<Mutex<HashMap<Key, u64>>> = OnceLock::new();
        R.get_or_init(|| Mutex::new(HashMap::new()))
    }

    fn scope(data_dir: &Path) -> String {
        data_dir.display().to_string()
    }

    /// Arms `name` for the orderer with this data directory: `ok` more passes, then failures.
    pub fn arm(data_dir: &Path, name: &'static str, ok: u64) {
        if let Ok(mut r) = registry().lock() {
            r.insert((scope(data_dir), name), ok);
        }
    }

    /// Disarms `name` for that orderer.
    pub fn disarm(data_dir: &Path, name: &'static str) {
        if let Ok(mut r) = registry().lock() {
            r.remove(&(scope(data_dir), name));
        }
    }

    pub(crate) fn hit(data_dir: &Path, name: &'static str) -> Result<(), String> {
        let Ok(mut r) = registry().lock() else { return Ok(()) };
        match r.get_mut(&(scope(data_dir), name)) {
            None => Ok(()),
            Some(0) => Err(format!("failpoint {name} fired")),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
        }
    }
}

#[cfg(feature = "failpoints")]
pub use imp::{arm, disarm};

/// Checks failpoint `name` of the orderer with this data directory.
#[cfg(feature = "failpoints")]
pub(crate) fn hit(data_dir: &std::path::Path, name: &'static str) -> Result<(), String> {
    imp::hit(data_dir, name)
}

/// Checks failpoint `name` (compiled out: always passes).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_data_dir: &std::path::Path, _name: &'static str) -> Result<(), String> {
    Ok(())
}
