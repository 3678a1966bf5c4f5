#!/usr/bin/env bash
# Proves that larcv3 files written by lartpcnet read back with the official larcv3 library.
# Builds larcv==3.5.1 from source (about 7 minutes) into benchmarks/.peers/larcv3 (git-ignored),
# then runs scripts/check_larcv3.py there. Not part of `make test`: run `make check-larcv3`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${LARTPCNET_PEERS:-$root/benchmarks/.peers}/larcv3"
if ! "$venv/bin/python" -c "import larcv" 2>/dev/null; then
  if ! dpkg -s libhdf5-dev >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq libhdf5-dev
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "numpy<2" h5py cmake scikit-build
  CMAKE_POLICY_VERSION_MINIMUM=3.5 "$venv/bin/pip" install -q larcv==3.5.1
fi
"$root/.venv/bin/python" "$root/scripts/check_larcv3.py" write "${1:-$root/out/larcv3_check}"
"$venv/bin/python" "$root/scripts/check_larcv3.py" read "${1:-$root/out/larcv3_check}"
