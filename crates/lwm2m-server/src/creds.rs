//! Device credentials: the seam the server asks before it admits a DTLS session or a registration.
//!
//! [`CredentialStore`] answers the questions a handshake and a registration ask: the PSK for an identity,
//! whether a client certificate or a raw public key (RFC 7250) is known, and which endpoint an authenticated
//! identity is bound to. [`FileCredentialStore`] keeps them in
//! one file under a data directory (mode 0600). The next step backs the same trait with the bindings the
//! IPE contract holds on chain (fingerprints only; PSK secrets stay in the gateway's key file).
//!
//! PSK secrets never appear in `Debug` output or logs.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// Who a DTLS session authenticated as.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Identity {
    /// A pre-shared key identity (RFC 4279), as the client sent it.
    Psk(String),
    /// An X.509 client certificate, by the SHA-256 of its DER encoding.
    X509 {
        /// SHA-256 fingerprint of the certificate's DER.
        sha256: [u8; 32],
    },
    /// A raw public key (RFC 7250), by the SHA-256 of its DER `SubjectPublicKeyInfo`.
    Rpk {
        /// SHA-256 fingerprint of the SubjectPublicKeyInfo's DER.
        sha256: [u8; 32],
    },
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Psk(id) => write!(f, "psk:{id}"),
            Identity::X509 { sha256 } => write!(f, "x509:{}", hex::encode(sha256)),
            Identity::Rpk { sha256 } => write!(f, "rpk:{}", hex::encode(sha256)),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What the LwM2M server asks about device credentials. Implementations must be cheap: the DTLS
/// callbacks call them on the server's task during handshakes.
pub trait CredentialStore: Send + Sync + fmt::Debug + 'static {
    /// The pre-shared key for a PSK identity, if the identity is known.
    fn psk(&self, identity: &str) -> Option<Vec<u8>>;
    /// Whether a client certificate (by SHA-256 of its DER) is known.
    fn certificate_known(&self, sha256: &[u8; 32]) -> bool;
    /// Whether a raw public key (by SHA-256 of its DER SubjectPublicKeyInfo) is known: by default, whether
    /// it is bound to an endpoint.
    fn public_key_known(&self, sha256: &[u8; 32]) -> bool {
        self.endpoint_of(&Identity::Rpk { sha256: *sha256 }).is_some()
    }
    /// The endpoint name an identity is bound to.
    fn endpoint_of(&self, identity: &Identity) -> Option<String>;
    /// Whether an endpoint has any credentials (then it may not register over NoSec).
    fn has_credentials(&self, endpoint: &str) -> bool;
    /// Changes whenever the answers above may have changed (a store that never changes keeps 0). The server
    /// then re-checks its registrations and sessions: what is no longer admitted ends.
    fn generation(&self) -> u64 {
        0
    }
}

/// The security mode and credential of one endpoint.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// PSK identity and secret key.
    Psk {
        /// PSK identity.
        identity: String,
        /// Secret key (never printed).
        key: Vec<u8>,
    },
    /// X.509 client certificate by SHA-256 fingerprint of its DER.
    X509 {
        /// Fingerprint.
        sha256: [u8; 32],
    },
    /// Raw public key (RFC 7250) by SHA-256 fingerprint of its DER SubjectPublicKeyInfo.
    Rpk {
        /// Fingerprint.
        sha256: [u8; 32],
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Psk { identity, key } => {
                write!(f, "Psk {{ identity: {identity:?}, key: <{} bytes> }}", key.len())
            }
            Credential::X509 { sha256 } => write!(f, "X509 {{ sha256: {} }}", hex::encode(sha256)),
            Credential::Rpk { sha256 } => write!(f, "Rpk {{ sha256: {} }}", hex::encode(sha256)),
        }
    }
}

