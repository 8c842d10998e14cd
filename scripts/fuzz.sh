#!/usr/bin/env bash
# make fuzz: build the libFuzzer harnesses (-sanitize=fuzzer,address) and run each target for
# FUZZ_SECONDS (default 60), seeded from Fixtures/. A crash leaves its input in
# Fuzz/crashes/TARGET/; turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
(cd Fuzz && swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -g --scratch-path ../.build-fuzz 2>&1 | tail -3)
BIN=.build-fuzz/debug/jetfuzz
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
seed() { # target, files...
  local t=$1; shift; mkdir -p "$W/$t"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$W/$t/$(basename "$f")-$RANDOM"; done
}
seed log Fixtures/instance/edb*.log Fixtures/backupset/edb*.log Fixtures/instance-format4/edb*.log Fixtures/backupset-format4/edb*.log
seed page Fixtures/instance/app.edb
seed header Fixtures/instance/notes.edb
seed checkpoint Fixtures/instance/edb.chk
seed doublewrite Fixtures/instance/edb.dw
seed manifest Fixtures/backupset/MANIFEST.json Fixtures/backupset-format4/MANIFEST.json
mkdir -p "$W/size"; for s in 4096 64KiB 1MiB 2GiB 7t; do printf '%s' "$s" > "$W/size/$s"; done
# Page-sized seeds from the database files.
for f in Fixtures/instance/*.edb; do split -b 4096 -a 3 "$f" "$W/page/$(basename "$f")-"; done
# Control messages (frame bodies): a greeting, a backup request, a command.
mkdir -p "$W/control"
printf '\001\001\000\000\000\052\000\000\000' > "$W/control/hello"
printf '\013\003\000\000\000app\000\000\000\000\000\000\000\000\000\000\020\000' > "$W/control/read"
printf '\024\001\000\000\000\003\000\000\000get\001\000\000\000/\000\000\000\000\000' > "$W/control/command"
mkdir -p "$W/tree"; cp "$W"/page/app.edb-a* "$W/tree/" 2>/dev/null || true
for t in log page tree header checkpoint manifest size doublewrite control; do
  mkdir -p "Fuzz/crashes/$t"
  echo "== $t (${SECONDS_EACH}s)"
  JETFUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=0 "$BIN" "$W/$t" -max_total_time="$SECONDS_EACH" -max_len=1100000 \
    -artifact_prefix="Fuzz/crashes/$t/" -print_final_stats=1 2>&1 | grep -E "stat::number_of_executed_units|cov:|Done|ERROR|SUMMARY" | tail -4
done
