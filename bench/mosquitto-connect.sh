#!/usr/bin/env bash
# Gateway connect rate, Gatehouse vs Mosquitto (issue 4, "Performance").
#
#   bench/mosquitto-connect.sh [N] [CONCURRENCY] [--workers W] [--client lean|mqttjs]   (defaults 1000, 16, 1, lean)
#   --workers W is forwarded to bench/connect.ts (GATEHOUSE_WORKERS=W: a node:cluster primary and W workers; the
#   issue's target is that Gatehouse with --workers 2 beats single-threaded Mosquitto). --client picks the MQTT client
#   of both loads (the same one against both brokers).
#   env: CERTS=50 client certificates; MOSQUITTO_TCP_NODELAY=false (Mosquitto's default: it then pays a ~40 ms
#   delayed-ACK stall before CONNACK at low load; Gatehouse's device listener now sets TCP_NODELAY, see
#   src/gateway/device-tls.ts; MOSQUITTO_TCP_NODELAY=true compares like with like)
#
# 1. Makes an EC P-256 PKI with openssl in a temp dir, shaped like Gatehouse's (root -> issuing CA -> server leaf,
#    the server sends leaf + issuing CA; CERTS client certificates issued by the issuing CA).
# 2. Starts Debian's mosquitto on a free 127.0.0.1 port (require_certificate true, use_identity_as_username true,
#    allow_anonymous true, no persistence) and runs bench/mqtt-connect-load.ts against it: N x (mTLS connect ->
#    CONNACK -> one QoS 1 publish -> disconnect), CONCURRENCY in flight. Mosquitto is then stopped.
# 3. Runs bench/connect.ts (a real Gatehouse server, the same load with the same client code, next to its raw
#    node:tls handshake baseline) and prints the ratio Gatehouse/Mosquitto, and the ratio of their CPU per
#    connection (Gatehouse's summed over its process tree).
#
# stdout: the JSON lines of both runs plus one line with the ratio; stderr: human summary.
# Everything started here is stopped on exit (trap); the temp dir is removed.
set -euo pipefail

WORKERS=1
CLIENT=lean
POSITIONAL=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --workers) WORKERS="${2:?--workers needs a value}"; shift 2 ;;
    --workers=*) WORKERS="${1#*=}"; shift ;;
    --client) CLIENT="${2:?--client needs a value}"; shift 2 ;;
    --client=*) CLIENT="${1#*=}"; shift ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) POSITIONAL+=("$1"); shift ;;
  esac
done
N="${POSITIONAL[0]:-1000}"
CONCURRENCY="${POSITIONAL[1]:-16}"
[[ "${WORKERS}" =~ ^[1-9][0-9]*$ ]] || { echo "--workers must be a positive integer, got ${WORKERS}" >&2; exit 2; }
[[ "${CLIENT}" == lean || "${CLIENT}" == mqttjs ]] || { echo "--client must be lean or mqttjs, got ${CLIENT}" >&2; exit 2; }
CERTS="${CERTS:-50}"
# Mosquitto's default is TCP_NODELAY off (Gatehouse's device listener sets it); MOSQUITTO_TCP_NODELAY=true turns it on.
MOSQUITTO_TCP_NODELAY="${MOSQUITTO_TCP_NODELAY:-false}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d /tmp/gh-bench-mosq-XXXXXX)"
MOSQ_PID=""
LOAD_PID=""

