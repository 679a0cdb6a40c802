//! tls: HTTPS for the front door and TLS to HTTPS upstreams.
//!
//! The front door's certificate is the user's own (`--cert`/`--key`, checked to belong
//! together before pingora sees them), or one issued by relive's local certificate authority,
//! which is made on first use in the user's data directory and reused after. relive never
//! installs the authority anywhere; it prints where it is and the command that trusts it.
//!
//! Uses: nothing.
//!
//! Must never: write a private key readable by anyone but the user, replace an authority the
//! user may already trust, or accept an upstream's certificate unverified unless the user said
//! `--upstream-insecure`.

use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use time::{Duration, OffsetDateTime};

/// The local authority's files, in the data directory.
const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const LEAF_CERT: &str = "localhost.pem";
const LEAF_KEY: &str = "localhost-key.pem";
/// How long issued certificates last, and how early they are renewed.
const CA_DAYS: i64 = 3650;
const LEAF_DAYS: i64 = 365;
const RENEW_DAYS: i64 = 30;

/// Where the front door's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// Issued by relive's local certificate authority.
    Local,
    /// The user's own files (PEM).
    Files { cert: PathBuf, key: PathBuf },
}

/// An HTTPS problem, naming the file or folder it is about.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", file.display())]
    Invalid { file: PathBuf, message: String },
    #[error(
        "{} and {} do not belong together: the private key is not the certificate's ({detail})",
        cert.display(), key.display()
    )]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
    #[error("relive's local certificate authority in {}: {detail}", dir.display())]
    Store { dir: PathBuf, detail: String },
}

/// The front door's certificate, ready to serve.
pub struct FrontDoorCert {
    pub key: Arc<CertifiedKey>,
    /// The local authority's certificate, when relive issued the front door's.
    pub authority: Option<PathBuf>,
    /// Whether the authority was made by this run (the user has not trusted it yet).
    pub new_authority: bool,
}

/// Makes rustls use ring, the provider pingora builds (idempotent).
pub fn install_provider() {
    let _ = CryptoProvider::install_default(rustls::crypto::ring::default_provider());
}

fn provider() -> Arc<CryptoProvider> {
    install_provider();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Loads the front door's certificate. `names` are the host names and addresses a locally
/// issued certificate must cover.
pub fn front_door_cert(
    source: &CertSource,
    names: &[String],
    data_dir: Option<&Path>,
) -> Result<FrontDoorCert, TlsError> {
    match source {
        CertSource::Files { cert, key } => Ok(FrontDoorCert {
            key: Arc::new(load_pair(cert, key)?),
            authority: None,
            new_authority: false,
        }),
        CertSource::Local => {
            let dir = data_dir.ok_or_else(|| TlsError::Store {
                dir: PathBuf::from("~"),
                detail: "no data directory (HOME is not set); set RELIVE_DATA_DIR or give \
                         --cert and --key"
                    .into(),
            })?;
            local_cert(dir, names)
        }
    }
}

/// relive's data directory: `$RELIVE_DATA_DIR`, else the platform's per-user data folder.
pub fn data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RELIVE_DATA_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("relive"));
    }
    let home = PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?);
    Some(if cfg!(target_os = "macos") {
        home.join("Library/Application Support/relive")
    } else {
        home.join(".local/share/relive")
    })
}

fn read(file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|source| TlsError::Read {
        file: file.to_path_buf(),
        source,
    })
}

