//! A small key-value contract for tests and the ledger benchmark.

use crate::{Contract, ContractError, TxContext};

/// `kv`: `put(key, value)`, `get(key)`, `del(key)`, `incr(key)` (a counter, to provoke MVCC conflicts) and
/// `range(start, end)`. Every write emits an event named after the function with the key as payload.
pub struct KvContract;

fn arg<'a>(args: &'a [Vec<u8>], i: usize, what: &str) -> Result<&'a [u8], ContractError> {
    args.get(i)
        .map(Vec::as_slice)
        .ok_or_else(|| ContractError::BadRequest(format!("missing argument {what}")))
}

fn key(args: &[Vec<u8>]) -> Result<String, ContractError> {
    String::from_utf8(arg(args, 0, "key")?.to_vec())
        .map_err(|_| ContractError::BadRequest("key must be UTF-8".into()))
}

impl Contract for KvContract {
    fn name(&self) -> &str {
        "kv"
    }

    fn invoke(
        &self,
        ctx: &mut TxContext<'_>,
        function: &str,
        args: &[Vec<u8>],
    ) -> Result<Vec<u8>, ContractError> {
        match function {
            "put" => {
                let k = key(args)?;
                let v = arg(args, 1, "value")?.to_vec();
                ctx.put_state(&k, v.clone())?;
                ctx.set_event("put", k.into_bytes());
                Ok(v)
            }
            "get" => {
                let k = key(args)?;
                ctx.get_state(&k)?.ok_or(ContractError::NotFound(k))
            }
            "del" => {
                let k = key(args)?;
                if ctx.get_state(&k)?.is_none() {
                    return Err(ContractError::NotFound(k));
                }
                ctx.delete_state(&k)?;
                ctx.set_event("del", k.into_bytes());
                Ok(Vec::new())
            }
            "incr" => {
                let k = key(args)?;
                let n = match ctx.get_state(&k)? {
                    Some(b) => std::str::from_utf8(&b)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| ContractError::Conflict(format!("{k} is not a counter")))?,
                    None => 0,
                };
                let next = (n + 1).to_string().into_bytes();
                ctx.put_state(&k, next.clone())?;
                ctx.set_event("incr", k.into_bytes());
                Ok(next)
            }
            "range" => {
                let start = String::from_utf8_lossy(arg(args, 0, "start")?).into_owned();
                let end = String::from_utf8_lossy(arg(args, 1, "end")?).into_owned();
                let rows = ctx.get_range(&start, &end, 1000)?;
                Ok(rows.into_iter().map(|(k, _)| k).collect::<Vec<_>>().join("\n").into_bytes())
            }
            other => Err(ContractError::BadRequest(format!("kv has no function {other:?}"))),
        }
    }
}