/// Why the key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// I/O on the key file.
    #[error("key file {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A line of the key file is not `ENDPOINT psk IDENTITY HEXKEY`, `ENDPOINT x509 SHA256HEX` or
    /// `ENDPOINT rpk SHA256HEX`.
    #[error("key file {path} line {line}: {reason}")]
    Syntax {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The PSK identity or certificate is already bound to another endpoint.
    #[error("{identity} is already bound to endpoint {endpoint}")]
    Taken {
        /// The identity.
        identity: String,
        /// Its endpoint.
        endpoint: String,
    },
    /// An endpoint name or PSK identity with whitespace or empty, or an empty key.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// A [`CredentialStore`] in one file, `<dir>/lwm2m-keys`, mode 0600, one endpoint per line:
/// `ENDPOINT psk IDENTITY HEXKEY`, `ENDPOINT x509 SHA256HEX` or `ENDPOINT rpk SHA256HEX` (the SHA-256 of the
/// raw public key's DER SubjectPublicKeyInfo). Changes are written to a temporary file
/// (0600) and renamed over the old one.
pub struct FileCredentialStore {
    path: PathBuf,
    entries: RwLock<Entries>,
}

/// The key file's entries, by endpoint and by identity (a handshake looks up by identity: no scan).
#[derive(Default)]
struct Entries {
    by_endpoint: HashMap<String, Credential>,
    by_identity: HashMap<Identity, String>,
}

impl Entries {
    fn new(by_endpoint: HashMap<String, Credential>) -> Self {
        let by_identity = by_endpoint.iter().map(|(ep, c)| (identity_of(c), ep.clone())).collect();
        Entries { by_endpoint, by_identity }
    }
}

fn identity_of(c: &Credential) -> Identity {
    match c {
        Credential::Psk { identity, .. } => Identity::Psk(identity.clone()),
        Credential::X509 { sha256 } => Identity::X509 { sha256: *sha256 },
        Credential::Rpk { sha256 } => Identity::Rpk { sha256: *sha256 },
    }
}

impl fmt::Debug for FileCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.entries.read().map(|m| m.by_endpoint.len()).unwrap_or(0);
        write!(f, "FileCredentialStore {{ path: {:?}, endpoints: {n} }}", self.path)
    }
}

const FILE_NAME: &str = "lwm2m-keys";
/// The bootstrap credentials' key file (same format), separate from the server credentials'.
const BOOTSTRAP_FILE_NAME: &str = "lwm2m-bootstrap-keys";

fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl FileCredentialStore {
    /// Opens (or starts empty) the key file under `dir`, creating `dir` if needed.
    pub fn open(dir: &Path) -> Result<Self, CredentialError> {
        Self::open_named(dir, FILE_NAME)
    }

    /// Opens (or starts empty) the bootstrap key file `<dir>/lwm2m-bootstrap-keys`: the credentials devices
    /// use towards the bootstrap server, kept apart from the LwM2M server credentials it provisions.
    pub fn open_bootstrap(dir: &Path) -> Result<Self, CredentialError> {
        Self::open_named(dir, BOOTSTRAP_FILE_NAME)
    }

    fn open_named(dir: &Path, name: &str) -> Result<Self, CredentialError> {
        let path = dir.join(name);
        let io = |source| CredentialError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut map = HashMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        "{} was readable by others (mode {:o}): set to 0600",
                        path.display(),
                        mode & 0o777
                    );
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
                }
                for (i, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let syntax = |reason| CredentialError::Syntax { path: path.clone(), line: i + 1, reason };
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let cred = match f.as_slice() {
                        [_, "psk", id, key] => Credential::Psk {
                            identity: (*id).to_owned(),
                            key: hex::decode(key).map_err(|_| syntax("PSK key is not hex"))?,
                        },
                        [_, mode @ ("x509" | "rpk"), fp] => {
                            let v = hex::decode(fp).map_err(|_| syntax("fingerprint is not hex"))?;
                            let sha256 = v.try_into().map_err(|_| syntax("fingerprint is not 32 bytes"))?;
                            if *mode == "x509" {
                                Credential::X509 { sha256 }
                            } else {
                                Credential::Rpk { sha256 }
                            }
                        }
                        _ => {
                            return Err(syntax(
                                "expected `EP psk IDENTITY HEXKEY`, `EP x509 SHA256HEX` or `EP rpk SHA256HEX`",
                            ));
                        }
                    };
                    map.insert(f[0].to_owned(), cred);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        Ok(FileCredentialStore { path, entries: RwLock::new(Entries::new(map)) })
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Binds `endpoint` to a credential (replacing what it had) and writes the file.
    pub fn set(&self, endpoint: &str, cred: Credential) -> Result<(), CredentialError> {
        if !valid_name(endpoint) {
            return Err(CredentialError::Invalid("endpoint name"));
        }
        if let Credential::Psk { identity, key } = &cred {
            if !valid_name(identity) {
                return Err(CredentialError::Invalid("PSK identity"));
            }
            if key.is_empty() || key.len() > 64 {
                return Err(CredentialError::Invalid("PSK key (1 to 64 bytes)"));
            }
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let identity = identity_of(&cred);
        if let Some(ep) = entries.by_identity.get(&identity).filter(|ep| *ep != endpoint) {
            return Err(CredentialError::Taken { identity: identity.to_string(), endpoint: ep.clone() });
        }
        let mut next = entries.by_endpoint.clone();
        next.insert(endpoint.to_owned(), cred);
        self.write(&next)?;
        *entries = Entries::new(next);
        Ok(())
    }

    /// Removes an endpoint's credential; `false` if it had none.
    pub fn remove(&self, endpoint: &str) -> Result<bool, CredentialError> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if !entries.by_endpoint.contains_key(endpoint) {
            return Ok(false);
        }
        let mut next = entries.by_endpoint.clone();
        next.remove(endpoint);
        self.write(&next)?;
        *entries = Entries::new(next);
        Ok(true)
    }

    fn write(&self, map: &HashMap<String, Credential>) -> Result<(), CredentialError> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| CredentialError::Io { path: self.path.clone(), source };
        let tmp = self.path.with_extension("tmp");
        let mut names: Vec<&String> = map.keys().collect();
        names.sort();
        let mut text = String::from("# LwM2M device credentials (secret: mode 0600)\n");
        for ep in names {
            match &map[ep] {
                Credential::Psk { identity, key } => {
                    text.push_str(&format!("{ep} psk {identity} {}\n", hex::encode(key)));
                }
                Credential::X509 { sha256 } => text.push_str(&format!("{ep} x509 {}\n", hex::encode(sha256))),
                Credential::Rpk { sha256 } => text.push_str(&format!("{ep} rpk {}\n", hex::encode(sha256))),
            }
        }
        let _ = std::fs::remove_file(&tmp);
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        Ok(())
    }

    /// Every entry of the file (as last read or written), endpoint and credential.
    pub fn entries(&self) -> Vec<(String, Credential)> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.by_endpoint.iter().map(|(e, c)| (e.clone(), c.clone())).collect()
    }

    /// The entry an identity is bound to (one hash lookup).
    fn find(&self, identity: &Identity) -> Option<(String, Credential)> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let ep = entries.by_identity.get(identity)?;
        entries.by_endpoint.get(ep).map(|c| (ep.clone(), c.clone()))
    }
}

impl CredentialStore for FileCredentialStore {
    fn psk(&self, identity: &str) -> Option<Vec<u8>> {
        match self.find(&Identity::Psk(identity.to_owned()))? {
            (_, Credential::Psk { key, .. }) => Some(key),
            (_, Credential::X509 { .. } | Credential::Rpk { .. }) => None,
        }
    }

    fn certificate_known(&self, sha256: &[u8; 32]) -> bool {
        self.find(&Identity::X509 { sha256: *sha256 }).is_some()
    }

    fn endpoint_of(&self, identity: &Identity) -> Option<String> {
        self.find(identity).map(|(e, _)| e)
    }

    fn has_credentials(&self, endpoint: &str) -> bool {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).by_endpoint.contains_key(endpoint)
    }
}

