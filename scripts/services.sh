#!/usr/bin/env bash
# Local backing services for chat3: RabbitMQ and SecantusDB (a MongoDB-wire-compatible server).
#
# Two ways to use it:
#
#   source scripts/services.sh      # defines the chat3_* functions below; changes nothing yet
#   chat3_ensure_rabbitmq           # RabbitMQ reachable on 127.0.0.1:5672 (installs/starts it)
#   chat3_start_secantus :memory:   # SecantusDB on a free port; exports CHAT3_SECANTUS_URI
#   trap chat3_stop_all EXIT        # stop what we started
#
#   scripts/services.sh [STORAGE]   # the same, in the foreground, until Ctrl-C. STORAGE is
#                                   # ':memory:' (default) or a directory.
#
# Works without a terminal (CI=true, no stdin). SecantusDB is GPL software: it only ever runs as a
# separate process; nothing of it is linked into chat3.
#
# Settings (environment):
#   SECANTUS_VERSION        pip version pin             (default 0.7.0b3)
#   CHAT3_SECANTUS_VENV     venv location               (default <repo>/.local/secantus-venv)
#   CHAT3_SECANTUS_LOG      SecantusDB log file         (default <repo>/.local/logs/secantus.log)
#   RABBITMQ_URL            broker to wait for; only a local one is installed or started
#   CHAT3_RABBITMQ_WAIT     seconds to wait for the broker port (default 60)

CHAT3_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECANTUS_VERSION="${SECANTUS_VERSION:-0.7.0b3}"
CHAT3_SECANTUS_VENV="${CHAT3_SECANTUS_VENV:-$CHAT3_REPO_ROOT/.local/secantus-venv}"
CHAT3_SECANTUS_LOG="${CHAT3_SECANTUS_LOG:-$CHAT3_REPO_ROOT/.local/logs/secantus.log}"
CHAT3_RABBITMQ_WAIT="${CHAT3_RABBITMQ_WAIT:-60}"

# Set by the functions below so that the stop functions only touch what this shell started.
CHAT3_SECANTUS_PID="${CHAT3_SECANTUS_PID:-}"
CHAT3_RABBITMQ_STARTED_BY_US="${CHAT3_RABBITMQ_STARTED_BY_US:-0}"

# Colours only on a terminal, so that CI logs stay plain.
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
  _c3_blue=$'\033[1;34m' _c3_yellow=$'\033[1;33m' _c3_red=$'\033[1;31m' _c3_off=$'\033[0m'
else
  _c3_blue="" _c3_yellow="" _c3_red="" _c3_off=""
fi
chat3_log() { printf '%s==>%s %s\n' "$_c3_blue" "$_c3_off" "$*" >&2; }
chat3_warn() { printf '%swarning:%s %s\n' "$_c3_yellow" "$_c3_off" "$*" >&2; }
chat3_die() {
  printf '%serror:%s %s\n' "$_c3_red" "$_c3_off" "$*" >&2
  return 1
}

# Run as root, through sudo when we are not (CI images usually are root).
chat3_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    chat3_die "need root for: $*"
  fi
}

# True when something accepts TCP connections on HOST:PORT (1 s timeout).
chat3_port_open() {
  timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# Wait up to SECONDS for HOST:PORT to accept connections.
chat3_wait_port() {
  local host="$1" port="$2" seconds="$3" i
  for ((i = 0; i < seconds * 2; i++)); do
    chat3_port_open "$host" "$port" && return 0
    sleep 0.5
  done
  return 1
}

# A TCP port nobody listens on right now (the kernel picks it).
chat3_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# host and port of RABBITMQ_URL (default the local broker), as "host port".
chat3_rabbitmq_endpoint() {
  local url="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}" hostport host port
  hostport="${url#*://}"
  hostport="${hostport##*@}"
  hostport="${hostport%%/*}"
  host="${hostport%%:*}"
  port="5672"
  [ "$hostport" != "$host" ] && port="${hostport##*:}"
  echo "${host:-127.0.0.1} $port"
}

# Make sure RabbitMQ accepts connections. A local broker is installed (apt) when missing and
# started detached when stopped; a remote one (RABBITMQ_URL) is only waited for.
chat3_ensure_rabbitmq() {
  local host port
  read -r host port < <(chat3_rabbitmq_endpoint)
  if chat3_port_open "$host" "$port"; then
    chat3_log "RabbitMQ is up on $host:$port"
    return 0
  fi
  case "$host" in
    127.0.0.1 | localhost | ::1) ;;
    *)
      chat3_log "waiting for remote RabbitMQ on $host:$port"
      chat3_wait_port "$host" "$port" "$CHAT3_RABBITMQ_WAIT" || chat3_die "RabbitMQ $host:$port unreachable"
      return
      ;;
  esac
  if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
    chat3_log "installing rabbitmq-server (apt)"
    chat3_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null || return 1
    chat3_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server </dev/null || return 1
    # The package may have started it already (systemd or policy-rc.d permitting).
    if chat3_wait_port "$host" "$port" 5; then
      chat3_log "RabbitMQ is up on $host:$port"
      return 0
    fi
  fi
  chat3_log "starting rabbitmq-server -detached"
  chat3_as_root env PATH="$PATH:/usr/sbin" rabbitmq-server -detached </dev/null >/dev/null 2>&1 || true
  if chat3_wait_port "$host" "$port" "$CHAT3_RABBITMQ_WAIT"; then
    CHAT3_RABBITMQ_STARTED_BY_US=1
    chat3_log "RabbitMQ is up on $host:$port"
  else
    chat3_die "RabbitMQ did not open $host:$port within ${CHAT3_RABBITMQ_WAIT}s (see /var/log/rabbitmq/)"
  fi
}

