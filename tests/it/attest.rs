//! Attestations over a real (tiny) build: structure, reproducibility,
//! signatures, and acceptance by independent validators (spdx-tools,
//! CycloneDX 1.6's JSON schema, a JSON schema of SLSA v1 provenance,
//! securesystemslib with its default key loading).

use std::process::Command;

use crate::support::attest::*;
use crate::support::{have_tool, json};
use serde_json::Value;
use stele::attest::artifact::{self, Form, Kind, Signer, ANNOTATION_ATTESTATION, ANNOTATION_KEYID};
use stele::attest::bundle::Bundle;
use stele::attest::dsse::Envelope;
use stele::attest::{attest, AttestError, PrivateKey, Selection, SignOptions};
use stele::oci::Digest;

fn ecdsa(n: u8) -> PrivateKey {
    PrivateKey::ecdsa_from_scalar(&[n; 32]).unwrap()
}

#[test]
fn provenance_names_recipe_packages_and_every_digest() {
    let f = Fixture::new(TWO);
    let all = f.attest(None);
    let kinds: Vec<Kind> = all.iter().map(|a| a.kind).collect();
    use Kind::*;
    assert_eq!(kinds, [Provenance, Spdx, CycloneDx, Spdx, CycloneDx]);
    let prov = &all[0];
    assert_eq!(
        prov.subject_digest(),
        f.built.index.as_ref().unwrap().digest
    );
    let st = json(&f.content(prov));
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    let subjects: Vec<&str> = st["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["digest"]["sha256"].as_str().unwrap())
        .collect();
    let mut expected = vec![f.built.index.as_ref().unwrap().digest.hex()];
    expected.extend(f.built.images.iter().map(|i| i.manifest.digest.hex()));
    assert_eq!(subjects, expected);
    assert!(st["subject"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["name"] == "team/hello"));

    let bd = &st["predicate"]["buildDefinition"];
    assert_eq!(
        bd["buildType"],
        "https://stele.example/README.md#build-type-v1"
    );
    assert_eq!(
        bd["externalParameters"]["recipeDigest"],
        f.recipe.digest().to_string()
    );
    assert_eq!(
        bd["externalParameters"]["recipe"],
        json(&f.recipe.canonical)
    );
    assert_eq!(bd["externalParameters"]["epoch"], 1_700_000_000u64);
    assert_eq!(
        bd["internalParameters"]["encodingProfile"]["id"],
        stele::layer::Profile::default().id()
    );
    let deps = bd["resolvedDependencies"].as_array().unwrap();
    let uris: Vec<&str> = deps.iter().filter_map(|d| d["uri"].as_str()).collect();
    // The arch-all package is listed once though both platforms lock it;
    // purls say the distro and the source package scanners match by.
    assert_eq!(
        uris,
        [
            "pkg:deb/debian/busybox-static@1:1.35.0-4%2Bb3?arch=amd64&distro=debian-12&upstream=busybox%401:1.35.0-4",
            "pkg:deb/debian/busybox-static@1:1.35.0-4%2Bb3?arch=arm64&distro=debian-12&upstream=busybox%401:1.35.0-4",
            "pkg:deb/debian/ca-certificates@20230311?arch=all&distro=debian-12",
            &format!("pkg:oci/debian@sha256:{}", sha("base").hex()),
        ]
    );
    assert!(uris.iter().all(|u| !u.contains("://")), "{uris:?}");
    assert_eq!(deps[0]["digest"]["sha256"], sha("amd64").hex());
    assert_eq!(deps[0]["annotations"]["version"], "1:1.35.0-4+b3");
    assert!(deps
        .iter()
        .any(|d| d["digest"]["sha256"] == sha("inrelease").hex()));
    assert!(deps
        .iter()
        .any(|d| d["digest"]["sha256"] == sha("base").hex()
            && d["name"] == "registry.example/base/debian"));

    let rd = &st["predicate"]["runDetails"];
    assert_eq!(rd["builder"]["id"], "https://ci.example/builders/release");
    assert_eq!(rd["builder"]["version"]["stele"], "0.1.0");
    assert_eq!(
        rd["metadata"]["invocationId"],
        "https://ci.example/team/app/jobs/42"
    );
    assert_eq!(rd["metadata"]["startedOn"], "2026-01-02T03:04:05Z");
    assert_eq!(rd["metadata"]["finishedOn"], "2026-01-02T03:04:09Z");
}

#[test]
fn single_platform_provenance_is_about_the_manifest() {
    let f = Fixture::new("\"linux/amd64\"");
    let all = f.attest(None);
    let manifest = &f.built.images[0].manifest.digest;
    assert!(all.iter().all(|a| &a.subject_digest() == manifest));
    let st = json(&f.content(&all[0]));
    assert_eq!(st["subject"].as_array().unwrap().len(), 1);
    assert_eq!(st["subject"][0]["digest"]["sha256"], manifest.hex());
}

#[test]
fn sboms_list_the_os_and_every_package_with_purl_source_license_hash_and_layer() {
    let f = Fixture::new(TWO);
    let all = f.attest(None);
    let amd64 = &f.built.images[0];
    assert_eq!(amd64.platform.to_string(), "linux/amd64");
    let layer = amd64.layers[0].digest.to_string();

    let spdx_a = all
        .iter()
        .find(|a| a.kind == Kind::Spdx && a.platform.as_ref() == Some(&amd64.platform))
        .unwrap();
    assert_eq!(spdx_a.subject_digest(), amd64.manifest.digest);
    let doc = json(&f.content(spdx_a));
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(doc["creationInfo"]["creators"][0], "Tool: stele-0.1.0");
    assert_eq!(
        doc["documentNamespace"],
        format!(
            "https://stele.example/spdx/team/hello/{}",
            amd64.manifest.digest.hex()
        )
    );
    let pkgs = doc["packages"].as_array().unwrap();
    let os = pkgs
        .iter()
        .find(|p| p["primaryPackagePurpose"] == "OPERATING-SYSTEM")
        .unwrap();
    assert_eq!(
        (&os["name"], &os["versionInfo"]),
        (&"debian".into(), &"12".into())
    );
    let busybox = pkgs.iter().find(|p| p["name"] == "busybox-static").unwrap();
    assert_eq!(
        busybox["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/busybox-static@1:1.35.0-4%2Bb3?arch=amd64&distro=debian-12&upstream=busybox%401:1.35.0-4"
    );
    // What Trivy reads a package's source from in SPDX.
    assert_eq!(
        busybox["sourceInfo"],
        "built package from: busybox 1:1.35.0-4"
    );
    assert_eq!(busybox["licenseDeclared"], "GPL-2.0-only");
    assert_eq!(busybox["checksums"][0]["checksumValue"], sha("amd64").hex());
    assert_eq!(
        busybox["annotations"][0]["comment"],
        format!("stele:layer={layer}")
    );
    assert_eq!(
        doc["hasExtractedLicensingInfos"][0]["licenseId"],
        "LicenseRef-debian-public-domain"
    );
    // The image contains the OS, the OS its packages.
    let rels = doc["relationships"].as_array().unwrap();
    let contains = |from: &Value| {
        rels.iter()
            .filter(|r| r["relationshipType"] == "CONTAINS" && &r["spdxElementId"] == from)
            .count()
    };
    assert_eq!(contains(&"SPDXRef-Image".into()), 1);
    assert_eq!(contains(&os["SPDXID"]), 2);

    let cdx_a = all
        .iter()
        .find(|a| a.kind == Kind::CycloneDx && a.platform.as_ref() == Some(&amd64.platform))
        .unwrap();
    let bom = json(&f.content(cdx_a));
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(bom["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    assert!(bom["serialNumber"]
        .as_str()
        .unwrap()
        .starts_with("urn:uuid:"));
    let components = bom["components"].as_array().unwrap();
    let os = components
        .iter()
        .find(|c| c["type"] == "operating-system")
        .unwrap();
    assert_eq!(
        (&os["name"], &os["version"]),
        (&"debian".into(), &"12".into())
    );
    let c = components
        .iter()
        .find(|c| c["name"] == "ca-certificates")
        .unwrap();
    assert_eq!(
        c["purl"],
        "pkg:deb/debian/ca-certificates@20230311?arch=all&distro=debian-12"
    );
    assert_eq!(c["hashes"][0]["content"], sha("certs").hex());
    let prop = |c: &Value, name: &str| {
        c["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["value"].clone())
    };
    assert_eq!(prop(c, "stele:layer"), Some(layer.clone().into()));
    assert_eq!(
        prop(c, "aquasecurity:trivy:SrcName"),
        Some("ca-certificates".into())
    );
    assert_eq!(
        c["licenses"][0]["expression"],
        "GPL-2.0-or-later AND LicenseRef-debian-public-domain"
    );
    // The OS depends on its packages: the graph scanners walk.
    let deps = bom["dependencies"].as_array().unwrap();
    let of = |r: &str| deps.iter().find(|d| d["ref"] == r).unwrap()["dependsOn"].clone();
    assert_eq!(
        of("image"),
        serde_json::json!(["base-image", "operating-system"])
    );
    assert_eq!(of("operating-system").as_array().unwrap().len(), 2);
    // Each platform's BOM has its own identity.
    let cdx_b = all.iter().rfind(|a| a.kind == Kind::CycloneDx).unwrap();
    assert_ne!(json(&f.content(cdx_b))["serialNumber"], bom["serialNumber"]);
}

#[test]
fn same_inputs_give_the_same_bytes() {
    let ed = PrivateKey::from_seed(&[9; 32]);
    let ec = ecdsa(9);
    let a = Fixture::new(TWO);
    let b = Fixture::new(TWO);
    for key in [None, Some(&ed), Some(&ec)] {
        let (xa, xb) = (
            a.attest_as(key, Some("127.0.0.1:5000/team/hello:1")),
            b.attest_as(key, Some("127.0.0.1:5000/team/hello:1")),
        );
        assert_eq!(xa.len(), xb.len());
        for (x, y) in xa.iter().zip(&xb) {
            assert_eq!(x.manifest.bytes, y.manifest.bytes, "{:?}", x.kind);
            assert_eq!(a.content(x), b.content(y), "{:?}", x.kind);
        }
    }
    // Another image (here: the other platform's) has another SBOM identity.
    let all = a.attest(None);
    let namespace = |i: usize| json(&a.content(&all[i]))["documentNamespace"].clone();
    assert_eq!(all[1].kind, all[3].kind);
    assert_ne!(namespace(1), namespace(3));
}

#[test]
fn attestations_are_artifacts_that_leave_the_image_alone() {
    let f = Fixture::new(TWO);
    let before = f.built.digest().clone();
    let top_bytes = f.built.index.as_ref().unwrap().bytes.clone();
    let all = f.attest(None);
    // Building again into a store that now holds attestations gives the
    // same image, and the index blob is unchanged.
    let again = stele::build(
        &f.recipe,
        &Default::default(),
        &Default::default(),
        &f.store,
    )
    .unwrap()
    .built;
    assert_eq!(again.digest(), &before);
    assert_eq!(
        f.store.read_verified(&before, None, 1 << 20).unwrap(),
        top_bytes
    );

    for a in &all {
        let m = json(&a.manifest.bytes);
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        // Unsigned: the plain documents scanners read from the referrers.
        assert_eq!(m["artifactType"], a.kind.document_type());
        assert_eq!(m["layers"][0]["mediaType"], a.kind.document_type());
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        assert_eq!(m["config"]["digest"], Digest::of(b"{}").to_string());
        assert_eq!(m["config"]["size"], 2);
        assert!(f.store.contains(&Digest::of(b"{}")));
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        assert_eq!(m["annotations"][ANNOTATION_ATTESTATION], a.kind.name());
        assert!(m["subject"].get("platform").is_none());
        let d = json(&serde_json::to_vec(&a.index_descriptor()).unwrap());
        assert_eq!(d["artifactType"], a.kind.document_type());
        assert_eq!(d["digest"], a.manifest.digest.to_string());
        assert_eq!(d["annotations"][ANNOTATION_ATTESTATION], a.kind.name());
        let opened = artifact::open(&f.store, &a.manifest.digest, Some(a.manifest.size())).unwrap();
        opened.check(&a.subject_digest()).unwrap();
        assert_eq!(opened.signer(&[]), Signer::Unsigned);
    }
    let amd64 = &f.built.images[0].manifest.digest;
    let referrers = json(&artifact::referrers_index(&all, amd64).bytes);
    let listed = referrers["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "SPDX and CycloneDX for linux/amd64");
    assert!(listed
        .iter()
        .all(|m| m["annotations"]["dev.stele.platform"] == "linux/amd64"));
}

#[test]
fn selection_chooses_what_is_made() {
    let f = Fixture::new(TWO);
    let input = input(&f.built, &f.recipe, &f.lock, f.packages.clone());
    let key = ecdsa(2);
    let count = |s, key, identity| {
        attest(&input, s, &SignOptions { key, identity }, &f.store)
            .unwrap()
            .len()
    };
    assert_eq!(count(Selection::None, None, None), 0);
    assert_eq!(count(Selection::Provenance, None, None), 1);
    assert_eq!(count(Selection::Sbom, None, None), 4);
    // Signed: each SBOM as a bundle and plain; the signatures of the index
    // and both manifests only with an identity.
    assert_eq!(count(Selection::All, Some(&key), None), 1 + 8);
    assert_eq!(
        count(Selection::All, Some(&key), Some("r.example/a")),
        1 + 8 + 3
    );
    assert_eq!(count(Selection::None, Some(&key), Some("r.example/a")), 3);
}

#[test]
fn signed_attestations_are_bundles_that_verify_and_tampering_is_caught() {
    let f = Fixture::new(TWO);
    let key = ecdsa(5);
    let all = f.attest_as(Some(&key), Some("127.0.0.1:5000/team/hello:1"));
    for a in &all {
        let opened = artifact::open(&f.store, &a.manifest.digest, None).unwrap();
        opened.check(&a.subject_digest()).unwrap();
        let m = json(&a.manifest.bytes);
        match opened.form {
            Form::Bundle => {
                assert_eq!(a.keyid.as_deref(), Some(key.keyid()));
                assert_eq!(m["annotations"][ANNOTATION_KEYID], key.keyid());
                assert_eq!(
                    m["annotations"]["dev.sigstore.bundle.content"],
                    "dsse-envelope"
                );
                assert_eq!(
                    m["annotations"]["dev.sigstore.bundle.predicateType"],
                    a.kind.predicate_type()
                );
                let b = Bundle::from_json(&opened.content).unwrap();
                assert_eq!(
                    b.material,
                    stele::attest::bundle::Material::PublicKey {
                        hint: key.public().hint()
                    }
                );
            }
            Form::Document => assert_ne!(a.kind, Kind::Provenance),
            Form::SimpleSigning => assert_eq!(a.kind, Kind::Signature),
            other => panic!("unexpected {other:?}"),
        }
        let expected = if opened.form == Form::Document {
            Signer::Unsigned
        } else {
            Signer::Key {
                index: 1,
                keyid: key.keyid().into(),
            }
        };
        let other = ecdsa(6);
        assert_eq!(
            opened.signer(&[other.public().clone(), key.public().clone()]),
            expected
        );
        if opened.form.signed() {
            let who = opened.signer(&[other.public().clone()]);
            assert!(
                matches!(&who, Signer::Other { who } if who.contains(key.keyid())),
                "{who:?}"
            );
        }
    }
    let prov = &all[0];
    let opened = artifact::open(&f.store, &prov.manifest.digest, None).unwrap();

    // An edited provenance with the old signature.
    let mut b = Bundle::from_json(&opened.content).unwrap();
    let at = b.envelope.payload.len() / 2;
    b.envelope.payload[at] ^= 0x20;
    assert!(b.envelope.verify(key.public()).is_err());

    // The same edit made to the stored blob is caught by its digest.
    let blob = f.store.path(&Digest::of(&opened.content));
    std::fs::write(&blob, b.to_json()).unwrap();
    let e = artifact::open(&f.store, &prov.manifest.digest, None).unwrap_err();
    assert!(matches!(e, AttestError::Store(_)), "{e}");

    // An attestation about another image.
    let sbom = all.iter().find(|a| a.kind == Kind::Spdx).unwrap();
    let opened = artifact::open(&f.store, &sbom.manifest.digest, None).unwrap();
    let other_image = f
        .built
        .images
        .iter()
        .find(|i| i.manifest.digest != sbom.subject_digest())
        .unwrap();
    let e = opened.check(&other_image.manifest.digest).unwrap_err();
    assert!(matches!(e, AttestError::WrongSubject { .. }), "{e}");
}

#[test]
fn sboms_and_provenance_pass_spdx_tools_the_cyclonedx_16_and_slsa_v1_schemas() {
    if !python_has(&["spdx_tools", "cyclonedx", "jsonschema", "packageurl"]) {
        return;
    }
    let f = Fixture::new(TWO);
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (i, a) in f.attest(None).iter().enumerate() {
        let (script, ext) = match a.kind {
            Kind::Spdx => ("validate_spdx.py", "spdx.json"),
            Kind::CycloneDx => ("validate_cyclonedx.py", "cdx.json"),
            Kind::Provenance => ("validate_slsa.py", "intoto.json"),
            Kind::Signature => continue,
        };
        let p = dir.path().join(format!("{i}.{ext}"));
        std::fs::write(&p, f.content(a)).unwrap();
        let (ok, out) = tool(script, &[&p]);
        assert!(ok, "{script} rejected {:?}:\n{out}", a.kind);
        checked += 1;
    }
    assert_eq!(checked, 5);

    // The validators do reject: an SPDX package without its SPDXID, a BOM
    // with a made-up field, a byproduct with neither uri, digest nor
    // content (what provenance carried before), a misspelt field.
    let all = f.attest(None);
    let mut bad = json(&f.content(&all[1]));
    bad["packages"][1].as_object_mut().unwrap().remove("SPDXID");
    let p = dir.path().join("bad.spdx.json");
    std::fs::write(&p, serde_json::to_vec(&bad).unwrap()).unwrap();
    assert!(!tool("validate_spdx.py", &[&p]).0);
    let mut bad = json(&f.content(&all[2]));
    bad["components"][0]["madeUp"] = Value::Bool(true);
    let p = dir.path().join("bad.cdx.json");
    std::fs::write(&p, serde_json::to_vec(&bad).unwrap()).unwrap();
    assert!(!tool("validate_cyclonedx.py", &[&p]).0);
    let good = json(&f.content(&all[0]));
    let mut bad = Vec::new();
    for (i, byproduct) in [
        serde_json::json!({"name": "maintainer-script-effects:linux/amd64", "annotations": {}}),
        serde_json::json!({"name": "x", "digest": {"sha256": "0123"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut doc = good.clone();
        doc["predicate"]["runDetails"]["byproducts"] = serde_json::json!([byproduct]);
        bad.push((format!("byproduct-{i}.intoto.json"), doc));
    }
    let mut doc = good.clone();
    doc["predicate"]["runDetails"]["metadata"]["startedon"] = "2026-01-01T00:00:00Z".into();
    bad.push(("misspelt.intoto.json".into(), doc));
    let paths: Vec<std::path::PathBuf> = bad
        .iter()
        .map(|(name, doc)| {
            let p = dir.path().join(name);
            std::fs::write(&p, serde_json::to_vec(doc).unwrap()).unwrap();
            p
        })
        .collect();
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let (ok, out) = tool("validate_slsa.py", &refs);
    assert!(!ok);
    for p in &paths {
        let line = format!("{}: valid", p.display());
        assert!(!out.contains(&line), "accepted {}:\n{out}", p.display());
    }
}

#[test]
fn cosign_attestation_envelopes_verify_with_securesystemslibs_default_key_loading() {
    if !python_has(&["securesystemslib.dsse", "cryptography"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::OsRng;
    for (n, key) in [PrivateKey::from_seed(&[11; 32]), ecdsa(11)]
        .iter()
        .enumerate()
    {
        let (sk, pk) = (
            dir.path().join(format!("k{n}.key")),
            dir.path().join(format!("k{n}.pub")),
        );
        key.write_pair(&sk, &pk, None, &mut rng).unwrap();
        let other_pk = dir.path().join(format!("other{n}.pub"));
        std::fs::write(&other_pk, ecdsa(12).public().to_pem()).unwrap();

        // The private key file loads in another implementation, whose
        // signature stele verifies.
        let py = "import sys\nfrom cryptography.hazmat.primitives.serialization import load_pem_private_key\n\
                  from cryptography.hazmat.primitives.asymmetric import ec\n\
                  from cryptography.hazmat.primitives import hashes\n\
                  k = load_pem_private_key(open(sys.argv[1], 'rb').read(), None)\n\
                  sig = k.sign(b'stele', ec.ECDSA(hashes.SHA256())) if isinstance(k, ec.EllipticCurvePrivateKey) else k.sign(b'stele')\n\
                  print(sig.hex())";
        let out = Command::new("python3")
            .args(["-c", py])
            .arg(&sk)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sig = hex::decode(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        assert!(key.public().verifies(b"stele", &sig));

        // The envelopes a push puts under the .att tag: what cosign 2.x,
        // Kyverno and policy-controller read, and what a securesystemslib
        // user verifies with `SSlibKey.from_crypto(public_key)`.
        let f = Fixture::new(TWO);
        let all = f.attest(Some(key));
        let referrers: Vec<_> = all.iter().map(|a| a.index_descriptor()).collect();
        let attachments = stele::attest::cosign::attachments(&f.store, &referrers).unwrap();
        assert_eq!(attachments.len(), 5, "provenance and 2 × 2 SBOMs");
        let envelopes: Vec<std::path::PathBuf> = attachments
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let env = dir.path().join(format!("{n}-{i}.dsse.json"));
                std::fs::write(&env, &a.bytes).unwrap();
                env
            })
            .collect();
        let mut args: Vec<&std::path::Path> = vec![&pk];
        args.extend(envelopes.iter().map(|p| p.as_path()));
        let (ok, out) = tool("verify_dsse.py", &args);
        assert!(ok, "securesystemslib rejected:\n{out}");
        assert_eq!(out.matches(key.keyid()).count(), 5, "{out}");
        let (ok, out) = tool("verify_dsse.py", &[&other_pk, &envelopes[0]]);
        assert!(!ok, "accepted a wrong key:\n{out}");
        if n == 1 {
            let mut e = Envelope::from_json(&attachments[0].bytes).unwrap();
            e.payload[20] ^= 1;
            let bad = dir.path().join("tampered.dsse.json");
            std::fs::write(&bad, e.to_json()).unwrap();
            let (ok, out) = tool("verify_dsse.py", &[&pk, &bad]);
            assert!(!ok, "accepted a tampered payload:\n{out}");
        }
    }
}

#[test]
fn bundles_parse_as_sigstores_protobuf_specification_says() {
    if !python_has(&["sigstore_models"]) {
        return;
    }
    let f = Fixture::new(TWO);
    let dir = tempfile::tempdir().unwrap();
    for key in [ecdsa(13), PrivateKey::from_seed(&[13; 32])] {
        let hint = key.public().hint();
        let bundles: Vec<std::path::PathBuf> = f
            .attest(Some(&key))
            .iter()
            .filter(|a| a.form == Form::Bundle)
            .enumerate()
            .map(|(i, a)| {
                let p = dir.path().join(format!("{i}.sigstore.json"));
                std::fs::write(&p, f.content(a)).unwrap();
                p
            })
            .collect();
        assert_eq!(bundles.len(), 5);
        let mut args: Vec<&std::path::Path> = vec![std::path::Path::new(&hint)];
        args.extend(bundles.iter().map(|p| p.as_path()));
        let (ok, out) = tool("validate_bundle.py", &args);
        assert!(ok, "{out}");
    }
    // A misspelt field, as the validator sees it.
    let a = f.attest(Some(&ecdsa(13)))[0].clone();
    let bad = String::from_utf8(f.content(&a))
        .unwrap()
        .replace("\"hint\"", "\"hints\"");
    let p = dir.path().join("bad.sigstore.json");
    std::fs::write(&p, bad).unwrap();
    assert!(!tool("validate_bundle.py", &[std::path::Path::new("x"), &p]).0);
}

#[test]
fn a_package_without_a_license_is_noassertion() {
    let f = Fixture::new(TWO);
    let all = f.attest(None);
    let arm64 = all
        .iter()
        .filter(|a| a.platform.as_ref().map(|p| p.architecture.as_str()) == Some("arm64"));
    for a in arm64 {
        let doc = json(&f.content(a));
        match a.kind {
            Kind::Spdx => {
                let p = doc["packages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == "busybox-static")
                    .unwrap();
                assert_eq!(p["licenseDeclared"], "NOASSERTION");
            }
            Kind::CycloneDx => {
                let c = doc["components"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["name"] == "busybox-static")
                    .unwrap();
                assert!(c.get("licenses").is_none(), "{c}");
            }
            _ => unreachable!("only SBOMs have a platform"),
        }
    }
}

#[test]
fn a_layout_listing_attestations_still_reads_as_the_same_image() {
    if !have_tool("skopeo") || !have_tool("umoci") {
        return;
    }
    let recipe = recipe("\"linux/amd64\"");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layout");
    let output = stele::sink::Output::prepare(stele::sink::Destination {
        target: stele::sink::Target::Layout {
            path: dest.clone(),
            tag: Some("latest".into()),
        },
        options: Default::default(),
    })
    .unwrap();
    let store = output.store().unwrap().clone();
    let built = stele::build(&recipe, &Default::default(), &Default::default(), &store)
        .unwrap()
        .built;
    let (lock, packages) = lock_and_packages(&built);
    let key = ecdsa(1);
    let input = input(&built, &recipe, &lock, packages);
    let all = attest(
        &input,
        Selection::All,
        &SignOptions {
            key: Some(&key),
            identity: Some("127.0.0.1:5000/team/hello:latest"),
        },
        &store,
    )
    .unwrap();
    // index.json lists the attestations beside the tagged image, as the
    // OCI 1.1 layout lets readers find referrers.
    let referrers: Vec<_> = all.iter().map(|a| a.index_descriptor()).collect();
    output
        .write(stele::sink::Stored {
            built: &built,
            store: &store,
            referrers: &referrers,
        })
        .unwrap();
    let index = json(&std::fs::read(dest.join("index.json")).unwrap());
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1 + all.len());

    let out = Command::new("skopeo")
        .args(["inspect", "--format", "{{.Digest}}"])
        .arg(format!("oci:{}:latest", dest.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        built.digest().to_string()
    );
    let bundle = dir.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:latest", dest.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(bundle.join("rootfs/etc/motd")).unwrap(),
        b"hi\n"
    );
}