/// Reads a PEM certificate chain and its private key, and checks that they belong together.
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let invalid = |file: &Path, message: String| TlsError::Invalid {
        file: file.to_path_buf(),
        message,
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert, format!("not a PEM certificate file ({e})")))?;
    if chain.is_empty() {
        return Err(invalid(
            cert,
            "no certificate in it (expected a PEM file with -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| {
        invalid(
            key,
            format!(
                "no private key in it (expected a PEM file with -----BEGIN PRIVATE KEY-----; {e})"
            ),
        )
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| invalid(key, format!("unsupported private key ({e})")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(certified)
}

/// The names a locally issued certificate covers: localhost, the loopback addresses, the
/// addresses relive listens on and the host names the user allowed.
pub fn names_to_cover(listen: IpAddr, lan: &[IpAddr], allowed_hosts: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !listen.is_unspecified() {
        names.push(listen.to_string());
    }
    names.extend(lan.iter().map(IpAddr::to_string));
    for host in allowed_hosts {
        let host = host.trim().to_ascii_lowercase();
        match host.strip_prefix('.') {
            Some(domain) => {
                names.push(domain.to_owned());
                names.push(format!("*.{domain}"));
            }
            None => names.push(host),
        }
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.clone()));
    names
}

/// A lock on the data directory, so two relives starting at once make one authority.
fn lock(dir: &Path) -> Result<nix::fcntl::Flock<File>, TlsError> {
    let store = |detail: String| TlsError::Store {
        dir: dir.to_path_buf(),
        detail,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| store(format!("cannot create it ({e})")))?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join(".lock"))
        .map_err(|e| store(format!("cannot create its lock file ({e})")))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| store(format!("cannot lock it ({errno})")))
}

/// Writes `contents` to `dir/name` readable by the user only (or by all, for certificates),
/// atomically: a reader never sees half a file.
fn write_file(dir: &Path, name: &str, contents: &str, private: bool) -> Result<(), TlsError> {
    let path = dir.join(name);
    let temp = dir.join(format!(".{name}.{}", std::process::id()));
    let result = File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(contents.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, &path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        TlsError::Store {
            dir: dir.to_path_buf(),
            detail: format!("cannot write {name} ({e})"),
        }
    })
}

fn generate_key(dir: &Path) -> Result<KeyPair, TlsError> {
    KeyPair::generate().map_err(|e| TlsError::Store {
        dir: dir.to_path_buf(),
        detail: format!("cannot generate a key ({e})"),
    })
}

/// The local authority: loaded when it exists, made (and written) otherwise.
/// Returns its certificate as an issuer, its key and whether it is new.
fn authority(dir: &Path) -> Result<(rcgen::Certificate, KeyPair, bool), TlsError> {
    let cert_path = dir.join(CA_CERT);
    let key_path = dir.join(CA_KEY);
    let store = |detail: String| TlsError::Store {
        dir: dir.to_path_buf(),
        detail,
    };
    if cert_path.exists() || key_path.exists() {
        // An authority the user may already trust: use it as it is, never replace it.
        let cert_pem = String::from_utf8_lossy(&read(&cert_path)?).into_owned();
        let key_pem = String::from_utf8_lossy(&read(&key_path)?).into_owned();
        let key = KeyPair::from_pem(&key_pem).map_err(|e| TlsError::Invalid {
            file: key_path.clone(),
            message: format!("not a private key relive can use ({e})"),
        })?;
        if let Ok(meta) = std::fs::metadata(&key_path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "{} is readable by other users; run `chmod 600 {}`",
                key_path.display(),
                key_path.display()
            );
        }
        let params =
            CertificateParams::from_ca_cert_pem(&cert_pem).map_err(|e| TlsError::Invalid {
                file: cert_path.clone(),
                message: format!("not a CA certificate relive can use ({e})"),
            })?;
        // Re-signing the same name and key gives an issuer equal to the stored one for
        // every certificate it signs.
        let issuer = params
            .self_signed(&key)
            .map_err(|e| store(format!("the authority's key does not fit ({e})")))?;
        return Ok((issuer, key, false));
    }
    let key = generate_key(dir)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "relive");
    name.push(DnType::CommonName, authority_name());
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(CA_DAYS);
    let cert = params
        .self_signed(&key)
        .map_err(|e| store(format!("cannot make the authority ({e})")))?;
    // The key first: a certificate without its key would be unusable.
    write_file(dir, CA_KEY, &key.serialize_pem(), true)?;
    write_file(dir, CA_CERT, &cert.pem(), false)?;
    Ok((cert, key, true))
}

/// "relive local CA (user@host)", so a user who trusts it sees whose it is.
fn authority_name() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    format!("relive local CA ({user}@{host})")
}