# Stop RabbitMQ only if this shell started it.
chat3_stop_rabbitmq_if_started() {
  if [ "$CHAT3_RABBITMQ_STARTED_BY_US" = 1 ]; then
    chat3_log "stopping RabbitMQ (started by this script)"
    chat3_as_root env PATH="$PATH:/usr/sbin" rabbitmqctl stop >/dev/null 2>&1 || true
    CHAT3_RABBITMQ_STARTED_BY_US=0
  fi
}

# Create the SecantusDB venv, or fix its version, when needed.
chat3_ensure_secantus_venv() {
  local py="$CHAT3_SECANTUS_VENV/bin/python" have=""
  if [ -x "$py" ]; then
    have="$("$py" -c 'import importlib.metadata as m; print(m.version("SecantusDB"))' 2>/dev/null || true)"
  fi
  if [ "$have" = "$SECANTUS_VERSION" ] && [ -x "$CHAT3_SECANTUS_VENV/bin/secantusd-py" ]; then
    return 0
  fi
  chat3_log "installing SecantusDB==$SECANTUS_VERSION into ${CHAT3_SECANTUS_VENV#"$CHAT3_REPO_ROOT"/}"
  mkdir -p "$(dirname "$CHAT3_SECANTUS_VENV")"
  [ -x "$py" ] || python3 -m venv "$CHAT3_SECANTUS_VENV" || return 1
  "$CHAT3_SECANTUS_VENV/bin/pip" install --quiet --disable-pip-version-check \
    "SecantusDB==$SECANTUS_VERSION" </dev/null || return 1
}

# True when the MongoDB server at URI answers a ping (uses the pymongo that SecantusDB ships with).
chat3_mongo_ping() {
  "$CHAT3_SECANTUS_VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys
from pymongo import MongoClient
client = MongoClient(sys.argv[1], serverSelectionTimeoutMS=500, connectTimeoutMS=500)
client.admin.command("ping")
PY
}

# Start SecantusDB with STORAGE (':memory:' or a directory) on a free port, wait until it answers
# and export CHAT3_SECANTUS_PID, CHAT3_SECANTUS_PORT and CHAT3_SECANTUS_URI.
chat3_start_secantus() {
  local storage="${1:-:memory:}" attempt port pid i
  chat3_ensure_secantus_venv || return 1
  mkdir -p "$(dirname "$CHAT3_SECANTUS_LOG")"
  [ "$storage" = ":memory:" ] || mkdir -p "$storage"
  # Another process may grab the port between choosing and binding it: try a few times.
  for attempt in 1 2 3; do
    port="$(chat3_free_port)" || return 1
    # Run from .local so that no stray ./secantusd.toml is picked up.
    (cd "$(dirname "$CHAT3_SECANTUS_LOG")" &&
      exec "$CHAT3_SECANTUS_VENV/bin/secantusd-py" --host 127.0.0.1 --port "$port" \
        --storage-path "$storage" --log-level WARNING </dev/null >>"$CHAT3_SECANTUS_LOG" 2>&1) &
    pid=$!
    for ((i = 0; i < 60; i++)); do
      if ! kill -0 "$pid" 2>/dev/null; then
        break
      fi
      if chat3_mongo_ping "mongodb://127.0.0.1:$port/?directConnection=true"; then
        export CHAT3_SECANTUS_PID="$pid" CHAT3_SECANTUS_PORT="$port"
        export CHAT3_SECANTUS_URI="mongodb://127.0.0.1:$port/?directConnection=true"
        chat3_log "SecantusDB is up on 127.0.0.1:$port (pid $pid, storage $storage)"
        return 0
      fi
      sleep 0.5
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    chat3_warn "SecantusDB attempt $attempt on port $port failed; see $CHAT3_SECANTUS_LOG"
  done
  chat3_die "SecantusDB did not start (log: $CHAT3_SECANTUS_LOG)"
}

# Stop the SecantusDB started by chat3_start_secantus (TERM, then KILL after 10 s).
chat3_stop_secantus() {
  local pid="$CHAT3_SECANTUS_PID" i
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    chat3_log "stopping SecantusDB (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  fi
  CHAT3_SECANTUS_PID=""
}

# Stops the processes in the caller's PIDS array (named in NAMES), last started first: SIGTERM
# to all, then up to 15 s each to drain in-flight work, then SIGKILL. With a first argument,
# each stop is announced.
chat3_stop_started() {
  local announce="${1:-}" i pid n
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[$i]}"
    if kill -0 "$pid" 2>/dev/null; then
      [ -n "$announce" ] && chat3_log "stopping ${NAMES[$i]} (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[$i]}"
    for ((n = 0; n < 30; n++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      chat3_warn "${NAMES[$i]} did not stop in time; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}

# Stop everything this shell started.
chat3_stop_all() {
  chat3_stop_secantus
  chat3_stop_rabbitmq_if_started
}

# Executed (not sourced): run the services in the foreground until interrupted.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  trap chat3_stop_all EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  chat3_ensure_rabbitmq
  chat3_start_secantus "${1:-:memory:}"
  read -r _rmq_host _rmq_port < <(chat3_rabbitmq_endpoint)
  echo "MONGODB_URI=$CHAT3_SECANTUS_URI"
  echo "CHAT3_TEST_MONGODB_URI=$CHAT3_SECANTUS_URI"
  echo "RABBITMQ_URL=${RABBITMQ_URL:-amqp://guest:guest@$_rmq_host:$_rmq_port/%2f}"
  chat3_log "services running; Ctrl-C to stop"
  # `wait` returns when a signal arrives, so the traps run promptly.
  wait "$CHAT3_SECANTUS_PID" || true
fi
