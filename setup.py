"""Declares the C extension only; all metadata lives in pyproject.toml.

Environment switches (off unless set to 1):
  NETNOTIFY_WERROR=1    warnings are errors (-Werror, /WX)
  NETNOTIFY_SANITIZE=1  ASan + UBSan build (gcc/clang only)
"""

import os
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

COMMON_SOURCES = ["csrc/nn_module.c", "csrc/nn_rows.c", "csrc/nn_core.c", "csrc/nn_util.c"]
PLATFORM_SOURCES = {
    "linux": ["csrc/nn_linux.c", "csrc/nn_netlink.c", "csrc/nn_map.c", "csrc/nn_bell.c", "csrc/nn_sink.c"],
    "win32": ["csrc/nn_windows.c"],
}
# Windows links nothing beyond the defaults: iphlpapi is loaded at run time, so a missing export is a Python
# error instead of a process that cannot load the module.
PLATFORM_LIBRARIES: dict[str, list[str]] = {}
PLATFORM_MACROS = {"win32": [("_WIN32_WINNT", "0x0A00")]}  # Windows 10

GCC_FLAGS = [
    "-std=c11",
    "-D_GNU_SOURCE",
    "-Wall",
    "-Wextra",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wno-missing-field-initializers",
    "-Wno-cast-function-type",
]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]

WERROR = os.environ.get("NETNOTIFY_WERROR") == "1"
SANITIZE = os.environ.get("NETNOTIFY_SANITIZE") == "1"
# setuptools refuses the Limited API on free-threaded builds; they get the full API.
LIMITED_API = not sysconfig.get_config_var("Py_GIL_DISABLED")


def platform_key() -> str:
    return "linux" if sys.platform.startswith("linux") else sys.platform


class BuildExt(build_ext):
    """Adds warning and sanitizer flags for the compiler actually in use."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "msvc":
            # C11 mode; C4152 (function pointer to void *) is how every PyType_Slot is written.
            compile_args = ["/W4", "/std:c11", "/wd4152"] + (["/WX"] if WERROR else [])
            link_args: list[str] = []
        else:
            compile_args = GCC_FLAGS + (["-Werror"] if WERROR else [])
            link_args = []
            if SANITIZE:
                compile_args += SANITIZE_FLAGS
                link_args += SANITIZE_FLAGS
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + list(ext.extra_compile_args or [])
            ext.extra_link_args = link_args + list(ext.extra_link_args or [])
        # An extension built earlier with other flags (a sanitizer build, say) looks up to date to
        # setuptools, which compares only timestamps: rebuild whenever the flags change.
        flags = " ".join([*compile_args, "--link", *link_args])
        stamp = Path(self.build_temp, "netnotify-flags.txt")
        if not stamp.exists() or stamp.read_text(encoding="utf-8") != flags:
            self.force = self.compiler.force = True
        super().build_extensions()
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(flags, encoding="utf-8")


extension = Extension(
    "netnotify._netnotify",
    sources=COMMON_SOURCES + PLATFORM_SOURCES.get(platform_key(), []),
    include_dirs=["csrc"],
    libraries=PLATFORM_LIBRARIES.get(platform_key(), []),
    define_macros=([("Py_LIMITED_API", "0x030B0000")] if LIMITED_API else []) + PLATFORM_MACROS.get(platform_key(), []),
    py_limited_api=LIMITED_API,
)

setup(
    ext_modules=[extension],
    cmdclass={"build_ext": BuildExt},
    options={"bdist_wheel": {"py_limited_api": "cp311"}} if LIMITED_API else {},
)
