use super::*;
use rand::SeedableRng;
use std::os::unix::fs::PermissionsExt;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/keys")
        .join(name)
}

fn p256() -> PrivateKey {
    PrivateKey::ecdsa_from_scalar(&[1; 32]).unwrap()
}

#[test]
fn pairs_round_trip_with_private_mode_plain_and_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for (i, key) in [PrivateKey::from_seed(&[7; 32]), p256()]
        .into_iter()
        .enumerate()
    {
        for password in [None, Some(&b"pw"[..])] {
            let stem = format!("k{i}{}", password.is_some());
            let (sk, pk) = (
                dir.path().join(format!("{stem}.key")),
                dir.path().join(format!("{stem}.pub")),
            );
            key.write_pair(&sk, &pk, password, &mut rng).unwrap();
            let mode = std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let text = std::fs::read_to_string(&sk).unwrap();
            assert_eq!(
                text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
                password.is_some(),
                "{text}"
            );
            let back = PrivateKey::load(&sk, password).unwrap();
            let public = PublicKey::load(&pk).unwrap();
            assert_eq!(back.keyid(), key.keyid());
            assert_eq!(public, *key.public());
            let sig = back.sign(b"m");
            assert!(public.verifies(b"m", &sig));
            assert!(!public.verifies(b"n", &sig));
            assert!(!public.verifies(b"m", &sig[..sig.len() - 1]));
            if password.is_some() {
                let e = PrivateKey::load(&sk, None).unwrap_err().to_string();
                assert!(
                    e.contains("STELE_KEY_PASSWORD") && e.contains("COSIGN_PASSWORD"),
                    "{e}"
                );
                let e = PrivateKey::load(&sk, Some(b"wrong"))
                    .unwrap_err()
                    .to_string();
                assert!(e.contains("password is wrong"), "{e}");
            }
            let e = key.write_pair(&sk, &dir.path().join("other.pub"), None, &mut rng);
            assert!(matches!(e, Err(KeyError::Exists { path }) if path == sk));
        }
    }
}

#[test]
fn key_ids_and_hints_are_securesystemslibs_and_sigstores() {
    // Python: SSlibKey.from_crypto(public).keyid, and
    // base64(sha256(SPKI DER)), for the same private keys.
    let ed = PrivateKey::from_seed(&[1; 32]);
    assert_eq!(
        ed.keyid(),
        "7ab6b86cb2c9684b0ddc10896153aa2595decf4d4327a5ff1a8ab7422c828b12"
    );
    assert_eq!(
        ed.public().hint(),
        "/RENMB0vB33hQUuPmfRBsUA/qyB7IFL70sBl5O6OfcI="
    );
    let ec = p256();
    assert_eq!(
        ec.keyid(),
        "e2e78b13c23ec1e89bb3f64689136e48f97a80f2c9ea24fd758f5f709d7ede42"
    );
    assert_eq!(
        ec.public().hint(),
        "+FeuTtbjTjN2Guolyq7j/lShWWD7ktzWOjdasSHesqk="
    );
    assert_eq!(
        ec.public().to_pem(),
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEb/A7lJJBzh2t1DUZ5pYOCoW0Gmmg\nXDKBA6orzhWUyhY8T3U6Vb8B3FP2wLDH7ueLQMb/fSWpbiKCuYnO9xwUSg==\n-----END PUBLIC KEY-----\n"
    );
}

#[test]
fn ecdsa_signatures_are_deterministic_der() {
    let key = p256();
    let a = key.sign(b"payload");
    assert_eq!(a, key.sign(b"payload"));
    // SEQUENCE { INTEGER r, INTEGER s }
    assert_eq!(a[0], 0x30);
    assert_eq!(a[1] as usize, a.len() - 2);
}

#[test]
fn cosign_encrypted_keys_written_by_another_implementation_load() {
    // fixtures/keys/make.py sealed these with Python's scrypt and PyNaCl.
    for (name, algorithm) in [
        ("cosign-p256", Algorithm::EcdsaP256),
        ("cosign-ed25519", Algorithm::Ed25519),
    ] {
        let sk = fixture(&format!("{name}.key"));
        let key = PrivateKey::load(&sk, Some(b"stele-test-password")).unwrap();
        assert_eq!(key.algorithm(), algorithm);
        let public = PublicKey::load(&fixture(&format!("{name}.pub"))).unwrap();
        assert_eq!(key.public(), &public, "{name}");
        assert!(public.verifies(b"x", &key.sign(b"x")));
    }
}

#[test]
fn sec1_private_keys_load() {
    let key = p256();
    let Signing::EcdsaP256(k) = &key.signing else {
        unreachable!()
    };
    let sec1 = p256::SecretKey::from(k)
        .to_sec1_pem(LineEnding::LF)
        .unwrap();
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let back = PrivateKey::from_pem(&sec1, Path::new("ec.key"), None).unwrap();
    assert_eq!(back.keyid(), key.keyid());
}

#[test]
fn ed25519_private_key_is_the_rfc8410_v1_form() {
    let der = PrivateKey::from_seed(&[7; 32]).to_pkcs8_der();
    // RFC 8410 section 10.3: version 0, the OID, the 32-byte seed.
    assert_eq!(der.len(), 48);
    assert_eq!(
        &der[..16],
        hex::decode("302e020100300506032b657004220420").unwrap()
    );
    assert_eq!(&der[16..], &[7; 32]);
}

#[test]
fn wrong_kind_of_file_is_named() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let key = PrivateKey::from_seed(&[2; 32]);
    let e = PublicKey::from_pem(&key.to_pem(None, &mut rng), Path::new("x.key")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("x.key") && msg.contains("private key"),
        "{msg}"
    );
    let e = PrivateKey::from_pem(&key.public().to_pem(), Path::new("x.pub"), None).unwrap_err();
    assert!(e.to_string().contains("public key"), "{e}");
    let e = PrivateKey::from_pem("hello", Path::new("junk"), None).unwrap_err();
    assert!(e.to_string().contains("junk"), "{e}");
    assert!("rsa".parse::<Algorithm>().is_err());
}