/// One endpoint's binding as the ledger holds it: fingerprints only, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Binding {
    /// PSK: the identity and the SHA-256 of the key.
    Psk {
        /// LwM2M endpoint name.
        endpoint: String,
        /// PSK identity.
        identity: String,
        /// SHA-256 of the key.
        key_sha256: [u8; 32],
    },
    /// X.509: the SHA-256 of the certificate's DER.
    X509 {
        /// LwM2M endpoint name.
        endpoint: String,
        /// Fingerprint.
        sha256: [u8; 32],
    },
    /// Raw public key (RFC 7250): the SHA-256 of its DER SubjectPublicKeyInfo.
    Rpk {
        /// LwM2M endpoint name.
        endpoint: String,
        /// Fingerprint.
        sha256: [u8; 32],
    },
    /// The endpoint's bootstrap credential, PSK: towards the bootstrap server only.
    BootstrapPsk {
        /// LwM2M endpoint name.
        endpoint: String,
        /// PSK identity.
        identity: String,
        /// SHA-256 of the key.
        key_sha256: [u8; 32],
    },
    /// The endpoint's bootstrap credential, X.509: towards the bootstrap server only.
    BootstrapX509 {
        /// LwM2M endpoint name.
        endpoint: String,
        /// Fingerprint.
        sha256: [u8; 32],
    },
    /// The endpoint's bootstrap credential, raw public key: towards the bootstrap server only.
    BootstrapRpk {
        /// LwM2M endpoint name.
        endpoint: String,
        /// Fingerprint of the SubjectPublicKeyInfo.
        sha256: [u8; 32],
    },
}

impl Binding {
    /// The bound endpoint.
    pub fn endpoint(&self) -> &str {
        match self {
            Binding::Psk { endpoint, .. }
            | Binding::X509 { endpoint, .. }
            | Binding::Rpk { endpoint, .. }
            | Binding::BootstrapPsk { endpoint, .. }
            | Binding::BootstrapX509 { endpoint, .. }
            | Binding::BootstrapRpk { endpoint, .. } => endpoint,
        }
    }

    /// Whether it is a bootstrap credential.
    pub fn is_bootstrap(&self) -> bool {
        matches!(
            self,
            Binding::BootstrapPsk { .. } | Binding::BootstrapX509 { .. } | Binding::BootstrapRpk { .. }
        )
    }
}

/// What one listener admits (the LwM2M server, or the bootstrap server), computed once per refresh.
#[derive(Default, PartialEq)]
struct Admission {
    /// PSK identity → (endpoint, key).
    psk: HashMap<String, (String, Vec<u8>)>,
    /// Endpoint → its PSK identity.
    psk_by_endpoint: HashMap<String, String>,
    x509: HashMap<[u8; 32], String>,
    /// Raw public key fingerprint → endpoint.
    rpk: HashMap<[u8; 32], String>,
    endpoints: std::collections::HashSet<String>,
}

impl Admission {
    /// Combines one role's bindings with its key file's entries (the rules of [`BoundCredentialStore`]).
    fn build(bindings: &[&Binding], file: &FileCredentialStore, report: &mut RefreshReport) -> Self {
        let mut a = Admission::default();
        let mut bound_psk = std::collections::HashSet::new();
        let mut bound_x509 = std::collections::HashSet::new();
        let mut bound_rpk = std::collections::HashSet::new();
        for b in bindings {
            a.endpoints.insert(b.endpoint().to_owned());
            match b {
                Binding::Psk { identity, .. } | Binding::BootstrapPsk { identity, .. } => {
                    bound_psk.insert(identity.as_str());
                }
                Binding::X509 { sha256, .. } | Binding::BootstrapX509 { sha256, .. } => {
                    bound_x509.insert(*sha256);
                }
                Binding::Rpk { sha256, .. } | Binding::BootstrapRpk { sha256, .. } => {
                    bound_rpk.insert(*sha256);
                }
            }
        }
        let entries = file.entries();
        let mut file_keys: HashMap<&str, &[u8]> = HashMap::new();
        for (ep, cred) in &entries {
            match cred {
                Credential::Psk { identity, key } => {
                    file_keys.insert(identity, key);
                    if !a.endpoints.contains(ep) && !bound_psk.contains(identity.as_str()) {
                        a.psk.insert(identity.clone(), (ep.clone(), key.clone()));
                    }
                }
                Credential::X509 { sha256 } => {
                    if !a.endpoints.contains(ep) && !bound_x509.contains(sha256) {
                        a.x509.insert(*sha256, ep.clone());
                    }
                }
                Credential::Rpk { sha256 } => {
                    if !a.endpoints.contains(ep) && !bound_rpk.contains(sha256) {
                        a.rpk.insert(*sha256, ep.clone());
                    }
                }
            }
        }
        for b in bindings {
            match b {
                Binding::Psk { endpoint, identity, key_sha256 }
                | Binding::BootstrapPsk { endpoint, identity, key_sha256 } => {
                    match file_keys.get(identity.as_str()) {
                        Some(key) if openssl::sha::sha256(key) == *key_sha256 => {
                            a.psk.insert(identity.clone(), (endpoint.clone(), key.to_vec()));
                        }
                        Some(_) => report.wrong_key.push(endpoint.clone()),
                        None => report.missing_key.push(endpoint.clone()),
                    }
                }
                Binding::X509 { endpoint, sha256 } | Binding::BootstrapX509 { endpoint, sha256 } => {
                    a.x509.insert(*sha256, endpoint.clone());
                }
                Binding::Rpk { endpoint, sha256 } | Binding::BootstrapRpk { endpoint, sha256 } => {
                    a.rpk.insert(*sha256, endpoint.clone());
                }
            }
        }
        a.psk_by_endpoint = a.psk.iter().map(|(id, (ep, _))| (ep.clone(), id.clone())).collect();
        // Endpoints of file-only entries are credentialed too.
        let file_eps: Vec<String> = a
            .psk
            .values()
            .map(|(e, _)| e.clone())
            .chain(a.x509.values().cloned())
            .chain(a.rpk.values().cloned())
            .collect();
        a.endpoints.extend(file_eps);
        a
    }

