#!/usr/bin/env bash
# Puts Debian 13 (trixie)'s skopeo and podman, with the trixie C library
# and libraries they load, into one folder where a Debian 12 machine runs
# them (tests/it/trust.rs: the containers policy verifying stele's
# signatures).
#
# Why: Debian 12's containers/image (5.23, in skopeo 1.9 and podman 4.3)
# is built with its sigstore verification patched out ("Debian-local
# change: sigstore disabled"), so no Debian 12 tool can check a
# `sigstoreSigned` policy. Debian 13's (containers/image 5.34, skopeo 1.18,
# podman 5.4) has it. Its binaries need glibc 2.38, so they get trixie's
# loader and libraries by path (patchelf), and nothing of the system
# changes: apt runs with a private state folder.
#
# The mirror is the one the machine's apt configuration names for the
# Debian archive; only the suite differs.
#
# usage: .ci/trixie-containers.sh DIR      (then STELE_TRIXIE_CONTAINERS=DIR)
set -euo pipefail
dest=${1:?usage: $0 DIR}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The URI the machine fetches Debian's main archive from (deb822 sources
# first, then one-line ones): the source whose suites include the
# machine's release and not its -security suite.
mirror=$(python3 - <<'EOF'
import glob, re
release = open("/etc/os-release").read()
codename = re.search(r'^VERSION_CODENAME=(\S+)', release, re.M).group(1)
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        fields = dict(
            (k.strip(), v.strip())
            for k, v in (l.split(":", 1) for l in stanza.splitlines() if ":" in l and not l.startswith("#"))
        )
        if "deb" in fields.get("Types", "").split() and codename in fields.get("Suites", "").split():
            print(fields["URIs"].split()[0])
            raise SystemExit
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for l in lines:
        parts = re.sub(r"\[[^]]*\]", "", l).split()
        if len(parts) >= 3 and parts[0] == "deb" and parts[2] == codename:
            print(parts[1])
            raise SystemExit
raise SystemExit("no deb source for the Debian archive in the apt configuration")
EOF
)

mkdir -p "$work"/{lists/partial,cache/archives/partial,debs}
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$work/sources.list"
apt_opts=(
  -o "Dir::Etc::sourcelist=$work/sources.list"
  -o "Dir::Etc::sourceparts=/nonexistent"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "APT::Sandbox::User=root"
)
apt-get -q "${apt_opts[@]}" update >/dev/null
packages=(
  skopeo podman
  libc6 libgpgme11t64 libassuan9 libgpg-error0 libsqlite3-0
  libseccomp2 libsubid5 libaudit1 libcap-ng0 libbsd0 libmd0
  libselinux1 libsemanage2 libpcre2-8-0
)
(cd "$work/debs" && apt-get -q "${apt_opts[@]}" download "${packages[@]}" >/dev/null)
root="$dest/root"
rm -rf "$root"
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$root"
done
lib="$root/usr/lib/x86_64-linux-gnu"
mkdir -p "$dest/bin" "$dest/helpers"
for tool in skopeo podman; do
  cp "$root/usr/bin/$tool" "$dest/bin/$tool"
  # DT_RPATH, not RUNPATH: it also finds the libraries' own libraries.
  patchelf --set-interpreter "$lib/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$lib" "$dest/bin/$tool"
done
# podman wants its network helper to exist; pulling never runs it.
printf '#!/bin/sh\necho "netavark: not available in this test setup" >&2\nexit 1\n' > "$dest/helpers/netavark"
chmod +x "$dest/helpers/netavark"
printf '[engine]\nhelper_binaries_dir = ["%s/helpers"]\n' "$dest" > "$dest/containers.conf"
"$dest/bin/skopeo" --version
"$dest/bin/podman" --version