cleanup() {
  for pid in "${LOAD_PID}" "${MOSQ_PID}"; do
    if [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null; then
      kill "${pid}" 2>/dev/null || true
      wait "${pid}" 2>/dev/null || true
    fi
  done
  rm -rf "${WORK}"
}

# Runs a benchmark script with tsx in the background (so that the trap can stop it) and waits for it.
run_tsx() {
  local out="$1"
  shift
  node --import tsx "$@" >"${out}" &
  LOAD_PID=$!
  wait "${LOAD_PID}"
  LOAD_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v mosquitto >/dev/null || { echo "mosquitto not found (apt-get install mosquitto)" >&2; exit 1; }
cd "${REPO}"

# --- PKI (EC P-256, like Gatehouse) ---------------------------------------------------------------------------
ossl() { openssl "$@" 2>/dev/null; }
key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
cat >"${WORK}/ca.ext" <<'EOF'
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
cat >"${WORK}/server.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1,IP:::1
authorityKeyIdentifier=keyid
EOF
cat >"${WORK}/client.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
authorityKeyIdentifier=keyid
EOF
key "${WORK}/root.key"
ossl req -new -x509 -key "${WORK}/root.key" -subj "/CN=Mosquitto Bench Root" -days 2 -sha256 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "${WORK}/root.pem"
key "${WORK}/issuing.key"
ossl req -new -key "${WORK}/issuing.key" -subj "/CN=Mosquitto Bench Issuing CA" -out "${WORK}/issuing.csr"
ossl x509 -req -in "${WORK}/issuing.csr" -CA "${WORK}/root.pem" -CAkey "${WORK}/root.key" -CAcreateserial -days 2 -sha256 \
  -extfile "${WORK}/ca.ext" -out "${WORK}/issuing.pem"
key "${WORK}/server.key"
ossl req -new -key "${WORK}/server.key" -subj "/O=Bench/CN=localhost" -out "${WORK}/server.csr"
ossl x509 -req -in "${WORK}/server.csr" -CA "${WORK}/issuing.pem" -CAkey "${WORK}/issuing.key" -CAcreateserial -days 2 -sha256 \
  -extfile "${WORK}/server.ext" -out "${WORK}/server-leaf.pem"
cat "${WORK}/server-leaf.pem" "${WORK}/issuing.pem" >"${WORK}/server-chain.pem"
cat "${WORK}/root.pem" "${WORK}/issuing.pem" >"${WORK}/client-cas.pem"
mkdir -p "${WORK}/clients"
for i in $(seq 1 "${CERTS}"); do
  c="${WORK}/clients/client-$(printf '%03d' "${i}")"
  key "${c}.key"
  ossl req -new -key "${c}.key" -subj "/CN=bench-device-${i}" -out "${c}.csr"
  ossl x509 -req -in "${c}.csr" -CA "${WORK}/issuing.pem" -CAkey "${WORK}/issuing.key" -CAcreateserial -days 2 -sha256 \
    -extfile "${WORK}/client.ext" -out "${c}.pem"
  rm -f "${c}.csr"
done
chmod -R a+rX "${WORK}" # mosquitto started as root drops to its own user unless told otherwise

# --- Mosquitto -------------------------------------------------------------------------------------------------
PORT="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
cat >"${WORK}/mosquitto.conf" <<EOF
user $(id -un)
per_listener_settings false
allow_anonymous true
persistence false
max_connections -1
log_dest file ${WORK}/mosquitto.log
log_type error
log_type warning
listener ${PORT} 127.0.0.1
cafile ${WORK}/client-cas.pem
certfile ${WORK}/server-chain.pem
keyfile ${WORK}/server.key
require_certificate true
use_identity_as_username true
set_tcp_nodelay ${MOSQUITTO_TCP_NODELAY}
EOF
mosquitto -c "${WORK}/mosquitto.conf" &
MOSQ_PID=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then break; fi
  kill -0 "${MOSQ_PID}" 2>/dev/null || { echo "mosquitto exited:" >&2; cat "${WORK}/mosquitto.log" >&2 || true; exit 1; }
  sleep 0.1
done
echo "[mosquitto-connect] mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}') pid ${MOSQ_PID} on 127.0.0.1:${PORT}; ${CERTS} client certificates; N=${N} concurrency=${CONCURRENCY} set_tcp_nodelay=${MOSQUITTO_TCP_NODELAY} client=${CLIENT} gatehouse workers=${WORKERS}" >&2

run_tsx "${WORK}/mosquitto.jsonl" bench/mqtt-connect-load.ts --port "${PORT}" --ca "${WORK}/root.pem" --cert-dir "${WORK}/clients" \
  --n "${N}" --concurrency "${CONCURRENCY}" --label mosquitto --server-pid "${MOSQ_PID}" --time-limit-s 60 --client "${CLIENT}"
MOSQ_OUT="$(cat "${WORK}/mosquitto.jsonl")"
echo "${MOSQ_OUT}"
kill "${MOSQ_PID}" 2>/dev/null || true
wait "${MOSQ_PID}" 2>/dev/null || true
MOSQ_PID=""

# --- Gatehouse (same load, same client code, plus its raw handshake baseline) ------------------------------------------
run_tsx "${WORK}/gatehouse.jsonl" bench/connect.ts "${N}" --certs "${CERTS}" --concurrency "${CONCURRENCY}" --workers "${WORKERS}" --client "${CLIENT}"
GH_OUT="$(cat "${WORK}/gatehouse.jsonl")"
echo "${GH_OUT}"

# --- Ratio -------------------------------------------------------------------------------------------------------------
MOSQ_OUT="${MOSQ_OUT}" GH_OUT="${GH_OUT}" WORKERS="${WORKERS}" CLIENT="${CLIENT}" node -e '
const pick = (text, metric) => {
  for (const line of text.split("\n")) {
    try { const j = JSON.parse(line); if (j.metric === metric) return j.value; } catch {}
  }
  throw new Error(`no ${metric} line`);
};
const mosq = pick(process.env.MOSQ_OUT, "mqtt_connects_per_second");
const gh = pick(process.env.GH_OUT, "mqtt_connects_per_second");
const raw = pick(process.env.GH_OUT, "raw_tls_handshakes_per_second");
const mosqCpu = pick(process.env.MOSQ_OUT, "broker_cpu_ms_per_connect");
const ghCpu = pick(process.env.GH_OUT, "gatehouse_cpu_ms_per_connect");
const workers = Number(process.env.WORKERS);
const r = (x) => Math.round(x * 1000) / 1000;
console.log(JSON.stringify({ bench: "mosquitto-connect", metric: "ratio_gatehouse_to_mosquitto", value: r(gh / mosq), unit: "ratio",
  gatehouseConnectsPerSecond: gh, mosquittoConnectsPerSecond: mosq, rawHandshakesPerSecond: raw, mosquittoToRaw: r(mosq / raw),
  gatehouseWorkers: workers, client: process.env.CLIENT, gatehouseCpuMsPerConnect: ghCpu, mosquittoCpuMsPerConnect: mosqCpu, cpuRatioMosquittoToGatehouse: r(mosqCpu / ghCpu),
  note: "Mosquitto is single-threaded; Gatehouse runs GATEHOUSE_WORKERS worker processes (1: one process), its CPU summed over its process tree; client and brokers share the machine" }));
console.error(`[mosquitto-connect] Gatehouse (workers ${workers}) ${gh} connects/s, Mosquitto ${mosq} connects/s: ratio Gatehouse/Mosquitto ${r(gh / mosq)} (Mosquitto/raw handshakes ${r(mosq / raw)}, Gatehouse/raw ${r(gh / raw)}); CPU per connect Gatehouse ${ghCpu} ms, Mosquitto ${mosqCpu} ms`);
'