/// Whether the stored leaf covers `names` and stays valid for a while yet.
fn leaf_is_current(dir: &Path, names: &[String]) -> bool {
    let Ok(pem) = std::fs::read_to_string(dir.join(LEAF_CERT)) else {
        return false;
    };
    if !dir.join(LEAF_KEY).exists() {
        return false;
    }
    let Ok(params) = CertificateParams::from_ca_cert_pem(&pem) else {
        return false;
    };
    if params.not_after < OffsetDateTime::now_utc() + Duration::days(RENEW_DAYS) {
        return false;
    }
    let covered: Vec<String> = params
        .subject_alt_names
        .iter()
        .map(|san| match san {
            SanType::DnsName(name) => name.as_str().to_owned(),
            SanType::IpAddress(ip) => ip.to_string(),
            _ => String::new(),
        })
        .collect();
    names.iter().all(|n| covered.contains(n))
}

fn local_cert(dir: &Path, names: &[String]) -> Result<FrontDoorCert, TlsError> {
    let _lock = lock(dir)?;
    let (issuer, issuer_key, new_authority) = authority(dir)?;
    if new_authority || !leaf_is_current(dir, names) {
        let store = |detail: String| TlsError::Store {
            dir: dir.to_path_buf(),
            detail,
        };
        let key = generate_key(dir)?;
        let mut params = CertificateParams::new(names.to_vec())
            .map_err(|e| store(format!("cannot name the certificate ({e})")))?;
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "relive");
        name.push(DnType::CommonName, "localhost");
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(LEAF_DAYS);
        let cert = params
            .signed_by(&key, &issuer, &issuer_key)
            .map_err(|e| store(format!("cannot issue the certificate ({e})")))?;
        write_file(dir, LEAF_KEY, &key.serialize_pem(), true)?;
        write_file(dir, LEAF_CERT, &cert.pem(), false)?;
    }
    Ok(FrontDoorCert {
        key: Arc::new(load_pair(&dir.join(LEAF_CERT), &dir.join(LEAF_KEY))?),
        authority: Some(dir.join(CA_CERT)),
        new_authority,
    })
}

/// SHA-256 of a certificate, in hex: how `relive notify` recognises relive's front door.
pub fn sha256_hex(cert: &CertificateDer<'_>) -> String {
    ring::digest::digest(&ring::digest::SHA256, cert.as_ref())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The command that makes this machine's browsers trust `authority` (never run by relive).
pub fn trust_command(authority: &Path) -> String {
    let ca = authority.display();
    if cfg!(target_os = "macos") {
        format!(
            "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain \"{ca}\""
        )
    } else if cfg!(windows) {
        format!("certutil -user -addstore Root \"{ca}\"")
    } else {
        // Chromium, Chrome and (with its default policy) Firefox on Linux read the user's NSS
        // database, not the system bundle; `certutil` is in libnss3-tools.
        format!(
            "mkdir -p ~/.pki/nssdb && certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n \"relive local CA\" -i \"{ca}\""
        )
    }
}

/// How a client decides whether to trust a server's certificate.
enum Trust {
    Roots(RootCertStore),
    Verifier(Arc<dyn ServerCertVerifier>),
}

/// The system's root certificates (and `SSL_CERT_FILE`/`SSL_CERT_DIR`).
fn platform_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(pingora::tls::load_native_certs().unwrap_or_default());
    roots
}

