//! Fixtures for `[python]` and `[node]`: wheels made in memory (a ZIP
//! archive with a RECORD, as the binary distribution format says), PEP 751
//! locks naming them as files beside the lock, npm locks; and the real
//! `uv` and `npm` that write locks from the configured index at test time.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// A ZIP archive of `members`, stored (not deflated), made on Unix.
pub fn zip(members: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, mode) in members {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let offset = out.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central {
                h.extend((3u16 << 8 | 20).to_le_bytes());
            }
            h.extend(20u16.to_le_bytes());
            h.extend([0u8; 8]); // flags, method (stored), time, date
            h.extend(crc.sum().to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes());
            if central {
                h.extend([0u8; 6]); // comment length, disk, internal attributes
                h.extend((mode << 16).to_le_bytes());
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend(*data);
        central.extend(header(0x0201_4b50, true));
    }
    let at = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(at.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A wheel of `name` `version` (a module `name` with `__version__`, a
/// console script `name`) tagged `tag`, with its RECORD.
pub fn wheel(name: &str, version: &str, tag: &str) -> Vec<u8> {
    let dist = format!("{name}-{version}.dist-info");
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            format!("{name}/__init__.py"),
            format!("__version__ = \"{version}\"\n\ndef main():\n    print(__version__)\n")
                .into_bytes(),
        ),
        (
            format!("{dist}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").into_bytes(),
        ),
        (
            format!("{dist}/WHEEL"),
            format!(
                "Wheel-Version: 1.0\nGenerator: stele-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
            )
            .into_bytes(),
        ),
        (
            format!("{dist}/entry_points.txt"),
            format!("[console_scripts]\n{name} = {name}:main\n").into_bytes(),
        ),
    ];
    let mut record = String::new();
    for (path, bytes) in &files {
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes));
        record.push_str(&format!("{path},sha256={hash},{}\n", bytes.len()));
    }
    record.push_str(&format!("{dist}/RECORD,,\n"));
    let record_path = format!("{dist}/RECORD");
    let mut members: Vec<(&str, &[u8], u32)> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice(), 0o100644))
        .collect();
    members.push((&record_path, record.as_bytes(), 0o100644));
    zip(&members)
}

/// Writes `wheel` beside the lock as `file` and returns its `[[packages]]`
/// wheel entry (a path, its size and sha256).
pub fn wheel_entry(dir: &Path, file: &str, bytes: &[u8]) -> String {
    std::fs::write(dir.join(file), bytes).unwrap();
    format!(
        "{{ name = \"{file}\", path = \"{file}\", size = {}, hashes = {{ sha256 = \"{}\" }} }}",
        bytes.len(),
        hex::encode(Sha256::digest(bytes))
    )
}

/// A recipe of `platforms` with `[python]` for a base-less image whose
/// interpreter the recipe names, and an empty `/usr/bin/python3.11` so the
/// Python layer has its interpreter below it.
pub fn python_recipe(platforms: &str) -> String {
    format!(
        r#"[image]
name = "pyapp"
platforms = [{platforms}]

[python]
lock = "pylock.toml"
interpreter = "3.11.2"
glibc = "2.36"

[[paths]]
path = "/usr/bin/python3.11"
kind = "file"
content = ""
"#
    )
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) {
    let mut f = std::fs::File::create(dir.join(name)).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Every entry of the image for `arch` in the multi-platform layout
/// `layout`, layer by layer (a later layer's entry after an earlier one's).
pub fn platform_entries(layout: &Path, arch: &str) -> Vec<super::TarEntry> {
    use super::{decompress, descriptor_blob, json, tar_entries};
    let index = json(&std::fs::read(layout.join("index.json")).unwrap());
    let top = json(&descriptor_blob(layout, &index["manifests"][0]));
    let manifests = top["manifests"].as_array().expect("a multi-platform index");
    let m = manifests
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("no {arch} image in {top}"));
    let manifest = json(&descriptor_blob(layout, m));
    let mut out = Vec::new();
    for l in manifest["layers"].as_array().unwrap() {
        let blob = descriptor_blob(layout, l);
        out.extend(tar_entries(&decompress(
            l["mediaType"].as_str().unwrap(),
            &blob,
        )));
    }
    out
}

/// The ELF machine of `bytes` (`e_machine`): 0x3e x86-64, 0xb7 AArch64.
pub fn elf_machine(bytes: &[u8]) -> u16 {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    u16::from_le_bytes([bytes[18], bytes[19]])
}