    fn endpoint_of(&self, identity: &Identity) -> Option<String> {
        match identity {
            Identity::Psk(id) => self.psk.get(id).map(|(e, _)| e.clone()),
            Identity::X509 { sha256 } => self.x509.get(sha256).cloned(),
            Identity::Rpk { sha256 } => self.rpk.get(sha256).cloned(),
        }
    }
}

/// Both roles' admissions.
#[derive(Default, PartialEq)]
struct Admissions {
    server: Admission,
    bootstrap: Admission,
}

/// A [`CredentialStore`] that combines the ledger's bindings (which endpoint, which identity, which
/// fingerprint) with the key file's secrets, refreshed by [`BoundCredentialStore::refresh`].
///
/// - A bound PSK identity is admitted only when the key file holds a key for it whose SHA-256 is the bound
///   fingerprint; it is admitted for the bound endpoint only.
/// - A bound certificate or raw public key is admitted for its endpoint.
/// - A bound endpoint always counts as credentialed (no NoSec registration), even while its key is missing.
/// - Key file entries that no binding names (neither their endpoint nor their identity) keep working as
///   before: the gateway operator's own provisioning. Where a binding names either, the binding wins.
///
/// The same rules hold, separately, for bootstrap credentials ([`Binding::BootstrapPsk`],
/// [`Binding::BootstrapX509`], [`Binding::BootstrapRpk`] and the key file `lwm2m-bootstrap-keys`), which only the bootstrap server
/// admits ([`BoundCredentialStore::bootstrap`]).
pub struct BoundCredentialStore {
    dir: PathBuf,
    admission: RwLock<std::sync::Arc<Admissions>>,
    generation: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for BoundCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.current().server.endpoints.len();
        write!(f, "BoundCredentialStore {{ dir: {:?}, endpoints: {n} }}", self.dir)
    }
}

/// What a refresh found wrong (endpoints whose binding cannot be admitted yet); no secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Bound endpoints.
    pub bound: usize,
    /// Bound PSK endpoints whose identity has no key in the key file.
    pub missing_key: Vec<String>,
    /// Bound PSK endpoints whose key in the key file does not match the bound fingerprint.
    pub wrong_key: Vec<String>,
    /// Bound bootstrap PSKs whose identity has no key in the bootstrap key file (by endpoint).
    pub missing_bootstrap_key: Vec<String>,
    /// Bound bootstrap PSKs whose key in the bootstrap key file does not match (by endpoint).
    pub wrong_bootstrap_key: Vec<String>,
}

