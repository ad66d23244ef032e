"""Importing the C accelerators from a sanitizer build (`make sanitize`, docs/performance.md) instead of the
in-place build: a meta path finder that maps each extension's module name to its file under the directory
named by $GENAI_METER_SANITIZED. Used as a pytest plugin (`-p tests.support.sanitized`) and by
`tests.support.fuzz_accelerators`; it fails loudly when a module is missing there or was imported before.

`python -m tests.support.sanitized DIR` checks that DIR holds all five extensions (setup.py builds them
`optional=True`, so a failed sanitizer build would otherwise go unnoticed).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

SANITIZED_ENV = "GENAI_METER_SANITIZED"
EXTENSIONS = ("genai_meter.collector_processor.receiver._extract",
              "genai_meter.collector_processor.receiver._tally_params",
              "genai_meter.exporters._group_add",
              "genai_meter.collector_processor.metering._tally",
              "genai_meter.reports.render._call_csv")

# packages whose native library the sanitizer runtime refuses to load (the process aborts instead)
UNLOADABLE = {"chdb": "its library is opened with RTLD_DEEPBIND"}


def extension_file(root: Path, name: str) -> Path:
    """The built file of extension `name` under `root` (setup.py build_ext --build-lib root)."""
    folder = root.joinpath(*name.split(".")[:-1])
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = folder / (name.rsplit(".", 1)[1] + suffix)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{name}: not built under {root} (the sanitizer build failed: run it without -q)")


class SanitizedFinder(importlib.abc.MetaPathFinder):
    """Finds the five extensions under `root`; everything else the usual way."""

    def __init__(self, root: Path) -> None:
        self.files = {name: extension_file(root, name) for name in EXTENSIONS}

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        why = UNLOADABLE.get(fullname.split(".")[0])
        if why:  # as if not installed: `pytest.importorskip` skips the tests that need it
            raise ModuleNotFoundError(f"{fullname} cannot load beside the sanitizer runtime ({why})", name=fullname)
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def install(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Put the finder first on sys.meta_path (root default: $GENAI_METER_SANITIZED); returns the files."""
    chosen = root or os.environ.get(SANITIZED_ENV)
    if not chosen:
        raise RuntimeError(f"${SANITIZED_ENV} names no directory of sanitizer-built extensions")
    already = [name for name in EXTENSIONS if name in sys.modules]
    if already:
        raise RuntimeError(f"imported before the sanitizer build could be put first: {', '.join(already)}")
    finder = SanitizedFinder(Path(chosen))
    sys.meta_path.insert(0, finder)
    return [str(f) for f in finder.files.values()]


def loaded_files() -> list[str]:
    """The file each extension was imported from (all five imported here); with $GENAI_METER_SANITIZED set,
    RuntimeError unless each is the sanitizer build's."""
    files = {name: str(Path(str(__import__(name, fromlist=["_"]).__file__)).resolve()) for name in EXTENSIONS}
    chosen = os.environ.get(SANITIZED_ENV)
    if chosen:
        root = str(Path(chosen).resolve())
        wrong = [name for name, file in files.items() if not file.startswith(root)]
        if wrong:
            raise RuntimeError(f"not imported from the sanitizer build: {', '.join(wrong)}")
    return list(files.values())


if os.environ.get(SANITIZED_ENV) and not any(isinstance(f, SanitizedFinder) for f in sys.meta_path):
    install()  # as a pytest plugin (-p tests.support.sanitized): before any test module imports genai_meter


def pytest_configure() -> None:
    """(pytest plugin) Fail the run unless each extension is imported from the sanitizer build."""
    loaded_files()


def pytest_report_header() -> list[str]:
    """(pytest plugin) Where each extension was imported from: the sanitizer build, or the run fails."""
    return [f"extension: {file}" for file in loaded_files()]


if __name__ == "__main__":
    for line in (extension_file(Path(sys.argv[1]), name) for name in EXTENSIONS):
        print(f"sanitizer build: {line}")
