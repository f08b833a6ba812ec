//! The cluster's dev PKI: a CA, and leaf certificates it signs for replicas, nodes and
//! admins; and [`Identity`], the CA + certificate + key a process presents on QUIC.
//!
//! Layout of a certificate directory (default `./tongdai-certs`): `ca.pem` and `ca.key`
//! (the CA), `<name>.pem` and `<name>.key` per issued certificate. Keys are PKCS#8 PEM,
//! ECDSA P-256, written with mode 0600.
//!
//! A leaf's subject is `O=tongdai, OU=<role>, CN=<name>`: the server reads the peer's
//! name and role back from the verified certificate. Only `replica` certificates may
//! serve (extended key usage serverAuth + clientAuth); `node` and `admin` certificates
//! are clientAuth only, so they cannot impersonate a replica. Every leaf carries the SAN
//! [`CLUSTER_NAME`], the name clients verify, so a replica can be dialed by any address.

use std::fmt;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use super::der;

/// The name every replica certificate carries and every client verifies (the TLS server
/// name), whatever address it dialed.
pub const CLUSTER_NAME: &str = "tongdai.cluster";
/// Where `tongdai certs` and `tongdai up` keep certificates unless told otherwise.
pub const DEFAULT_DIR: &str = "tongdai-certs";
/// The CA certificate's file name in a certificate directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA key's file name in a certificate directory.
pub const CA_KEY_FILE: &str = "ca.key";

const ORGANIZATION: &str = "tongdai";
const CA_COMMON_NAME: &str = "tongdai cluster CA";
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const LEAF_VALIDITY: Duration = Duration::from_secs(2 * 365 * 24 * 3600);
/// Backdating tolerates clocks a little behind the issuer's.
const BACKDATE: Duration = Duration::from_secs(3600);

/// What a certificate's holder is allowed to be in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A control-plane replica: serves and dials Raft and node-facing RPCs.
    Replica,
    /// A media/SIP node: a client of the control plane.
    Node,
    /// An operator tool (`tongdai ctl`): a client of the control plane.
    Admin,
}

impl Role {
    /// All roles, in the order they are listed to users.
    pub const ALL: [Role; 3] = [Role::Replica, Role::Node, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Replica => "replica",
            Role::Node => "node",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = CertError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| CertError::UnknownRole(s.to_owned()))
    }
}

/// Why a certificate could not be created, read or used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(
        "a CA already exists at {}; replacing it invalidates every certificate it issued. \
         Keep using it, or pass --force to replace it",
        .0.display()
    )]
    CaExists(PathBuf),
    #[error("cannot read {}: {source}; {hint}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
        hint: String,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not usable: {reason}; {hint}", path.display())]
    Invalid {
        path: PathBuf,
        reason: String,
        hint: String,
    },
    #[error(
        "invalid certificate name {0:?}: use 1 to 64 letters, digits, '.', '-' or '_', \
         not \"ca\""
    )]
    InvalidName(String),
    #[error("invalid subject alternative name {0:?}: expected a DNS name or an IP address")]
    InvalidSan(String),
    #[error("unknown role {0:?} (expected replica, node or admin)")]
    UnknownRole(String),
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

impl CertError {
    /// Whether the user can fix this by changing what they asked for or the files they
    /// pointed at (the CLI exits 2), as opposed to a failure while writing (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(self, CertError::Write { .. } | CertError::Generate(_))
    }
}

/// What a PKI operation wrote, for the CLI to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Each file written and what it holds.
    pub files: Vec<(PathBuf, &'static str)>,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (path, what) in &self.files {
            writeln!(f, "wrote {} ({what})", path.display())?;
        }
        Ok(())
    }
}

