#!/bin/sh
# metric.sh URL NAME — the shared body of error_rate.sh and p95.sh: a little traffic, then the
# value of NAME from URL/metrics on stdout (nothing else, so pipe can read it as a literal).
set -eu
url=${1%/}
name=$2
answered=0
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  # No -f: a 500 is an answer (and counts in the error rate); only no answer at all is not.
  if curl -sS -o /dev/null --max-time 2 "$url/" 2>/dev/null; then
    answered=$((answered + 1))
  fi
done
if [ "$answered" -eq 0 ]; then
  echo "$name: no answer from $url" >&2
  exit 1
fi
value=$(curl -fsS --max-time 2 "$url/metrics" | awk -v name="$name" '$1 == name { print $2 }')
if [ -z "$value" ]; then
  echo "$name: not found in $url/metrics" >&2
  exit 1
fi
echo "$value"
