#!/usr/bin/env bash
# Thread scaling on a many-core machine, in one run: builds the extension in
# place, then times the linear engine, the MLP engine and the staleness the
# threads actually produce, at each thread count.
#
#     bash bench/thread_scaling.sh [THREADS] [ROWS] [OUTDIR]
#     bash bench/thread_scaling.sh 1,2,4,8,16 1000000 scaling
set -euo pipefail
threads=${1:-1,2,4,8,16}
rows=${2:-1000000}
out=${3:-scaling}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# the in-place build, not an installed copy
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

echo "== machine: $(nproc) cores; $($python --version)"
grep -m1 "model name" /proc/cpuinfo || true
$python setup.py -q build_ext --inplace -j "$(nproc)" >"$out/build.log" 2>&1 \
    || { tail -30 "$out/build.log"; exit 1; }
$python -c "import pyasync; print('pyasync from', pyasync.__file__)"

echo "== linear engine: time per epoch against SGDClassifier"
$python bench/bench_foundation.py --rows "$rows" --repeats 5 --epochs 3 \
    --threads "$threads" --json "$out/foundation.json" | tee "$out/foundation.txt"

echo "== MLP engine: time per epoch against MLPClassifier"
$python bench/bench_mlp.py --repeats 3 --threads "$threads" | tee "$out/mlp.txt"

echo "== staleness the threads produce: fitted implicit momentum against 1 - 1/M"
$python - "$threads" <<'EOF' | tee "$out/staleness.txt"
import sys
from pyasync.reproduce import implicit_momentum_table
threads = tuple(int(t) for t in sys.argv[1].split(","))
for engine, m, theory, measured in implicit_momentum_table(workers=(), threads=threads):
    print(f"{engine:<22} threads={m:<3} 1-1/M={theory:.3f} measured={measured:.3f}")
EOF
