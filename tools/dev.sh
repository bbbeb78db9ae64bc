#!/usr/bin/env bash
# One entry point that sets everything up on a fresh machine, then runs a job.
#   bash tools/dev.sh demo [rtsep demo options]   separate the built-in example
#   bash tools/dev.sh test [pytest options]       the whole test suite (+ no-JIT coverage run), what CI runs
#   bash tools/dev.sh test --quick [pytest opts]  developers' check: compiled pass only, no heavy/live tests
#   bash tools/dev.sh bench [rtsep bench options] benchmarks
#   bash tools/dev.sh setup                       only install
# As root it installs the system libraries (libsndfile, PortAudio, JACK, real
# speech prompts, espeak-ng, Chromium + its WebDriver for the browser client's
# test) with apt; otherwise it says what is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${RTSEP_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
SYSTEM_PACKAGES=(libsndfile1 libportaudio2 jackd2 espeak-ng drascula-music asc-music
                 asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722
                 chromium chromium-driver)

say() { printf 'rtsep-dev: %s\n' "$*" >&2; }

install_system() {
  local missing=()
  for p in "${SYSTEM_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    say "missing system packages: ${missing[*]} (not root or no apt: install them yourself; tests that need them will skip and say why)"
    return 0
  fi
  say "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python() {
  local stamp="$VENV/.rtsep-installed"
  local want
  want=$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
  fi
  say "installing rtsep and its Python dependencies"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e "$ROOT[test,bench,neural]"
  echo "$want" >"$stamp"
}

# Numba compiles the kernels on first use and caches them next to the sources:
# doing it here spares the first demo/replay a silent minute (silent when cached)
warm_engines() {
  "$VENV/bin/python" -c "import sys
from rtsep import Separator
from rtsep.warm import compile_notice
for e in ('td', 'fd'):
    with compile_notice(e, sys.stderr):
        Separator(16000, engine=e).warmup()"
}

setup() { install_system; install_python; warm_engines; }

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case "$cmd" in
  setup) setup ;;
  demo)  setup; exec "$VENV/bin/rtsep" demo "$@" ;;
  bench) setup; exec "$VENV/bin/rtsep" bench "$@" ;;
  test)
    setup
    cd "$ROOT"
    if [[ ${1:-} == --quick ]]; then
      shift
      # the full run (about 11 minutes on 2 cores) spends half of it in the no-JIT coverage
      # pass and most of the rest in the quality (heavy) and JACK (live) tests: CI keeps those
      exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not heavy and not live" -x "$@"
    fi
    # 1) the real, compiled suite
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
    # 2) the same specs with Numba's JIT off, for line coverage of the kernels
    #    (the heavy quality/live/browser tests are marked and skipped in this pass);
    #    plain Python is slow and these specs share nothing, so one worker per core
    #    (11 -> 6 minutes on 2 cores); the live specs of pass 1 share one JACK server
    NUMBA_DISABLE_JIT=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider -n auto \
      -m "not heavy and not live and not browser" \
      --cov=rtsep --cov-report=term:skip-covered "$@"
    ;;
  *) echo "usage: bash tools/dev.sh demo|test|bench|setup [options]" >&2; exit 2 ;;
esac
