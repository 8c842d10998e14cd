#!/usr/bin/env bash
# The main job end to end on a demo instance under ./demo:
# init, load, info/logs/check, full backup, more load, incremental backup, show, verify,
# restore into a new instance, and both digests side by side.
set -euo pipefail
J=${1:-.build/release/jetbackup}
J=$(cd "$(dirname "$J")" && pwd)/$(basename "$J")
rm -rf demo
mkdir -p demo
cd demo
export JETBACKUP_INSTANCE=$PWD/instance

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$J" init instance --log-file-size 1MiB
step "$J" load app --records 200000 --value-size 100 --batch 1000 --update-ratio 0.1
step "$J" db create audit
step "$J" put audit first-entry "demo started"
step "$J" info
step "$J" logs
step "$J" check
mkdir backups
step "$J" backup backups --compress-logs
step "$J" load app --records 50000 --seed 2 --update-ratio 0.5
step "$J" put audit second-entry "after the full backup"
step "$J" backup backups --incremental --compress-logs
step "$J" show backups
step "$J" verify backups
step "$J" restore backups --to restored
SRC=$("$J" digest | cut -d' ' -f1)
DST=$("$J" -i "$PWD/restored" digest | cut -d' ' -f1)
printf '\nsource   digest: %s\nrestored digest: %s\n' "$SRC" "$DST"
if [ "$SRC" = "$DST" ]; then echo "OK: the restored instance holds exactly the source's content"; else echo "MISMATCH"; exit 1; fi
