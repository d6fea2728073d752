#!/usr/bin/env bash
# Builds pyasync's compiled core under sanitizers, in a copy of the tree (the
# in-place build is left alone), and runs it:
#
#   tsan  ThreadSanitizer: scripts/sanitize_driver.py, multi-threaded fits
#         (n_jobs=4; racy, atomic, locked; dense and CSR; with and without
#         momentum; L2, elastic net and L1; the simulated engine).
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer: the
#         same driver, then the engine tests: test_bad_input and
#         test_simulated with the leak check, test_reference, test_threads
#         and test_fuzz without it (LSan's exit scan after numba's JIT and
#         the big fixtures takes many minutes).
#
# Usage: scripts/sanitize.sh [--quick] [--only tsan|asan] [--keep]
#   --quick  the CI subset: both variants on the small driver (plus
#            tests/test_bad_input.py under ASan), ~30 s; the full run ~1-2 min
#   --only   one variant
#   --keep   keep the work directory (builds and sanitizer logs)
# Exits 0 when no sanitizer reports anything, 1 on any report or failed
# check, and 0 with a SKIP message when gcc has no libtsan/libasan.
#
# The sanitizers are preloaded (LD_PRELOAD) into the ordinary, uninstrumented
# Python. Only pyasync's code is instrumented, so reports concern it; Python's
# own reports are filtered as follows, and nothing inside pyasync is:
#   - ThreadSanitizer: scripts/tsan.supp (empty of pyasync frames: a race
#     report in csrc/ or _core is a real bug).
#   - LeakSanitizer: Python does not free everything at exit, so leaks are
#     reported (log files) and then only those whose allocation stack has a
#     pyasync frame (csrc/, _core) count. LSan suppressions cannot express
#     this: a suppression matching Python's interpreter frames would match
#     every stack, pyasync's included.
#   - UndefinedBehaviorSanitizer: any "runtime error:" counts.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
QUICK=0
ONLY=""
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --only) ONLY="${2:?--only needs tsan or asan}"; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
        *) echo "sanitize.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case "$ONLY" in ""|tsan|asan) ;; *) echo "sanitize.sh: --only tsan|asan" >&2; exit 2 ;; esac

# the interpreter itself: a launcher script (pyenv shim) would run under the
# preloaded sanitizer too
PY="$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)' 2>/dev/null)" || PY=""
if [ -z "$PY" ]; then echo "sanitize.sh: no Python (${PYTHON:-python3})" >&2; exit 2; fi
CC_="${CC:-gcc}"

runtime() { # absolute path of a gcc runtime library, or nothing
    local p
    p="$("$CC_" -print-file-name="$1" 2>/dev/null)" || return 0
    [ -n "$p" ] && [ "${p#/}" != "$p" ] && [ -e "$p" ] && echo "$p"
}

if ! command -v "$CC_" >/dev/null 2>&1; then
    echo "sanitize.sh: SKIP: no C compiler ($CC_) found"
    exit 0
fi
LIBTSAN="$(runtime libtsan.so)"
LIBASAN="$(runtime libasan.so)"
LIBUBSAN="$(runtime libubsan.so)"
VARIANTS=()
if [ -z "$ONLY" ] || [ "$ONLY" = tsan ]; then
    if [ -n "$LIBTSAN" ]; then VARIANTS+=(tsan)
    else echo "sanitize.sh: SKIP tsan: $CC_ has no libtsan.so (install libtsan)"; fi
fi
if [ -z "$ONLY" ] || [ "$ONLY" = asan ]; then
    if [ -n "$LIBASAN" ] && [ -n "$LIBUBSAN" ]; then VARIANTS+=(asan)
    else echo "sanitize.sh: SKIP asan: $CC_ has no libasan.so/libubsan.so (install libasan, libubsan)"; fi