/// Client TLS on ring with the default protocol versions, trusting as `trust` says.
fn client_config(trust: Trust) -> ClientConfig {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    match trust {
        Trust::Roots(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
        Trust::Verifier(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    }
}

/// Client TLS for HTTPS upstreams: the platform's roots (and `SSL_CERT_FILE`), or, with
/// `insecure`, any certificate (the handshake's signatures are still checked).
pub fn upstream_client(insecure: bool) -> Arc<ClientConfig> {
    let trust = if insecure {
        Trust::Verifier(Arc::new(Unrooted {
            pin: None,
            provider: provider(),
        }))
    } else {
        Trust::Roots(platform_roots())
    };
    let mut config = client_config(trust);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Client TLS for talking to a relive front door (`relive notify`): the certificate it
/// published in its state file (`pin`), else the platform's roots and relive's local authority.
pub fn relive_client(pin: Option<String>) -> Arc<ClientConfig> {
    let trust = match pin {
        Some(pin) => Trust::Verifier(Arc::new(Unrooted {
            pin: Some(pin),
            provider: provider(),
        })),
        None => {
            let mut roots = platform_roots();
            if let Some(ca) = data_dir().and_then(|d| std::fs::read(d.join(CA_CERT)).ok()) {
                roots.add_parsable_certificates(
                    CertificateDer::pem_slice_iter(&ca).filter_map(Result::ok),
                );
            }
            Trust::Roots(roots)
        }
    };
    Arc::new(client_config(trust))
}

/// The server name to present and verify for `host`.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .map_err(|e| format!("`{host}` is not a valid TLS server name ({e})"))
}

/// A certificate check that does not go through roots: any certificate
/// (`--upstream-insecure`), or exactly the one whose SHA-256 is `pin` (`relive notify` talking
/// to the relive that published it). The handshake's signatures are checked either way.
#[derive(Debug)]
struct Unrooted {
    pin: Option<String>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unrooted {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.pin {
            Some(pin) if sha256_hex(end_entity) != *pin => Err(rustls::Error::General(
                "the certificate is not the one this relive published".into(),
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_loopback_lan_and_allowed_hosts_once() {
        let lan: IpAddr = "192.168.1.20".parse().unwrap();
        let names = names_to_cover(
            "0.0.0.0".parse().unwrap(),
            &[lan],
            &[
                "app.test".into(),
                ".example.test".into(),
                "localhost".into(),
            ],
        );
        assert_eq!(
            names,
            [
                "localhost",
                "127.0.0.1",
                "::1",
                "192.168.1.20",
                "app.test",
                "example.test",
                "*.example.test"
            ]
        );
    }

    #[test]
    fn local_authority_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let names = names_to_cover("127.0.0.1".parse().unwrap(), &[], &[]);
        let first = local_cert(dir.path(), &names).unwrap();
        assert!(first.new_authority);
        let ca = std::fs::read(dir.path().join(CA_CERT)).unwrap();
        let leaf = std::fs::read(dir.path().join(LEAF_CERT)).unwrap();
        for key in [CA_KEY, LEAF_KEY] {
            let mode = std::fs::metadata(dir.path().join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        let second = local_cert(dir.path(), &names).unwrap();
        assert!(!second.new_authority);
        assert_eq!(std::fs::read(dir.path().join(CA_CERT)).unwrap(), ca);
        assert_eq!(std::fs::read(dir.path().join(LEAF_CERT)).unwrap(), leaf);

        // A new name gets a new certificate from the same authority.
        let more = names_to_cover("127.0.0.1".parse().unwrap(), &[], &["app.test".into()]);
        let third = local_cert(dir.path(), &more).unwrap();
        assert!(!third.new_authority);
        assert_eq!(std::fs::read(dir.path().join(CA_CERT)).unwrap(), ca);
        assert_ne!(std::fs::read(dir.path().join(LEAF_CERT)).unwrap(), leaf);
        assert!(leaf_is_current(dir.path(), &more));
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let names = names_to_cover("127.0.0.1".parse().unwrap(), &[], &[]);
        local_cert(dir.path(), &names).unwrap();
        let error = load_pair(&dir.path().join(LEAF_CERT), &dir.path().join(CA_KEY))
            .expect_err("mismatched pair is refused");
        let text = error.to_string();
        assert!(text.contains("do not belong together"), "{text}");
        assert!(text.contains(LEAF_CERT) && text.contains(CA_KEY), "{text}");

        let error = load_pair(&dir.path().join(CA_KEY), &dir.path().join(CA_KEY))
            .expect_err("a key is no certificate");
        assert!(error.to_string().contains("no certificate"), "{error}");
    }
}
