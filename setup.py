"""Build hook: compile the simulator's hot modules with mypyc for a regular install (pure Python otherwise).

`pip install .` (a wheel) compiles `COMPILED` into C extensions, which run the same code about twice as fast;
without a C compiler the extensions are skipped and the pure-Python modules run. Editable installs
(`pip install -e .`, for development) are never compiled, so an edited module takes effect at once.
Set FLEETWISE_PURE_PYTHON=1 to build a pure-Python wheel.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

COMPILED = [  # the same modules as fleetwise.native.HOT_MODULES
    "src/fleetwise/perf/step_time.py",
    "src/fleetwise/sim/batching.py",
    "src/fleetwise/sim/block_manager.py",
    "src/fleetwise/sim/decode_batch.py",
    "src/fleetwise/sim/replica.py",
    "src/fleetwise/sim/scheduler.py",
]
BUILDS = {"bdist_wheel", "build", "build_ext", "install"}  # commands that produce importable modules


def _extensions() -> list[object]:
    if os.environ.get("FLEETWISE_PURE_PYTHON") == "1" or "editable_wheel" in sys.argv or BUILDS.isdisjoint(sys.argv):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    extensions = mypycify(COMPILED, opt_level="3")
    for extension in extensions:
        extension.optional = True  # no C compiler: the pure-Python modules run instead
    return list(extensions)


setup(ext_modules=_extensions())
