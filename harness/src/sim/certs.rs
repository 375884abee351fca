//! Throwaway TLS certificates for tests and the fault matrix, made with the
//! `openssl` command: a CA, a server certificate for `localhost` and
//! `127.0.0.1` signed by it, and a client certificate. Each function returns
//! false when openssl is missing or fails (callers skip, saying why).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A self-signed CA in `dir`: `<name>.crt` and `<name>.key`.
pub fn make_ca(dir: &Path, name: &str) -> bool {
    let (key, crt, subject) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN=edgevisor-test-{name}"),
    );
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &crt,
            "-days", "2", "-subj", &subject,
        ],
    )
}

/// Makes `<name>.key` and `<name>.crt` in `dir`, signed by `ca.crt`, with
/// the extensions in `ext`.
fn signed(dir: &Path, name: &str, subject: &str, ext: &str) -> bool {
    let (key, csr, crt, ext_file) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&ext_file), ext).is_ok()
        && openssl(
            dir,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
                subject,
            ],
        )
        && openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext_file,
            ],
        )
}

/// `ca.crt`/`ca.key` and `server.crt`/`server.key` (for `localhost` and
/// `127.0.0.1`) in `dir`. The server key is made readable by all: Mosquitto
/// started as root drops to its own user and must read this throwaway key.
pub fn make_certificates(dir: &Path) -> bool {
    make_ca(dir, "ca")
        && signed(
            dir,
            "server",
            "/CN=localhost",
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        && std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .is_ok()
}

/// `client.crt`/`client.key` in `dir` (after [`make_certificates`]), for a
/// broker that requires client certificates; the key is private (0600), as
/// the gateway insists.
pub fn make_client_certificate(dir: &Path) -> bool {
    signed(
        dir,
        "client",
        "/CN=edgevisor-gateway",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    ) && std::fs::set_permissions(
        dir.join("client.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .is_ok()
}
