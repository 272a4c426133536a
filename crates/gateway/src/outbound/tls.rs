//! Trust: one rustls configuration per `ssl_verify` setting.

use super::*;

/// The TLS configuration for one `ssl_verify` setting (without ALPN; the
/// connector adds it):
/// - the platform's roots (rustls-platform-verifier; on Linux the
///   OpenSSL store it finds) plus the certificates of `SSL_CERT_FILE` and
///   `SSL_CERT_DIR`;
/// - `false`: no verification of the server's certificate (the handshake's
///   signatures are still checked);
/// - a CA bundle: its certificates only.
pub fn tls_config(
    verify: &SslVerify,
    extra: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        SslVerify::Platform => Arc::new(
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                extra.iter().cloned(),
                provider.clone(),
            )
            .map_err(|e| format!("cannot load the system's TLS roots: {e}"))?,
        ),
        SslVerify::Off => Arc::new(Unverified(provider.clone())),
        SslVerify::Bundle(path) => {
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(read_pem(path)?);
            if added == 0 {
                return Err(format!(
                    "ssl_verify: {} holds no usable CA certificate",
                    path.display()
                ));
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("ssl_verify: {}: {e}", path.display()))?
        }
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The certificates of a PEM file.
pub(super) fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))
}

/// The certificates of `SSL_CERT_FILE` and of the files in `SSL_CERT_DIR`'s
/// directories (files that hold no certificate are skipped, as OpenSSL's
/// hashed directories hold other files too), each once. A variable the
/// platform verifier already reads from the process environment, with the
/// same value, is not read twice.
pub(super) fn extra_roots(s: &Outbound) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut out = Vec::new();
    let read_by_platform = |name: &str, value: &[PathBuf]| {
        // rustls-native-certs, which the platform verifier uses on Unix
        // systems other than Apple's and Android.
        cfg!(all(
            unix,
            not(target_vendor = "apple"),
            not(target_os = "android")
        )) && std::env::var_os(name).is_some_and(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .eq(value.iter().cloned())
        })
    };
    let file = s
        .ssl_cert_file
        .as_ref()
        .filter(|f| !read_by_platform("SSL_CERT_FILE", std::slice::from_ref(f)));
    if let Some(file) = file {
        let certs = usable(read_pem(file).map_err(|e| format!("SSL_CERT_FILE: {e}"))?);
        if certs.is_empty() {
            return Err(format!(
                "SSL_CERT_FILE: {} holds no usable certificate",
                file.display()
            ));
        }
        out.extend(certs);
    }
    if !s.ssl_cert_dir.is_empty() && !read_by_platform("SSL_CERT_DIR", &s.ssl_cert_dir) {
        let before = out.len();
        for dir in &s.ssl_cert_dir {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| format!("SSL_CERT_DIR: cannot read {}: {e}", dir.display()))?;
            let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            for file in files.iter().filter(|f| f.is_file()) {
                if let Ok(certs) = read_pem(file) {
                    out.extend(usable(certs));
                }
            }
        }
        if out.len() == before {
            return Err("SSL_CERT_DIR: no usable certificate in its directories".to_owned());
        }
    }
    // A directory holds a certificate under its name and its hash, and
    // often the bundle too.
    out.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    out.dedup_by(|a, b| a.as_ref() == b.as_ref());
    Ok(out)
}

/// The certificates a root store accepts as trust anchors.
pub(super) fn usable(certs: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    certs
        .into_iter()
        .filter(|c| RootCertStore::empty().add(c.clone()).is_ok())
        .collect()
}

/// `ssl_verify: false`: any certificate is accepted. The handshake's
/// signatures are still checked against the certificate presented, so the
/// session is at least with whoever holds that certificate's key.
#[derive(Debug)]
pub(super) struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Use ring for TLS (rustls is built without a default provider, to keep
/// aws-lc and its C toolchain out of the build). Safe to call repeatedly.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
