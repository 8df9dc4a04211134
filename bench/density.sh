#!/usr/bin/env bash
# Times the density test end to end on the embedded simulated cluster and prints wall time and
# peak memory (max RSS of the whole cl2 process: client, measurements and simulator together).
#
#   bench/density.sh            # 100 nodes (the README's main command)
#   NODES=1000 bench/density.sh # 1,000 hollow nodes, 30,000 saturation pods
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${NODES:-100}
cargo build --release -p cl2 >/dev/null
out=$(mktemp -d)
start=$(date +%s.%N)
status=0
if [ -x /usr/bin/time ]; then
  /usr/bin/time -v ./target/release/cl2 --testconfig configs/density/config.yaml --nodes "$NODES" \
    --report-dir "$out/reports" >"$out/stdout" 2>"$out/stderr" || status=$?
  rss_kb=$(grep 'Maximum resident set size' "$out/stderr" | awk '{print $NF}')
else
  ./target/release/cl2 --testconfig configs/density/config.yaml --nodes "$NODES" \
    --report-dir "$out/reports" >"$out/stdout" 2>"$out/stderr" || status=$?
  rss_kb=0
fi
end=$(date +%s.%N)
cat "$out/stdout"
printf '\nbench density: nodes=%s exit=%s wall=%.1fs peak_rss=%.0fMiB\n' \
  "$NODES" "$status" "$(echo "$end - $start" | bc)" "$(echo "$rss_kb / 1024" | bc)"
echo "reports: $out/reports"
