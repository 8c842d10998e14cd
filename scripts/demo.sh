#!/usr/bin/env bash
# The main job end to end on a demo instance under ./demo, as it runs in production: a process
# owns the instance and keeps writing (here `jetbackup serve` plus loads that run through it),
# while cron-style commands take a full and an incremental backup into a repository through the
# owner; then list, status, verify, and a restore whose digest is compared with the source's.
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

# The owner: serves backups and commands on instance/control.sock until SIGTERM.
printf '\n\033[1m$ %s serve &\033[0m\n' "$J"
"$J" serve > serve.out 2>&1 &
OWNER=$!
trap 'kill -TERM $OWNER 2>/dev/null; wait $OWNER 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^serving' serve.out 2>/dev/null && break; sleep 0.1; done
cat serve.out

step "$J" db create audit
step "$J" put audit first-entry "demo started"
step "$J" info
step "$J" repo init backups
step "$J" backup --repo backups --compress-logs
# A writer keeps committing through the owner while the incremental runs.
step "$J" load app --records 50000 --seed 2 --update-ratio 0.5
step "$J" put audit second-entry "after the full backup"
step "$J" backup --repo backups --incremental --compress-logs
step "$J" list backups
step "$J" status backups --max-age 1h
step "$J" verify --repo backups
step "$J" restore --repo backups --to restored
SRC=$("$J" digest | cut -d' ' -f1)
DST=$("$J" -i "$PWD/restored" digest | cut -d' ' -f1)

printf '\n\033[1m$ kill -TERM %s   # the owner shuts down cleanly\033[0m\n' "$OWNER"
kill -TERM $OWNER
wait $OWNER
trap - EXIT

printf '\nsource   digest: %s\nrestored digest: %s\n' "$SRC" "$DST"
if [ "$SRC" = "$DST" ]; then echo "OK: the restored instance holds exactly the source's content"; else echo "MISMATCH"; exit 1; fi
