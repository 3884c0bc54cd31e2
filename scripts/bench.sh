#!/usr/bin/env bash
# The benchmark: raw store/broker reference rates, then chat3's core paths, in one run.
#
#   scripts/bench.sh            # full run (≤ 10 minutes once everything is built)
#   scripts/bench.sh --quick    # short run (≤ 2 minutes)
#   scripts/bench.sh --help     # every option of the bench program
#
# What it does: installs secantusd-rs when missing (`cargo install secantus-mdb`, 4+ minutes;
# cmake from apt first if needed), starts it on a free port with a temporary storage directory
# (default cache size), makes sure RabbitMQ is up (scripts/services.sh), builds the release
# binaries and runs `chat3-bench`, which starts `chat3-api serve` and `update-worker run` itself
# with a fresh database and fresh exchange/queue names. Arguments go to `chat3-bench`.
#
# Settings (environment):
#   CHAT3_BENCH_BIN_DIR   take chat3-api and update-worker from this directory instead of
#                         building the current tree (e.g. another checkout's target/release)
#   CHAT3_BENCH_LABEL     label stored with the results (default: the binaries' origin)
#   CHAT3_BENCH_OUT       results file (default target/bench/bench-<UTC timestamp>.json); the
#                         logs of every process go to <results file without .json>-logs/
#   SECANTUS_MDB_VERSION  secantus-mdb version to install (default 0.5.3-beta.196)
#   CARGO_TARGET_DIR      honoured for the builds
#   RABBITMQ_URL          broker (default amqp://guest:guest@127.0.0.1:5672/%2f)

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/services.sh
source "$ROOT/scripts/services.sh"

SECANTUS_MDB_VERSION="${SECANTUS_MDB_VERSION:-0.5.3-beta.196}"
STORE_PID=""
STORE_DIR=""

cleanup() {
  if [ -n "$STORE_PID" ] && kill -0 "$STORE_PID" 2>/dev/null; then
    chat3_log "stopping secantusd-rs (pid $STORE_PID)"
    kill -TERM "$STORE_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do
      kill -0 "$STORE_PID" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$STORE_PID" 2>/dev/null && kill -KILL "$STORE_PID" 2>/dev/null
    wait "$STORE_PID" 2>/dev/null || true
  fi
  [ -n "$STORE_DIR" ] && rm -rf "$STORE_DIR"
  chat3_stop_rabbitmq_if_started
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the path of secantusd-rs, installing it first when it is missing.
ensure_secantusd_rs() {
  local bin
  bin="$(command -v secantusd-rs 2>/dev/null || true)"
  [ -z "$bin" ] && [ -x "$HOME/.cargo/bin/secantusd-rs" ] && bin="$HOME/.cargo/bin/secantusd-rs"
  if [ -n "$bin" ]; then
    echo "$bin"
    return 0
  fi
  if ! command -v cmake >/dev/null 2>&1; then
    chat3_log "installing cmake (apt), needed to build secantusd-rs"
    chat3_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q cmake </dev/null >&2 ||
      { chat3_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2 &&
        chat3_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q cmake </dev/null >&2; } ||
      return 1
  fi
  chat3_log "installing secantusd-rs: cargo install secantus-mdb --version $SECANTUS_MDB_VERSION (builds a storage engine: 4+ minutes)"
  cargo install secantus-mdb --version "$SECANTUS_MDB_VERSION" --locked --ignore-rust-version >&2 ||
    return 1
  bin="$(command -v secantusd-rs 2>/dev/null || echo "$HOME/.cargo/bin/secantusd-rs")"
  [ -x "$bin" ] || chat3_die "secantusd-rs not found after cargo install"
  echo "$bin"
}

# `--help`: only the bench program's options.
for arg in "$@"; do
  case "$arg" in
    -h | --help)
      cargo build --release -q -p chat3-bench
      exec "${CARGO_TARGET_DIR:-$ROOT/target}/release/chat3-bench" --help
      ;;
  esac
done

# Results file: --out from the arguments, else CHAT3_BENCH_OUT, else a timestamped default.
OUT=""
prev=""
for arg in "$@"; do
  case "$arg" in
    --out=*) OUT="${arg#--out=}" ;;
  esac
  [ "$prev" = "--out" ] && OUT="$arg"
  prev="$arg"