/// The certificate material one process presents and trusts: the cluster CA, its own
/// certificate chain and private key, and the name and role read from its certificate.
pub struct Identity {
    name: String,
    role: Role,
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            name: self.name.clone(),
            role: self.role,
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// Loads the cluster CA certificate, this process's certificate (chain) and its key,
    /// all PEM, and checks that the certificate is one the cluster accepts today (issued
    /// by that CA, not expired, fit for its role). Errors name the file and say what to do.
    pub fn load(ca_path: &Path, cert_path: &Path, key_path: &Path) -> Result<Identity, CertError> {
        let identity = Identity::load_unchecked(ca_path, cert_path, key_path)?;
        let Some((leaf, intermediates)) = identity.chain.split_first() else {
            return Err(invalid(cert_path, "no certificate in it", "reissue it"));
        };
        super::tls::verify_leaf(&identity.ca, leaf, intermediates, identity.role).map_err(
            |reason| {
                invalid(
                    cert_path,
                    format!(
                        "it is not valid under the CA {} ({reason})",
                        ca_path.display()
                    ),
                    "issue a new one from this CA with `tongdai certs issue`",
                )
            },
        )?;
        Ok(identity)
    }

    /// [`Identity::load`] without checking the certificate against the CA (tests build
    /// mismatched identities on purpose).
    pub(crate) fn load_unchecked(
        ca_path: &Path,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Identity, CertError> {
        let ca_hint = "create a dev CA with `tongdai certs init`, or point to the cluster CA \
                       certificate";
        let cert_hint = "issue one with `tongdai certs issue --name NAME --role ROLE`";
        let ca = read(ca_path, ca_hint)?;
        let ca = CertificateDer::from_pem_slice(&ca).map_err(|e| invalid(ca_path, e, ca_hint))?;
        let chain = read(cert_path, cert_hint)?;
        let chain = CertificateDer::pem_slice_iter(&chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(cert_path, e, cert_hint))?;
        let Some(leaf) = chain.first() else {
            return Err(invalid(cert_path, "no certificate in it", cert_hint));
        };
        let (name, role) =
            name_and_role(leaf).map_err(|reason| invalid(cert_path, reason, cert_hint))?;
        let key = read(key_path, cert_hint)?;
        let key =
            PrivateKeyDer::from_pem_slice(&key).map_err(|e| invalid(key_path, e, cert_hint))?;
        Ok(Identity {
            name,
            role,
            ca,
            chain,
            key,
        })
    }

    /// Loads `ca.pem`, `<name>.pem` and `<name>.key` from a certificate directory.
    pub fn from_dir(dir: &Path, name: &str) -> Result<Identity, CertError> {
        Identity::load(
            &dir.join(CA_CERT_FILE),
            &dir.join(format!("{name}.pem")),
            &dir.join(format!("{name}.key")),
        )
    }

    /// The name (certificate CN) this process presents.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn ca(&self) -> &CertificateDer<'static> {
        &self.ca
    }

    pub(crate) fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    pub(crate) fn key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }
}

/// Reads the name (CN) and role (OU) a tongdai certificate was issued for.
pub(crate) fn name_and_role(certificate: &[u8]) -> Result<(String, Role), String> {
    let names = der::names(certificate).map_err(|e| e.to_string())?;
    let name = names
        .subject_text(der::OID_COMMON_NAME)
        .ok_or("the certificate has no common name (CN)")?;
    let role = names
        .subject_text(der::OID_ORGANIZATIONAL_UNIT)
        .ok_or("the certificate has no tongdai role (OU replica, node or admin)")?;
    let role = role.parse::<Role>().map_err(|e| e.to_string())?;
    Ok((name.to_owned(), role))
}