fi
if [ ${#VARIANTS[@]} -eq 0 ]; then
    echo "sanitize.sh: SKIP: no sanitizer runtime available; nothing checked"
    exit 0
fi
if ! "$PY" -c "import Cython, numpy, setuptools, scipy, sklearn" 2>/dev/null; then
    echo "sanitize.sh: needs Cython, setuptools, numpy, scipy, scikit-learn in $PY" >&2
    exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pyasync-sanitize.XXXXXX")"
cleanup() { [ "$KEEP" = 1 ] && echo "sanitize.sh: kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT

copy_tree() { # a private copy of the sources: the shared in-place build stays untouched
    local dst="$1"
    mkdir -p "$dst"
    (cd "$ROOT" && tar cf - --exclude='__pycache__' --exclude='*.so' \
        --exclude='pyasync/_core.c' setup.py pyproject.toml README.md csrc pyasync \
        tests scripts) | (cd "$dst" && tar xf -)
}

build() { # build VARIANT CFLAGS LDFLAGS
    local v="$1" src="$WORK/$1/src" t0=$SECONDS
    copy_tree "$src"
    echo "sanitize.sh: [$v] building with $2"
    if ! (cd "$src" && PYASYNC_CFLAGS="$2" PYASYNC_LDFLAGS="$3" \
            "$PY" setup.py build_ext --inplace -q >"$WORK/$v/build.log" 2>&1); then
        echo "sanitize.sh: [$v] BUILD FAILED:" >&2
        tail -40 "$WORK/$v/build.log" >&2
        return 1
    fi
    echo "sanitize.sh: [$v] built in $((SECONDS - t0)) s"
}

FAIL=0
fail() { echo "sanitize.sh: FAIL: $*" >&2; FAIL=1; }

TIMEOUT="${SANITIZE_TIMEOUT:-900}"  # seconds per sanitized process
PYTEST_ARGS=(-q -p no:cacheprovider -x -W ignore::DeprecationWarning)

run_tsan() {
    local v=tsan src="$WORK/tsan/src" logs="$WORK/tsan/logs" t0=$SECONDS
    build tsan "-fsanitize=thread -g -O1" "-fsanitize=thread" || { FAIL=1; return; }
    mkdir -p "$logs"
    local opts="halt_on_error=0 exitcode=66 history_size=4 report_signal_unsafe=0"
    opts="$opts suppressions=$ROOT/scripts/tsan.supp log_path=$logs/tsan"
    local args=()
    [ "$QUICK" = 1 ] && args+=(--quick)
    local cmd=(timeout "$TIMEOUT" env LD_PRELOAD="$LIBTSAN" TSAN_OPTIONS="$opts" PYTHONPATH="$src"
               PYASYNC_EXPECT_BUILD="$src"
               "$PY" "$src/scripts/sanitize_driver.py" "${args[@]}")
    "${cmd[@]}" </dev/null
    local rc=$?
    if grep -qs "unexpected memory mapping" "$logs"/tsan.* && command -v setarch >/dev/null; then
        # older TSan runtimes cannot map the shadow with high ASLR entropy
        echo "sanitize.sh: [tsan] retrying without address randomisation (setarch -R)"
        rm -f "$logs"/tsan.*
        setarch "$(uname -m)" -R "${cmd[@]}" </dev/null
        rc=$?
    fi
    if grep -qs "ThreadSanitizer" "$logs"/tsan.*; then
        cat "$logs"/tsan.* >&2
        fail "ThreadSanitizer reported $(cat "$logs"/tsan.* | grep -c 'WARNING: ThreadSanitizer') warning(s)"
    elif [ $rc -ne 0 ]; then
        fail "[tsan] driver exited with status $rc"
    else
        echo "sanitize.sh: [tsan] clean ($((SECONDS - t0)) s)"
    fi
}

# Leak reports (one block per leak) whose stack has a pyasync frame.
pyasync_leaks() {
    "$PY" - "$@" <<'EOF'
import re, sys
n = 0
for path in sys.argv[1:]:
    text = open(path, errors="replace").read()
    for block in re.split(r"\n(?=(?:Direct|Indirect) leak of )", text):
        if not re.match(r"(Direct|Indirect) leak of ", block):
            continue
        block = block.split("\n\n")[0]
        # pyasync's own frames: its C sources or its extension module (not
        # any module named _core: scipy has several)
        if re.search(r"csrc/|pyasync/_core", block):
            n += 1
            print(block, file=sys.stderr)
print(n)
EOF
}

# asan_pytest NAME DETECT_LEAKS TEST...: pytest in the sanitized copy; the
# verdict goes to a file, as the process status is LeakSanitizer's (23)
asan_pytest() {
    local name="$1" leaks="$2" src="$WORK/asan/src" t0=$SECONDS
    shift 2
    echo "sanitize.sh: [asan] pytest $* (leak check: $([ "$leaks" = 1 ] && echo on || echo off))"
    (cd "$src" && timeout "$TIMEOUT" env "${env_[@]}" \
        ASAN_OPTIONS="$asan_opts:detect_leaks=$leaks" "$PY" -c '
import os, sys, pytest
import pyasync._core
core = os.path.realpath(pyasync._core.__file__)
if not core.startswith(os.path.realpath(os.getcwd())):
    sys.exit(f"imported {core}, not the sanitizer build")
rc = pytest.main(sys.argv[2:])
open(sys.argv[1], "w").write(str(int(rc)))
' "$WORK/asan/$name.rc" "${PYTEST_ARGS[@]}" "$@" </dev/null)
    local rc_proc=$? rc_tests
    rc_tests="$(cat "$WORK/asan/$name.rc" 2>/dev/null || echo none)"
    echo "sanitize.sh: [asan] pytest done in $((SECONDS - t0)) s"
    case "$rc_proc" in 0|23) ;; *) fail "[asan] test process exited with status $rc_proc ($*)"; return 1 ;; esac
    [ "$rc_tests" = 0 ] || { fail "[asan] tests failed (pytest status $rc_tests): $*"; return 1; }
}

run_asan() {
    local v=asan src="$WORK/asan/src" logs="$WORK/asan/logs" t0=$SECONDS
    build asan "-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1" \
        "-fsanitize=address,undefined" || { FAIL=1; return; }
    mkdir -p "$logs"
    local asan_opts="halt_on_error=1:log_path=$logs/asan:detect_stack_use_after_return=1"
    local env_=(LD_PRELOAD="$LIBASAN" PYTHONPATH="$src" PYASYNC_EXPECT_BUILD="$src"
        ASAN_OPTIONS="$asan_opts:detect_leaks=1"
        LSAN_OPTIONS="report_objects=0:max_leaks=0:exitcode=23"
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0:log_path=$logs/ubsan")
    local args=()
    [ "$QUICK" = 1 ] && args+=(--quick)
    # the driver with PYTHONMALLOC=malloc: every Python object is a malloc
    # block, so LSan also sees objects that pyasync's Cython code leaks
    timeout "$TIMEOUT" env "${env_[@]}" PYTHONMALLOC=malloc \
        "$PY" "$src/scripts/sanitize_driver.py" "${args[@]}" </dev/null
    local rc_driver=$?
    # The tests, in two processes: with the leak check (no numba there), and
    # without it for the heavy ones (LeakSanitizer's exit scan of a process
    # that ran numba's JIT and the big threads fixtures takes many minutes;
    # ASan and UBSan still check them)
    local leak_tests=(tests/test_bad_input.py) plain_tests=()
    if [ "$QUICK" = 0 ]; then
        for t in tests/test_simulated.py; do
            [ -e "$src/$t" ] && leak_tests+=("$t")
        done
        for t in tests/test_reference.py tests/test_threads.py tests/test_fuzz.py; do
            [ -e "$src/$t" ] && plain_tests+=("$t")
        done
    fi
    local bad=0
    asan_pytest leaks 1 "${leak_tests[@]}" || bad=1
    [ ${#plain_tests[@]} -gt 0 ] && { asan_pytest noleaks 0 "${plain_tests[@]}" || bad=1; }
    if grep -qs "ERROR: AddressSanitizer" "$logs"/asan.*; then
        grep -s -A40 "ERROR: AddressSanitizer" "$logs"/asan.* >&2
        fail "AddressSanitizer reported an error"; bad=1
    fi
    if grep -qs "runtime error:" "$logs"/ubsan.* "$logs"/asan.*; then
        grep -sh -A12 "runtime error:" "$logs"/ubsan.* "$logs"/asan.* >&2
        fail "UndefinedBehaviorSanitizer reported $(cat "$logs"/ubsan.* "$logs"/asan.* 2>/dev/null | grep -c 'runtime error:') error(s)"; bad=1
    fi
    local leaks total
    leaks="$(pyasync_leaks "$logs"/asan.* 2>"$WORK/asan/pyasync_leaks.txt")"
    total="$(cat "$logs"/asan.* 2>/dev/null | grep -cE '^(Direct|Indirect) leak of')"
    if [ "${leaks:-0}" != 0 ]; then
        cat "$WORK/asan/pyasync_leaks.txt" >&2
        fail "LeakSanitizer: $leaks leak(s) allocated by pyasync"; bad=1
    fi
    # exit status 23: LeakSanitizer found leaks (sorted out above)
    case "$rc_driver" in 0|23) ;; *) fail "[asan] driver exited with status $rc_driver"; bad=1 ;; esac
    [ $bad = 0 ] && echo "sanitize.sh: [asan] clean: no ASan/UBSan report, no pyasync leak" \
        "($total leak report(s) from Python itself ignored; $((SECONDS - t0)) s)"
}

for v in "${VARIANTS[@]}"; do
    "run_$v"
done
if [ "$FAIL" != 0 ]; then
    echo "sanitize.sh: sanitizer checks FAILED" >&2
    exit 1
fi
echo "sanitize.sh: all sanitizer checks passed (${VARIANTS[*]})"
