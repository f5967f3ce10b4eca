//! Certificates for the private servers' TLS (slapd's LDAPS and StartTLS, mariadbd's TLS): a
//! throwaway CA and a server certificate it signed, made with the openssl command, valid for
//! two days. A test that needs a CA which did not sign the server's certificate makes a second
//! set in another directory.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::server::{require_binary, run_checked};

/// Makes a test CA (`ca.pem`) and a server certificate for 127.0.0.1 it signed
/// (`server.pem`, `server.key`) in `dir`, with P-256 keys.
pub fn make_certificates(dir: &Path) -> Result<()> {
    let openssl = require_binary("openssl", "openssl")?;
    let extensions = dir.join("server.ext");
    fs::write(
        &extensions,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .with_context(|| format!("writing {}", extensions.display()))?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=mfv test CA",
            "-days",
            "2",
        ],
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    ];
    for args in steps {
        run_checked(Command::new(&openssl).args(args).current_dir(dir))?;
    }
    Ok(())
}
