//! Private keys in `keyset.json` checked against second implementations:
//! every generated key is PKCS#8 v1 and is read by Python `cryptography`
//! (installed with pip when missing; the test fails, never skips, when it
//! cannot run) and by `openssl pkey` where OpenSSL is installed, with the
//! same public key as our JWK. Keys written by those tools, and PKCS#8 v2
//! documents with the public key (RFC 5958), are still read.

use std::path::Path;
use std::process::Command;

use authrealm_tokens::jwks::JwkParams;
use authrealm_tokens::keyset::{FORMAT_VERSION, KeyEntry, KeySetFile, KeyState, SigningAlgorithm};
use authrealm_tokens::testsupport::{claims_for, header_for, sign_raw};
use authrealm_tokens::{Verifier, VerifierConfig};
use secrecy::SecretString;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const NOW: i64 = 1_800_000_000;

fn python_has_cryptography() -> bool {
    Command::new("python3")
        .args(["-c", "import cryptography.hazmat.primitives.serialization"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ensure_cryptography() -> TestResult {
    if python_has_cryptography() {
        return Ok(());
    }
    for extra in [None, Some("--break-system-packages")] {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "pip", "install", "--quiet", "cryptography"]);
        if let Some(flag) = extra {
            cmd.arg(flag);
        }
        let _ = cmd.status();
        if python_has_cryptography() {
            return Ok(());
        }
    }
    Err("Python `cryptography` cannot be imported or installed \
         (python3 -m pip install cryptography): the interoperability test cannot run"
        .into())
}

/// Reads a PEM private key with Python `cryptography` and prints its public
/// half in JWK terms (base64url, no padding).
const READ_KEY_PY: &str = r#"
import base64, json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def num(n): return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), password=None)
pub = key.public_key()
if isinstance(key, ed25519.Ed25519PrivateKey):
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    out = {"kty": "OKP", "x": b64(raw)}
elif isinstance(key, ec.EllipticCurvePrivateKey):
    n = pub.public_numbers()
    out = {"kty": "EC", "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}
elif isinstance(key, rsa.RSAPrivateKey):
    n = pub.public_numbers()
    out = {"kty": "RSA", "n": num(n.n), "e": num(n.e)}
print(json.dumps(out))
"#;

/// Writes a PEM (PKCS#8) Ed25519 key with Python `cryptography`.
const WRITE_ED25519_PY: &str = r#"
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
key = ed25519.Ed25519PrivateKey.generate()
sys.stdout.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
"#;

fn python(script: &str, args: &[&str]) -> TestResult<String> {
    let out = Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "python `cryptography` refused: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn openssl_present() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn expected_public(entry: &KeyEntry) -> TestResult<serde_json::Value> {
    Ok(match entry.public_jwk()?.params {
        JwkParams::Okp { x, .. } => serde_json::json!({ "kty": "OKP", "x": x }),
        JwkParams::Ec { x, y, .. } => serde_json::json!({ "kty": "EC", "x": x, "y": y }),
        JwkParams::Rsa { n, e } => serde_json::json!({ "kty": "RSA", "n": n, "e": e }),
    })
}

fn write_pem(dir: &Path, name: &str, entry: &KeyEntry) -> TestResult<String> {
    let path = dir.join(name);
    let der = entry.pkcs8_der()?;
    std::fs::write(&path, pem::encode(&pem::Pem::new("PRIVATE KEY", der)))?;
    Ok(path.display().to_string())
}

/// The `version` of a PKCS#8 `PrivateKeyInfo` / `OneAsymmetricKey`: the
/// first INTEGER inside the outer SEQUENCE (0 = v1, 1 = v2).
fn pkcs8_version(der: &[u8]) -> Option<u8> {
    let body = match der.get(1)? {
        n if n & 0x80 == 0 => der.get(2..)?,
        n => der.get(2 + usize::from(n & 0x7f)..)?,
    };
    match body {
        [0x02, 0x01, v, ..] => Some(*v),
        _ => None,
    }
}

fn entry_from_pem(kid: &str, alg: SigningAlgorithm, pem_text: String) -> KeyEntry {
    KeyEntry {
        kid: kid.to_owned(),
        alg,
        state: KeyState::Active,
        private_key_pem: SecretString::from(pem_text),
        created_at: NOW,
        activated_at: Some(NOW),
        retired_at: None,
        remove_after: None,
    }
}

/// A key read from the set signs tokens our verifier accepts.
fn signs_and_verifies(entry: KeyEntry) -> TestResult {
    let set = KeySetFile {
        version: FORMAT_VERSION,
        access_token_alg: None,
        keys: vec![entry],
    };
    let set = KeySetFile::parse(&set.to_json()?)?;
    let key = set.active().ok_or("no active key")?;
    let (verifier, skipped) = Verifier::new(
        &set.jwks()?,
        VerifierConfig {
            issuer: "https://iss.test".into(),
            audience: "aud".into(),
            leeway_secs: 0,
        },
    );
    assert!(skipped.is_empty(), "{skipped:?}");
    key.encoding_key()?;
    let token = sign_raw(
        key,
        &header_for(key),
        &claims_for("https://iss.test", "aud", "u", NOW),
    )?;
    verifier.verify(&token, NOW)?;
    Ok(())
}

#[test]
fn generated_keys_are_pkcs8_v1_and_read_by_other_implementations() -> TestResult {
    ensure_cryptography()?;
    let dir = tempfile::tempdir()?;
    let openssl = openssl_present();
    for alg in [
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::ES256,
        SigningAlgorithm::RS256,
    ] {
        let entry = KeyEntry::generate(alg, format!("k-{}", alg.as_str()), KeyState::Active, NOW)?;
        assert_eq!(
            pkcs8_version(&entry.pkcs8_der()?),
            Some(0),
            "{alg:?} key is not PKCS#8 v1"
        );
        let path = write_pem(dir.path(), alg.as_str(), &entry)?;
        let seen: serde_json::Value = serde_json::from_str(&python(READ_KEY_PY, &[&path])?)?;
        assert_eq!(seen, expected_public(&entry)?, "{alg:?}");
        if openssl {
            let out = Command::new("openssl")
                .args(["pkey", "-noout", "-in", &path])
                .output()?;
            assert!(
                out.status.success(),
                "openssl pkey cannot read the {alg:?} key: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

#[test]
fn keys_from_other_tools_and_pkcs8_v2_documents_are_read() -> TestResult {
    ensure_cryptography()?;
    // PKCS#8 v2 with the public key (what earlier versions wrote).
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let v2 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| "cannot generate a v2 key")?;
    assert_eq!(pkcs8_version(v2.as_ref()), Some(1));
    let v2_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", v2.as_ref().to_vec()));
    signs_and_verifies(entry_from_pem("v2", SigningAlgorithm::EdDSA, v2_pem))?;
    // Written by Python `cryptography`.
    let py_pem = python(WRITE_ED25519_PY, &[])?;
    signs_and_verifies(entry_from_pem("py", SigningAlgorithm::EdDSA, py_pem))?;
    // Written by OpenSSL, where it is installed.
    if openssl_present() {
        for (alg, args) in [
            (SigningAlgorithm::EdDSA, vec!["-algorithm", "ED25519"]),
            (
                SigningAlgorithm::ES256,
                vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            ),
            (
                SigningAlgorithm::RS256,
                vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            ),
        ] {
            let out = Command::new("openssl")
                .arg("genpkey")
                .args(&args)
                .output()?;
            assert!(out.status.success(), "openssl genpkey {args:?} failed");
            let text = String::from_utf8(out.stdout)?;
            signs_and_verifies(entry_from_pem("ossl", alg, text))?;
        }
    }
    Ok(())
}