/// Creates a CA in `dir` (`ca.pem`, `ca.key`), creating `dir` if needed. Refuses to
/// replace an existing CA unless `force`: every certificate it issued would stop working.
pub fn init_ca(dir: &Path, force: bool) -> Result<Written, CertError> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    if !force {
        for path in [&cert_path, &key_path] {
            if path.exists() {
                return Err(CertError::CaExists(path.clone()));
            }
        }
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = ca_name();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = ca_key_usages();
    params.serial_number = Some(random_serial());
    set_validity(&mut params, CA_VALIDITY);
    let cert = params.self_signed(&key)?;

    create_dir(dir)?;
    // Key first: a CA certificate without its key cannot issue anything.
    write_file(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_file(&cert_path, cert.pem().as_bytes(), false)?;
    Ok(Written {
        files: vec![
            (
                cert_path,
                "CA certificate: give it to every replica, node and admin",
            ),
            (
                key_path,
                "CA private key: keep it secret, it signs cluster identities",
            ),
        ],
    })
}

/// Issues a certificate for `name` in `role`, signed by the CA in `ca_dir`, into
/// `out_dir` as `<name>.pem` and `<name>.key` (replacing an earlier one).
///
/// `sans` are extra DNS names or IP addresses; `localhost`, `127.0.0.1`, `::1` and
/// [`CLUSTER_NAME`] are always included.
pub fn issue(
    ca_dir: &Path,
    name: &str,
    role: Role,
    sans: &[String],
    out_dir: &Path,
) -> Result<Written, CertError> {
    check_name(name)?;
    let mut alt_names = Vec::new();
    for san in [CLUSTER_NAME, "localhost", "127.0.0.1", "::1"]
        .into_iter()
        .chain(sans.iter().map(|s| s.trim()))
    {
        let san = parse_san(san)?;
        if !alt_names.contains(&san) {
            alt_names.push(san);
        }
    }
    let ca_cert_path = ca_dir.join(CA_CERT_FILE);
    let ca_key_path = ca_dir.join(CA_KEY_FILE);
    let ca_hint = format!(
        "create the CA first with `tongdai certs init --dir {}`",
        ca_dir.display()
    );
    let ca_pem = read(&ca_cert_path, &ca_hint)?;
    let ca_der =
        CertificateDer::from_pem_slice(&ca_pem).map_err(|e| invalid(&ca_cert_path, e, &ca_hint))?;
    let ca_key = String::from_utf8(read(&ca_key_path, &ca_hint)?)
        .map_err(|_| invalid(&ca_key_path, "not PEM text", &ca_hint))?;
    let ca_key = KeyPair::from_pem(&ca_key).map_err(|e| invalid(&ca_key_path, e, &ca_hint))?;
    let issuer = ca_issuer(&ca_der, ca_key).map_err(|e| invalid(&ca_cert_path, e, &ca_hint))?;

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::OrganizationName, ORGANIZATION);
    subject.push(DnType::OrganizationalUnitName, role.as_str());
    subject.push(DnType::CommonName, name);
    params.distinguished_name = subject;
    params.subject_alt_names = alt_names;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match role {
        Role::Replica => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Node | Role::Admin => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    set_validity(&mut params, LEAF_VALIDITY);
    let cert = params.signed_by(&key, &issuer)?;

    // Prove the new certificate is one the cluster accepts before writing it.
    super::tls::verify_leaf(&ca_der, cert.der(), &[], role).map_err(|e| {
        invalid(
            &ca_cert_path,
            format!("a certificate it signs does not verify ({e})"),
            "replace the CA with `tongdai certs init --force` and reissue every certificate",
        )
    })?;

    create_dir(out_dir)?;
    let cert_path = out_dir.join(format!("{name}.pem"));
    let key_path = out_dir.join(format!("{name}.key"));
    write_file(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_file(&cert_path, cert.pem().as_bytes(), false)?;
    Ok(Written {
        files: vec![
            (cert_path, "certificate"),
            (key_path, "private key: keep it secret"),
        ],
    })
}

/// What `tongdai up` needs: a CA in `dir` and a certificate for each `(name, role)`,
/// created when absent and reused when present and still accepted by the CA (an
/// expired certificate, or one from another CA, is reissued).
pub fn ensure_dev_pki(dir: &Path, certs: &[(&str, Role)]) -> Result<Written, CertError> {
    let mut written = Written::default();
    let ca_path = dir.join(CA_CERT_FILE);
    let ca_exists = ca_path.exists() && dir.join(CA_KEY_FILE).exists();
    if !ca_exists {
        written.files.extend(init_ca(dir, true)?.files);
    }
    for &(name, role) in certs {
        let reusable =
            ca_exists && Identity::from_dir(dir, name).is_ok_and(|identity| identity.role == role);
        if !reusable {
            written
                .files
                .extend(issue(dir, name, role, &[], dir)?.files);
        }
    }
    Ok(written)
}

/// A CA subject unique to this CA: two dev clusters' CAs never share a name, so a
/// certificate from the other one fails as "unknown issuer", not as a bad signature.
fn ca_name() -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, ORGANIZATION);
    let id: [u8; 4] = rand::random();
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    name.push(DnType::CommonName, format!("{CA_COMMON_NAME} {id}"));
    name
}

