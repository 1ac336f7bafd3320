#!/usr/bin/env bash
# Counts the connections (CONNECT tunnels) one `stele pull` and one
# `stele push` open through tinyproxy to a TLS docker-registry on
# 127.0.0.1, and the TCP connections the same pull opens without a proxy.
# usage: IMAGE=LAYOUT proxy_reuse.sh STELE_BINARY [JOBS]
set -euo pipefail
STELE=$1; JOBS=${2:-4}
W=$(mktemp -d)
REG=; PROXY=
cleanup() { [ -n "$REG" ] && kill $REG 2>/dev/null; [ -n "$PROXY" ] && kill $PROXY 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
cd "$W"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > srv.ext
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr -subj /CN=srv 2>/dev/null
openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile srv.ext 2>/dev/null
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
RPORT=$(free_port); PPORT=$(free_port)
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n  tls:\n    certificate: %s/srv.crt\n    key: %s/srv.key\n' "$W" "$RPORT" "$W" "$W" > reg.yml
docker-registry serve reg.yml >reg.log 2>&1 & REG=$!
printf 'Port %s\nListen 127.0.0.1\nTimeout 600\nLogFile "%s/tp.log"\nLogLevel Connect\nMaxClients 100\nAllow 127.0.0.1\n' "$PPORT" "$W" > tp.conf
tinyproxy -d -c tp.conf >/dev/null 2>&1 & PROXY=$!
sleep 1
export SSL_CERT_FILE=$W/ca.crt
XDG_CACHE_HOME=$W/c0 "$STELE" -q push "$IMAGE" "127.0.0.1:$RPORT/m/img:1" >/dev/null
tunnels() { grep -c 'Connect (file descriptor' tp.log || true; }
: > tp.log
HTTPS_PROXY=http://127.0.0.1:$PPORT XDG_CACHE_HOME=$W/c1 "$STELE" -q pull -j "$JOBS" "127.0.0.1:$RPORT/m/img:1" -o "$W/pulled" >/dev/null
echo "pull through the proxy: $(tunnels) CONNECT tunnels"
: > tp.log
HTTPS_PROXY=http://127.0.0.1:$PPORT XDG_CACHE_HOME=$W/c2 "$STELE" -q push -j "$JOBS" "$W/pulled" "127.0.0.1:$RPORT/m/img2:1" >/dev/null
echo "push through the proxy: $(tunnels) CONNECT tunnels"
# Without a proxy: TCP connections to the registry, counted by strace.
if command -v strace >/dev/null; then
  XDG_CACHE_HOME=$W/c3 strace -f -e trace=connect -o st.log "$STELE" -q pull -j "$JOBS" "127.0.0.1:$RPORT/m/img:1" -o "$W/pulled2" >/dev/null
  echo "pull without a proxy: $(grep -c "sin_port=htons($RPORT)" st.log) TCP connections"
fi
