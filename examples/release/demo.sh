#!/usr/bin/env bash
# The main job, end to end: build pipe, deliver a good release of the example service to
# staging and production, then a bad one that the staging watch catches and rolls back.
# Exits 0 only when both runs end the way they must and staging serves the good version.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

echo "== building pipe (cargo build --release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
pipe="$root/target/release/pipe"
cd "$here"
trap './scripts/stop.sh >/dev/null 2>&1 || true' EXIT
approver="${PIPE_DEMO_APPROVER:-alice}"

echo "== pipe check"
"$pipe" check

echo "== a good release: build → gate → staging → production (approved by $approver)"
"$pipe" run --approve production --approver "$approver"
good_version="$(curl -fsS http://127.0.0.1:18080/version)"
echo "staging and production now serve $good_version"

echo "== a bad release (PIPE_DEMO_BAD=1 bakes a 50% error rate into the artifact)"
set +e
PIPE_DEMO_BAD=1 "$pipe" run --approve production --approver "$approver"
code=$?
set -e
if [ "$code" -ne 1 ]; then
  echo "demo: the bad release should end with exit 1 (rolled back and verified), got $code" >&2
  exit 1
fi
serving="$(curl -fsS http://127.0.0.1:18080/version)"
if [ "$serving" != "$good_version" ]; then
  echo "demo: staging serves $serving, expected the previous stable $good_version" >&2
  exit 1
fi
echo "staging was rolled back automatically and serves $serving again"

echo "== the release ledger"
"$pipe" releases

echo "== a restore drill of staging's orders database (std/sqlite templates)"
mkdir -p data restored
rm -f data/staging.db
sqlite3 data/staging.db "CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT);
  INSERT INTO orders(item) VALUES ('book'), ('lamp'), ('desk');"
"$pipe" drill restore_orders

echo "== the drills that are due: production's has never passed"
rm -f data/production.db
sqlite3 data/production.db "CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT);
  INSERT INTO orders(item) VALUES ('book'), ('lamp');"
"$pipe" drill --due
"$pipe" drill --status

echo "== the audit log, and the evidence report built from it"
"$pipe" audit verify
"$pipe" evidence --since "$(date -u +%Y-%m-%d)" | sed -n '1,12p'
echo "demo: ok"
