#!/usr/bin/env bash
# Builds the two benchmark peers into benchmarks/.peers/ (git-ignored), each in its own venv so
# that neither becomes a project dependency and one failing build does not take the other down:
#   spconv 2.3.8 (CPU build)      -> benchmarks/.peers/spconv
#   MinkowskiEngine 0.5.4 (CPU)   -> benchmarks/.peers/minkowski   (~8 min compile on 2 cores)
# `lartpcnet bench engine` finds them there (or under $LARTPCNET_PEERS) and measures them in the same run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
peers="${LARTPCNET_PEERS:-$here/.peers}"
py="${PYTHON:-python3}"
mkdir -p "$peers"

build_spconv() {
  local v="$peers/spconv"
  if [ -x "$v/bin/python" ] && "$v/bin/python" -c "import spconv.pytorch" 2>/dev/null; then
    echo "spconv: already built in $v"; return
  fi
  "$py" -m venv "$v"
  "$v/bin/pip" install -q torch==2.13.0 "numpy<2" spconv==2.3.8
  "$v/bin/python" -c "import spconv, spconv.pytorch; print('spconv', spconv.__version__, 'ok')"
}

patch_minkowski() {
  # `from collections import Sequence[, namedtuple]` -> Sequence from collections.abc
  grep -rlE "from collections import (Sequence|.*, *Sequence)" "$1" | while read -r f; do
    sed -i -E \
      -e 's/^( *)from collections import Sequence, namedtuple$/\1from collections import namedtuple\n\1from collections.abc import Sequence/' \
      -e 's/^( *)from collections import Sequence$/\1from collections.abc import Sequence/' "$f"
  done
}

build_minkowski() {
  local v="$peers/minkowski"
  if [ -x "$v/bin/python" ] && "$v/bin/python" -c "import MinkowskiEngine" 2>/dev/null; then
    echo "MinkowskiEngine: already built in $v"; return
  fi
  local site
  if [ -x "$v/bin/python" ] && site=$("$v/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
      && [ -d "$site/MinkowskiEngine" ]; then
    patch_minkowski "$site/MinkowskiEngine"   # built earlier, only the import patch missing
    "$v/bin/python" -c "import MinkowskiEngine" 2>/dev/null && { echo "MinkowskiEngine: patched in $v"; return; }
  fi
  if ! dpkg -s libopenblas-dev >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq libopenblas-dev
  fi
  "$py" -m venv "$v"
  "$v/bin/pip" install -q torch==2.13.0 "numpy<2" wheel
  # torch asks for setuptools>=77 but ME's setup.py needs the old distutils shim; pip warns, the build works.
  "$v/bin/pip" install -q "setuptools<60" 2>&1 | grep -v "dependency conflicts\|requires setuptools" || true
  "$v/bin/pip" install -q --no-build-isolation MinkowskiEngine==0.5.4
  # 0.5.4 still imports Sequence from `collections` (removed in Python 3.10).
  site=$("$v/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  patch_minkowski "$site/MinkowskiEngine"
  "$v/bin/python" -c "import MinkowskiEngine as ME; print('MinkowskiEngine', ME.__version__, 'ok')"
}

what="${1:-all}"
case "$what" in
  spconv) build_spconv ;;
  minkowski) build_minkowski ;;
  all) build_spconv; build_minkowski ;;
  *) echo "usage: $0 [all|spconv|minkowski]" >&2; exit 2 ;;
esac
