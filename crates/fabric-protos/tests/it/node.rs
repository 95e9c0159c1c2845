//! Runs `fabric_messages.js` with node against the `@hyperledger/fabric-protos` that `scripts/test.sh`
//! installs under `target/peers/fabric`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The npm package version `scripts/test.sh` installs (and these tests were written against).
pub(crate) const FABRIC_PROTOS_NPM: &str = "@hyperledger/fabric-protos@0.3.7";

/// Where `scripts/test.sh` installs the peers: `$IPECHAIN_PEERS_DIR`, else `<workspace>/target/peers` (the
/// rule of `test_support::peers_dir`, resolved from this crate's own directory).
fn peers_dir() -> PathBuf {
    std::env::var_os("IPECHAIN_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers"))
}

fn node_modules() -> PathBuf {
    let dir = peers_dir().join("fabric/node_modules");
    let package = dir.join("@hyperledger/fabric-protos/package.json");
    assert!(
        package.is_file(),
        "interop peer {FABRIC_PROTOS_NPM} (npm) is missing at {}: run `scripts/test.sh` (it installs every \
         peer the tests need)",
        package.display()
    );
    let text =
        std::fs::read_to_string(&package).expect("read the package.json of @hyperledger/fabric-protos");
    let version = FABRIC_PROTOS_NPM.rsplit('@').next().expect("version");
    assert!(
        text.contains(&format!("\"version\": \"{version}\"")),
        "{} is not {FABRIC_PROTOS_NPM}: run `scripts/test.sh` again",
        package.display()
    );
    dir
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fabric_messages.js")
}

fn run(mode: &str, stdin: &[u8]) -> Output {
    let mut child = Command::new("node")
        .arg(script())
        .arg(mode)
        .env("NODE_PATH", node_modules())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (install Node.js: scripts/test.sh needs it for the npm peers)");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin).expect("write to node's stdin");
    drop(input);
    child.wait_with_output().expect("node finishes")
}

/// `node fabric_messages.js encode`: each line `<name> <hex>`, in the script's order.
pub(crate) fn encode() -> Vec<(String, Vec<u8>)> {
    let out = run("encode", b"");
    assert!(out.status.success(), "node encode failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("node prints UTF-8");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, hex) = l.split_once(' ').unwrap_or_else(|| panic!("line `{l}` is `<name> <hex>`"));
            (name.to_owned(), hex::decode(hex).unwrap_or_else(|e| panic!("{name}: bad hex: {e}")))
        })
        .collect()
}

/// `node fabric_messages.js decode` on our encodings; returns node's stdout (`ok <name> ...` lines) or
/// panics with its error.
pub(crate) fn decode(messages: &[(&str, Vec<u8>)]) -> String {
    let input: String =
        messages.iter().map(|(name, bytes)| format!("{name} {}\n", hex::encode(bytes))).collect();
    let out = run("decode", input.as_bytes());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "Fabric's JavaScript decoder rejected our encoding:\n{}\nstdout:\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