fn ca_key_usages() -> Vec<KeyUsagePurpose> {
    vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ]
}

/// An rcgen issuer for a CA certificate on disk. rcgen (without its x509-parser feature)
/// cannot read a certificate, so the CA's subject is rebuilt attribute by attribute from
/// its DER; leaves then carry it byte for byte as their issuer, which [`issue`] checks by
/// verifying each new certificate.
fn ca_issuer(ca_der: &[u8], key: KeyPair) -> Result<Issuer<'static, KeyPair>, String> {
    let names = der::names(ca_der).map_err(|e| e.to_string())?;
    let mut subject = DistinguishedName::new();
    for attribute in &names.subject_attributes {
        let arcs = der::oid_arcs(attribute.oid).map_err(|e| e.to_string())?;
        let text = std::str::from_utf8(attribute.value)
            .map_err(|_| "its subject holds a non-text attribute".to_owned())?;
        let value = match attribute.tag {
            der::TAG_UTF8_STRING => DnValue::Utf8String(text.to_owned()),
            der::TAG_PRINTABLE_STRING => {
                DnValue::PrintableString(text.try_into().map_err(|e| format!("{e}"))?)
            }
            der::TAG_IA5_STRING => DnValue::Ia5String(text.try_into().map_err(|e| format!("{e}"))?),
            _ => return Err("its subject uses a string type tongdai cannot reproduce".to_owned()),
        };
        subject.push(DnType::from_oid(&arcs), value);
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.key_usages = ca_key_usages();
    Ok(Issuer::new(params, key))
}

fn check_name(name: &str) -> Result<(), CertError> {
    let valid = (1..=64).contains(&name.len())
        && name != "ca"
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if valid {
        Ok(())
    } else {
        Err(CertError::InvalidName(name.to_owned()))
    }
}

fn parse_san(san: &str) -> Result<SanType, CertError> {
    if let Ok(ip) = san.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !san.is_empty()
        && san.len() <= 253
        && san.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        });
    if !valid {
        return Err(CertError::InvalidSan(san.to_owned()));
    }
    let name = san
        .try_into()
        .map_err(|_| CertError::InvalidSan(san.to_owned()))?;
    Ok(SanType::DnsName(name))
}

fn random_serial() -> SerialNumber {
    let mut serial: [u8; 16] = rand::random();
    // Positive and without a leading zero byte: a 16-byte positive INTEGER.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&serial)
}

/// Valid from an hour ago for `lifetime`.
fn set_validity(params: &mut CertificateParams, lifetime: Duration) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime;
}

fn read(path: &Path, hint: &str) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_owned(),
        source,
        hint: hint.to_owned(),
    })
}

fn invalid(path: &Path, reason: impl fmt::Display, hint: &str) -> CertError {
    CertError::Invalid {
        path: path.to_owned(),
        reason: reason.to_string(),
        hint: hint.to_owned(),
    }
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// Writes through a temporary file and a rename, so a reader never sees half a file and
/// a secret is never readable by others, even for a moment.
fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), CertError> {
    let error = |source| CertError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let result = options.open(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    if let Err(e) = result.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(error(e));
    }
    Ok(())
}