impl BoundCredentialStore {
    /// Starts with the key file under `dir` alone (no bindings yet).
    pub fn open(dir: &Path) -> Result<Self, CredentialError> {
        let store = BoundCredentialStore {
            dir: dir.to_owned(),
            admission: RwLock::new(Default::default()),
            generation: std::sync::atomic::AtomicU64::new(0),
        };
        store.refresh(&[])?;
        Ok(store)
    }

    fn current(&self) -> std::sync::Arc<Admissions> {
        self.admission.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads both key files and admits by `bindings` from now on.
    pub fn refresh(&self, bindings: &[Binding]) -> Result<RefreshReport, CredentialError> {
        let file = FileCredentialStore::open(&self.dir)?;
        let bs_file = FileCredentialStore::open_bootstrap(&self.dir)?;
        let (bs, server): (Vec<&Binding>, Vec<&Binding>) = bindings.iter().partition(|b| b.is_bootstrap());
        let mut report = RefreshReport { bound: server.len(), ..RefreshReport::default() };
        let server = Admission::build(&server, &file, &mut report);
        let mut bs_report = RefreshReport::default();
        let bootstrap = Admission::build(&bs, &bs_file, &mut bs_report);
        report.missing_bootstrap_key = bs_report.missing_key;
        report.wrong_bootstrap_key = bs_report.wrong_key;
        let next = Admissions { server, bootstrap };
        let mut current = self.admission.write().unwrap_or_else(|p| p.into_inner());
        // Only a change makes the server re-check its registrations (a refresh runs every few seconds).
        if **current != next {
            *current = std::sync::Arc::new(next);
            self.generation.fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        Ok(report)
    }

    /// The PSK identity and key the LwM2M server admits `endpoint` with (what the bootstrap server
    /// provisions), if it has a PSK.
    pub fn server_psk(&self, endpoint: &str) -> Option<(String, Vec<u8>)> {
        let a = self.current();
        let id = a.server.psk_by_endpoint.get(endpoint)?;
        a.server.psk.get(id).map(|(_, key)| (id.clone(), key.clone()))
    }

    /// Whether `endpoint` has a bootstrap credential.
    pub fn has_bootstrap_credentials(&self, endpoint: &str) -> bool {
        self.current().bootstrap.endpoints.contains(endpoint)
    }

    /// The endpoint a bootstrap identity is bound to.
    pub fn bootstrap_endpoint_of(&self, identity: &Identity) -> Option<String> {
        self.current().bootstrap.endpoint_of(identity)
    }

    /// The bootstrap credentials as a [`CredentialStore`], for the bootstrap server's DTLS listener.
    pub fn bootstrap(self: &std::sync::Arc<Self>) -> std::sync::Arc<dyn CredentialStore> {
        std::sync::Arc::new(BootstrapCredentials(self.clone()))
    }
}

/// The bootstrap role of a [`BoundCredentialStore`].
#[derive(Debug)]
struct BootstrapCredentials(std::sync::Arc<BoundCredentialStore>);

impl CredentialStore for BootstrapCredentials {
    fn psk(&self, identity: &str) -> Option<Vec<u8>> {
        self.0.current().bootstrap.psk.get(identity).map(|(_, k)| k.clone())
    }

    fn certificate_known(&self, sha256: &[u8; 32]) -> bool {
        self.0.current().bootstrap.x509.contains_key(sha256)
    }

    fn endpoint_of(&self, identity: &Identity) -> Option<String> {
        self.0.bootstrap_endpoint_of(identity)
    }

    fn has_credentials(&self, endpoint: &str) -> bool {
        self.0.has_bootstrap_credentials(endpoint)
    }
}

impl CredentialStore for BoundCredentialStore {
    fn psk(&self, identity: &str) -> Option<Vec<u8>> {
        self.current().server.psk.get(identity).map(|(_, k)| k.clone())
    }

    fn certificate_known(&self, sha256: &[u8; 32]) -> bool {
        self.current().server.x509.contains_key(sha256)
    }

    fn endpoint_of(&self, identity: &Identity) -> Option<String> {
        self.current().server.endpoint_of(identity)
    }

    fn has_credentials(&self, endpoint: &str) -> bool {
        self.current().server.endpoints.contains(endpoint)
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests;
