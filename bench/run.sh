#!/usr/bin/env bash
# make bench: every figure is a ratio against a baseline measured in the same run on the
# same data, alternated (README, "Benchmarks"). Installs what it compares against.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
need=()
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v zstd >/dev/null || need+=(zstd)
command -v mdb_copy >/dev/null || need+=(lmdb-utils)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -c "import lmdb" 2>/dev/null || python3 -m pip install -q lmdb >/dev/null 2>&1 || echo "note: python lmdb unavailable; the mdb_copy row will be skipped"
# The S3 rows compare against `aws s3 cp` (awscli from PyPI, into make setup's virtualenv).
if [ -x .build-venv/bin/pip ] && [ ! -x .build-venv/bin/aws ]; then
  .build-venv/bin/pip install -q awscli >/dev/null 2>&1 || echo "note: awscli unavailable; the aws s3 cp row will be skipped"
fi
gcc -O2 -I Sources/CCRC32C/include bench/crcbench.c Sources/CCRC32C/crc32c.c -o bench/.crcbench -lpthread
exec python3 bench/run.py "${1:-.build/release/jetbackup}"
