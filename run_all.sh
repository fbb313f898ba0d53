#!/usr/bin/env bash
# Single entry point of the microlens project: set-up, default job, tests, lab, benchmarks.
# Run `./run_all.sh help` for the subcommands.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.microlens-install-stamp"
# Must match the torch pin in pyproject.toml (tests/test_packaging.py checks it). A range would
# let pip pull a multi-GB CUDA build instead of the CPU wheel.
TORCH_SPEC="torch==2.13.0"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"

log() { echo "[run_all] $*"; }
warn() { echo "[run_all] WARNING: $*" >&2; }
die() {
    echo "[run_all] ERROR: $*" >&2
    exit 1
}

usage() {
    cat <<EOF
Usage: ./run_all.sh [SUBCOMMAND] [ARGS...]

Subcommands:
  quick (default)    set up .venv, then run the quick study: notebooks 01_simulate ... 07_real_events
                     on a small data set and model (CPU, a few minutes) -> outputs/quick/
  STUDY [OPTIONS]    set up, then run a study of studies/ ($(study_names)):
                       --jobs N           cells in parallel (each gets cores/N threads)
                       --processes N      processes per training (N > 1: DistributedDataParallel
                                          through torchrun)
                       --device D         auto, cpu or cuda for every notebook that takes one
                       --only CELL        only this cell (name or pattern, e.g. 'topology=st*')
                       --dry-run          list the cells and what would run, run nothing
                       --force            rerun finished cells (remakes their data sets and runs)
                       --set NB.NAME=V    override a notebook parameter in every cell
                     finished cells are skipped; results in outputs/STUDY/ (summary.csv,
                     figures/index.html, one folder per cell)
  figures [STUDY...] rebuild every figure (per cell and per study) and figures/index.html from
                     existing outputs, without re-simulating or retraining (default: every study
                     run so far); --formats html,png,pdf
  list               the studies with their cells
  test [ARGS...]     set up, then run the whole suite (python -m pytest ARGS...), as CI does,
                     one pytest worker per core (MICROLENS_TEST_WORKERS=N to choose, 0 for one
                     process)
  test fast [ARGS]   set up, then run the fast tier only (pytest -m "not slow" ARGS...): unit
                     tests without notebooks, studies, torchrun or figure rebuilds
  lab [ARGS...]      set up, then start JupyterLab in notebooks/ with the project's kernel
  bench [ARGS...]    set up, then run python -m microlens.workflow.bench ARGS...
                     (simulate | train | infer | classify; e.g. ./run_all.sh bench train)
  help, -h, --help   show this text

Set-up creates .venv (python3 >= 3.11), installs torch==2.13.0 (CPU) and the project with
its dev extra (skipped while .venv/.microlens-install-stamp matches pyproject.toml), and
tries to install chromium for static plotly export (set MICROLENS_SKIP_SYSTEM_DEPS=1 to skip).
EOF
}

