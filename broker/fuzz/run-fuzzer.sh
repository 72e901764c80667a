#!/bin/sh
# run-fuzzer.sh FUZZER SEED_DIR SECONDS
# New inputs go to a scratch directory so the committed seed corpus stays
# as it is; a crashing input is kept beside the fuzzer binary.
set -eu
fuzzer=$1 seeds=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Not exec: the trap must still remove the scratch corpus afterwards.
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
	-print_final_stats=1 -artifact_prefix="$(dirname "$fuzzer")/" "$work" "$seeds"
