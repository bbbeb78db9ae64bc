#!/usr/bin/env bash
# Virtual sound card for rtsep's live tests: a JACK server with the `dummy` backend
# (no hardware, paced at real time by a timer). PortAudio lists it as a device once jackd runs;
# tests/live_rig.py plays into rtsep's input and records its output on the same clock.
#
# usage: va-jack.sh install            apt-get install jackd2 libportaudio2 (root only; no-op if present)
#        va-jack.sh up [RATE] [PERIOD]  start jackd (default 16000 Hz, 1024-frame period); idempotent
#        va-jack.sh down                stop the jackd this script started (by its recorded PID only)
#        va-jack.sh status              exit 0 if that jackd is running and answers
#
# RTSEP_JACK_SERVER=NAME runs a separately named server (jackd -n NAME; clients reach it with
# JACK_DEFAULT_SERVER=NAME), so a test can kill "its" server without disturbing the shared one.
# Non-interactive, never prompts; safe to call twice.
set -euo pipefail

NAME=${RTSEP_JACK_SERVER:-default}
D=${RTSEP_JACK_DIR:-/tmp/rtsep-jack-$(id -u)}
PIDF="$D/jackd-$NAME.pid"
LOG="$D/jackd-$NAME.log"
mkdir -p "$D"
# No D-Bus device reservation (there is no session bus on CI), and a client must never
# spawn a server behind our back.
export JACK_NO_AUDIO_RESERVATION=1 JACK_NO_START_SERVER=1 DEBIAN_FRONTEND=noninteractive
if [[ $NAME != default ]]; then export JACK_DEFAULT_SERVER=$NAME; fi

running() { [[ -s $PIDF ]] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }

start() {  # start [extra jackd options...]
  local name_opt=()
  [[ $NAME != default ]] && name_opt=(-n "$NAME")
  setsid jackd "${name_opt[@]}" "$@" -d dummy -r "$RATE" -p "$PERIOD" -C 2 -P 2 </dev/null >"$LOG" 2>&1 &
  echo $! >"$PIDF"
  # jack_wait -w polls once a second; jack_lsp answers as soon as the server is up (~0.15 s).
  for _ in $(seq 250); do
    jack_lsp >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$PIDF")" 2>/dev/null || break
    sleep 0.02
  done
  kill "$(cat "$PIDF")" 2>/dev/null || true
  rm -f "$PIDF"
  return 1
}

case ${1:-} in
install)
  if dpkg -s jackd2 libportaudio2 >/dev/null 2>&1; then exit 0; fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "va-jack.sh: jackd2/libportaudio2 missing and not root: run as root or apt-get install jackd2 libportaudio2" >&2
    exit 1
  fi
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends jackd2 libportaudio2 >/dev/null ;;
up)
  RATE=${2:-16000} PERIOD=${3:-1024}
  if running; then exit 0; fi
  command -v jackd >/dev/null || { echo "va-jack.sh: jackd not installed (va-jack.sh install, as root)" >&2; exit 1; }
  if jack_lsp >/dev/null 2>&1; then
    echo "va-jack.sh: a JACK server named '$NAME' is already running (not started here); using it" >&2
    exit 0
  fi
  # SCHED_FIFO (-R) needs root or an rtprio limit; without it jackd may refuse to start,
  # so fall back to a normal-priority server (the dummy backend is timer-paced either way).
  if [[ $(id -u) -eq 0 ]] && start -R; then exit 0; fi
  if start --no-realtime; then exit 0; fi
  cat "$LOG" >&2; exit 1 ;;
down)
  [[ -s $PIDF ]] || exit 0
  pid=$(cat "$PIDF"); kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDF" ;;
status)
  running && jack_lsp >/dev/null 2>&1 ;;
*) echo "usage: $0 install | up [rate] [period] | down | status" >&2; exit 2 ;;
esac