study_names() {
    local f names=()
    for f in "$ROOT"/studies/*.yaml; do
        [[ -f "$f" ]] && names+=("$(basename "$f" .yaml)")
    done
    echo "${names[*]}"
}

is_study() {
    [[ "$1" =~ ^[A-Za-z0-9_-]+$ && -f "$ROOT/studies/$1.yaml" ]]
}

# --------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------

check_python() {
    local py="$1"
    "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

pyproject_hash() {
    "$VENV/bin/python" -c \
        'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())'
}

can_apt_install() {
    [[ "${MICROLENS_SKIP_SYSTEM_DEPS:-0}" != "1" && "$(id -u)" == "0" ]] \
        && command -v apt-get >/dev/null 2>&1
}

apt_install() {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        command -v python3 >/dev/null 2>&1 \
            || die "python3 not found on PATH; install Python >= 3.11 first."
        check_python python3 \
            || die "python3 is $(python3 -V 2>&1); this project needs Python >= 3.11."
        log "creating virtual environment in .venv ($(python3 -V 2>&1))"
        if ! python3 -m venv "$VENV"; then
            rm -rf "$VENV"
            can_apt_install \
                || die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)."
            log "installing python3-venv with apt-get"
            apt_install python3-venv && python3 -m venv "$VENV" \
                || die "python3 -m venv failed even after installing python3-venv."
        fi
    fi
    check_python "$VENV/bin/python" \
        || die ".venv has $("$VENV/bin/python" -V 2>&1); need >= 3.11. Remove .venv and re-run."
}

install_python_deps() {
    local py="$VENV/bin/python" want have=""
    want="$(pyproject_hash)"
    [[ -f "$STAMP" ]] && have="$(cat "$STAMP")"
    if [[ "$want" == "$have" ]] \
        && "$py" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("microlens") is None)'
    then
        log "python dependencies up to date (stamp matches pyproject.toml)"
        return 0
    fi
    rm -f "$STAMP"
    log "upgrading pip"
    "$py" -m pip install -q --upgrade pip || warn "could not upgrade pip; continuing"
    log "installing $TORCH_SPEC (CPU)"
    if ! "$py" -m pip install -q "$TORCH_SPEC"; then
        log "retrying $TORCH_SPEC from $TORCH_CPU_INDEX"
        "$py" -m pip install -q --index-url "$TORCH_CPU_INDEX" "$TORCH_SPEC" \
            || die "could not install $TORCH_SPEC"
    fi
    log "installing microlens in editable mode with the dev extra"
    "$py" -m pip install -q -e '.[dev]' || die "pip install -e '.[dev]' failed"
    echo "$want" >"$STAMP"
    log "python dependencies installed"
}

find_chromium() {
    local name
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

ensure_chromium() {
    local bin=""
    if ! bin="$(find_chromium)"; then
        if can_apt_install; then
            log "chromium not found; installing it with apt-get (for static plotly export)"
            if apt_install chromium; then
                bin="$(find_chromium)" || bin=""
            fi
        fi
    fi
    if [[ -n "$bin" ]]; then
        export BROWSER_PATH="$bin"
        log "chromium: $BROWSER_PATH"
    else
        warn "chromium is not available; static plotly (kaleido) export will be skipped."
    fi
}

setup() {
    cd "$ROOT"
    log "set-up in $ROOT"
    ensure_venv
    install_python_deps
    ensure_chromium
    export VIRTUAL_ENV="$VENV"
    export PATH="$VENV/bin:$PATH"
    export MPLBACKEND=Agg
    export PYDEVD_DISABLE_FILE_VALIDATION=1
    PY="$VENV/bin/python"
}

# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------

cmd_study() {
    # One study of studies/ through the runner (resumable; see lib/microlens/workflow/studies/).
    local study="$1"
    shift
    log "running study $study: python -m microlens.workflow.studies run $study${*:+ $*}"
    "$PY" -m microlens.workflow.studies run "$study" "$@"
}

cmd_test() {
    local rc=0
    if [[ "${1:-}" == "fast" ]]; then
        shift
        set -- -m "not slow" "$@"
    fi
    # One pytest worker per core (pytest-xdist); tests that share a notebook chain stay on one
    # worker (tests/conftest.py groups them). MICROLENS_TEST_WORKERS=0 runs in one process.
    set -- -n "${MICROLENS_TEST_WORKERS:-auto}" --dist loadgroup "$@"
    # Compiled modules (and pytest's rewritten test modules) written once, then read by every
    # worker, notebook kernel and subprocess instead of compiling the package again in each.
    unset PYTHONDONTWRITEBYTECODE
    log "running python -m pytest${*:+ $*}"
    "$PY" -m pytest "$@" || rc=$?
    if [[ $rc -eq 5 ]]; then
        echo "[run_all] ERROR: pytest collected no tests (exit code 5); treating this as a failure." >&2
    elif [[ $rc -ne 0 ]]; then
        echo "[run_all] ERROR: tests failed (pytest exit code $rc)." >&2
    else
        log "tests passed"
    fi
    return "$rc"
}

cmd_lab() {
    local extra=()
    # Jupyter refuses to start as root without this flag (containers, CI machines).
    [[ "$(id -u)" == "0" ]] && extra+=(--allow-root)
    cd "$ROOT/notebooks"
    log "starting jupyter lab in $ROOT/notebooks"
    exec "$PY" -m jupyter lab ${extra[@]+"${extra[@]}"} "$@"
}

cmd_bench() {
    "$PY" -m microlens.workflow.bench "$@"
}

# --------------------------------------------------------------------------------------------
# Dispatch: parse the subcommand before any set-up so help/unknown never install anything.
# --------------------------------------------------------------------------------------------

main() {
    local sub="${1:-quick}"
    [[ $# -gt 0 ]] && shift
    case "$sub" in
        help | -h | --help)
            usage
            return 0
            ;;
        test | lab | bench | figures | list) ;;
        *)
            if is_study "$sub"; then
                setup
                cmd_study "$sub" "$@"
                return
            fi
            echo "[run_all] unknown subcommand: $sub" >&2
            usage >&2
            exit 2
            ;;
    esac
    setup
    case "$sub" in
        figures) "$PY" -m microlens.workflow.studies figures "$@" ;;
        list) "$PY" -m microlens.workflow.studies list "$@" ;;
        test) cmd_test "$@" ;;
        lab) cmd_lab "$@" ;;
        bench) cmd_bench "$@" ;;
    esac
}

main "$@"
