#!/usr/bin/env bash
# Regenerates Fixtures/: a small instance and a backup set (full + 2 incrementals, the second
# compressed), each with its expected content digest. Tests restore and open copies of
# them, so a change that cannot read last month's formats fails a test.
# Run only when the on-disk format changes on purpose (and say so in the commit).
# Fixtures/instance-format3 is kept as it is: an instance written with log format 3, which
# this version must refuse with a clear error (FixtureTests). Fixtures/instance-format4 and
# backupset-format4 (and their digests) are kept as they are too: written with log format 4
# and manifest format 1, which this version must still read.
set -euo pipefail
J=${1:-.build/debug/jetbackup}
J=$(cd "$(dirname "$J")" && pwd)/$(basename "$J")
cd "$(dirname "$0")/.."
rm -rf Fixtures/instance Fixtures/backupset Fixtures/instance.digest Fixtures/backupset.digest
mkdir -p Fixtures
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$J" init "$W/src" --page-size 4KiB --log-file-size 64KiB >/dev/null
export JETBACKUP_INSTANCE=$W/src
"$J" load app --records 800 --value-size 60 --batch 100 --update-ratio 0.2 --seed 7 >/dev/null
"$J" db create notes >/dev/null
"$J" put notes hello "fixture instance" >/dev/null
"$J" put notes big - < <(head -c 20000 /dev/zero | tr '\0' 'x') >/dev/null
mkdir "$W/set"
"$J" backup "$W/set" >/dev/null
"$J" load app --records 300 --value-size 60 --batch 100 --seed 8 >/dev/null
"$J" backup "$W/set" --incremental >/dev/null
"$J" delete notes hello >/dev/null
"$J" load app --records 200 --value-size 60 --batch 50 --seed 9 --update-ratio 0.5 >/dev/null
"$J" backup "$W/set" --incremental --compress-logs >/dev/null
"$J" digest | cut -d' ' -f1 > Fixtures/backupset.digest
cp -r "$W/set" Fixtures/backupset
# The instance fixture: the source after a few more commits, closed cleanly.
"$J" load app --records 50 --value-size 60 --seed 10 >/dev/null
"$J" digest | cut -d' ' -f1 > Fixtures/instance.digest
cp -r "$W/src" Fixtures/instance
rm -f Fixtures/instance/LOCK
echo "fixtures written: $(du -sh Fixtures | cut -f1)"