done
EXTRA=()
if [ -z "$OUT" ]; then
  OUT="${CHAT3_BENCH_OUT:-$ROOT/target/bench/bench-$(date -u +%Y%m%d-%H%M%S).json}"
  EXTRA+=(--out "$OUT")
fi
LOG_DIR="${OUT%.json}-logs"
mkdir -p "$LOG_DIR"

# Open-loop workloads hold thousands of connections.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

STORE_BIN="$(ensure_secantusd_rs)"
chat3_ensure_rabbitmq

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
if [ -n "${CHAT3_BENCH_BIN_DIR:-}" ]; then
  API_BIN="$CHAT3_BENCH_BIN_DIR/chat3-api"
  WORKER_BIN="$CHAT3_BENCH_BIN_DIR/update-worker"
  for b in "$API_BIN" "$WORKER_BIN"; do
    [ -x "$b" ] || chat3_die "$b not found (CHAT3_BENCH_BIN_DIR)"
  done
  chat3_log "building chat3-bench (release); services from $CHAT3_BENCH_BIN_DIR"
  cargo build --release -p chat3-bench
  LABEL="${CHAT3_BENCH_LABEL:-binaries from $CHAT3_BENCH_BIN_DIR}"
else
  chat3_log "building release binaries (chat3-api, update-worker, chat3-bench)"
  cargo build --release -p chat3-api -p chat3-update-worker -p chat3-bench
  API_BIN="$TARGET_DIR/release/chat3-api"
  WORKER_BIN="$TARGET_DIR/release/update-worker"
  rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  dirty=""
  [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] && dirty="+uncommitted changes"
  LABEL="${CHAT3_BENCH_LABEL:-tree at $rev$dirty}"
fi
BENCH_BIN="$TARGET_DIR/release/chat3-bench"

# The store: a temporary directory, default cache size, a free port.
STORE_DIR="$(mktemp -d -t chat3-bench-store.XXXXXX)"
STORE_LOG="$LOG_DIR/secantusd-rs.log"
for attempt in 1 2 3; do
  port="$(chat3_free_port)"
  # Started inside its temp dir so that no stray ./secantusd.toml is picked up.
  (cd "$STORE_DIR" && exec "$STORE_BIN" --host 127.0.0.1 --port "$port" --storage-path "$STORE_DIR/data" \
    --log-level WARNING </dev/null >>"$STORE_LOG" 2>&1) &
  STORE_PID=$!
  started=0
  for _ in $(seq 1 120); do
    kill -0 "$STORE_PID" 2>/dev/null || break
    if chat3_port_open 127.0.0.1 "$port"; then
      started=1
      break
    fi
    sleep 0.5
  done
  [ "$started" = 1 ] && break
  kill "$STORE_PID" 2>/dev/null || true
  wait "$STORE_PID" 2>/dev/null || true
  STORE_PID=""
  chat3_warn "secantusd-rs attempt $attempt on port $port failed; see $STORE_LOG"
done
[ -n "$STORE_PID" ] || chat3_die "secantusd-rs did not start (log: $STORE_LOG)"
MONGODB_URI="mongodb://127.0.0.1:$port/?directConnection=true"
chat3_log "secantusd-rs is up on 127.0.0.1:$port (pid $STORE_PID, storage $STORE_DIR)"

STORE_VERSION="$("$STORE_BIN" --version 2>/dev/null | head -1 || true)"
BROKER_VERSION="$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || true)"
BROKER_PID="$(pgrep -o -x beam.smp 2>/dev/null || true)"
BROKER_ARGS=()
[ -n "$BROKER_PID" ] && BROKER_ARGS+=(--broker-pid "$BROKER_PID")
[ -n "$BROKER_VERSION" ] && BROKER_ARGS+=(--broker-version "rabbitmq-server $BROKER_VERSION")

"$BENCH_BIN" \
  --api-bin "$API_BIN" --worker-bin "$WORKER_BIN" \
  --mongodb-uri "$MONGODB_URI" \
  --rabbitmq-url "${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}" \
  --store-pid "$STORE_PID" \
  --store-desc "$STORE_BIN --storage-path <tempdir> --log-level WARNING (default cache size)" \
  --store-version "${STORE_VERSION:-secantus-mdb $SECANTUS_MDB_VERSION}" \
  --label "$LABEL" \
  "${BROKER_ARGS[@]}" "${EXTRA[@]}" "$@"
