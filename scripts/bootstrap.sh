# Shared by scripts/run and scripts/test: make .venv with the project installed in it.
# Usage: source scripts/bootstrap.sh; ensure_venv [dev]
set -euo pipefail

pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "taskbot needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
    return 1
}

ensure_venv() {
    # $1: an extra to install as well ("dev" for the test tools). The stamp records what
    # was installed for which pyproject/constraints, so `run` after `test` installs nothing.
    local extra="${1:-}" spec="." stamp=".venv/.installed" hash have python
    hash=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
    have=$(cat "$stamp" 2>/dev/null || true)
    if [ ! -x .venv/bin/python ]; then
        python=$(pick_python)
        echo "Creating .venv with $python ..." >&2
        "$python" -m venv .venv
        have=""
    fi
    if [ "$have" = "$hash dev" ] || [ "$have" = "$hash $extra" ]; then
        return 0
    fi
    [ -n "$extra" ] && spec=".[$extra]"
    echo "Installing taskbot ${extra:+and its $extra tools }into .venv ..." >&2
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
    .venv/bin/python -m pip install --quiet -c constraints.txt -e "$spec" >&2
    echo "$hash $extra" >"$stamp"
}
