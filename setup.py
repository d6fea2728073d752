"""Builds the compiled core: C sources in csrc/ behind one Cython module."""
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

# -march=native suits a build from source on the machine that runs it;
# PYASYNC_MARCH="" turns it off (portable wheels), or names another target.
march = os.environ.get("PYASYNC_MARCH", "native")
compile_args = ["-O3", "-std=c11", "-fopenmp-simd", "-pthread", "-fno-math-errno"]
if march:
    compile_args.append(f"-march={march}")
compile_args += os.environ.get("PYASYNC_CFLAGS", "").split()
link_args = ["-pthread"] + os.environ.get("PYASYNC_LDFLAGS", "").split()

core = Extension(
    "pyasync._core",
    sources=["pyasync/_core.pyx", "csrc/linear.c", "csrc/engine_threads.c",
             "csrc/engine_sim.c", "csrc/surrogate.c", "csrc/growth.c"],
    include_dirs=["csrc", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    depends=[os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".h")],
)

mlp = Extension(
    "pyasync._mlp",
    sources=["pyasync/_mlp.pyx", "csrc/mlp_kernel.c", "csrc/engine_mlp.c"],
    include_dirs=["csrc", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    depends=[os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".h")],
)

if sys.platform == "win32":
    raise SystemExit("pyasync needs POSIX threads (Linux or macOS)")

setup(ext_modules=cythonize([core, mlp], language_level=3))
