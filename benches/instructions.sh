#!/usr/bin/env bash
# The logger's own work per frame, counted rather than timed: user-space instructions per frame
# (valgrind's cachegrind, no cache simulation) in the throughput benchmark's shapes, for each
# build given. Counts do not move with the machine's load, so builds compare in any session;
# kernel work (the file's writes, the socket's reads) is not in them: see `throughput` for CPU
# time, and docs/benchmarks.md for both.
#
#   bash benches/instructions.sh [BUILD...]        # default: target/release/kube-event-logger
#   SHAPES="frame 64KiB trickle" FRAMES="10000 40000"
#
# Each shape runs twice, with the two frame counts of FRAMES (a tenth of them in the trickle);
# the figure is the difference of the two runs' counts over the difference of frames, so start-up
# and the first LIST fall out. Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
read -r -a shapes <<<"${SHAPES:-frame 64KiB trickle}"
read -r small large <<<"${FRAMES:-10000 40000}"
builds=("$@")
[ ${#builds[@]} -gt 0 ] || { cargo build --release --quiet; builds=(target/release/kube-event-logger); }
cargo bench --bench throughput --no-run --quiet 2>/dev/null
harness=$(ls -t target/release/deps/throughput-* | grep -v '\.d$' | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/wrap" <<EOF
#!/bin/sh
exec valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=$work/out.\$\$ "\$CG_BUILD" "\$@"
EOF
chmod +x "$work/wrap"
awk -F': *' '/^model name/ && !n {n=$2} /^cpu family/ && !f {f=$2} /^model\t/ && !m {m=$2} /^cache size/ && !c {c=$2}
  END {print "CPU: " n ", family " f " model " m ", cache " c}' /proc/cpuinfo
# Instructions of the logger run that streamed the shape (the largest of the harness's runs).
count() {
  rm -f "$work"/out.*
  CG_BUILD=$1 BENCH_LOGGER="$work/wrap" BENCH_SHAPES=$2 BENCH_ROUNDS=1 BENCH_FRAMES=$3 \
    BENCH_TRICKLE_FRAMES=$(($3 / 10)) "$harness" --bench >/dev/null 2>&1
  grep -h '^summary' "$work"/out.* | awk '{print $2}' | sort -n | tail -1
}
echo "| build | shape | instructions per frame |"
echo "|---|---|---|"
for build in "${builds[@]}"; do
  for shape in "${shapes[@]}"; do
    a=$(count "$build" "$shape" "$small")
    b=$(count "$build" "$shape" "$large")
    frames=$((large - small))
    [ "$shape" = trickle ] && frames=$((frames / 10))
    echo "| $build | $shape | $(((b - a) / frames)) |"
  done
done
