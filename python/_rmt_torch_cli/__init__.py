"""The ``rmt-torch`` console script: the command line of the binary, run inside the extension.

Kept out of the ``rmt_torch`` package on purpose: importing that package imports torch (about
2 s), which the command line does not need. The extension is loaded from its file instead; it
finds libtorch through its run path into the torch package installed beside it.
"""
import ctypes
import importlib.machinery
import importlib.util
import os
import signal
import sys


def _package_directory(name, install):
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: the {name} package is not installed ({install})")
    return spec.submodule_search_locations[0]


def _extension():
    directory = _package_directory("rmt_torch", "pip install rmt-torch")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(directory, "_rmt_torch" + suffix)
        if os.path.isfile(path):
            loader = importlib.machinery.ExtensionFileLoader("rmt_torch._rmt_torch", path)
            spec = importlib.util.spec_from_file_location("rmt_torch._rmt_torch", path, loader=loader)
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
            return module
    raise SystemExit(f"error: rmt_torch's extension module is missing from {directory}")


def _load_cuda():
    """libtorch_cuda, when the installed torch has it: `import torch` would load it, and without
    it libtorch sees no GPU. A torch built for CPU only has none; the command line then runs on
    the CPU, as the binary built against such a torch does."""
    library = os.path.join(_package_directory("torch", "pip install torch==2.11.*"), "lib", "libtorch_cuda.so")
    if os.path.isfile(library):
        try:
            ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass


def main():
    # Ctrl-C ends the command as it ends the binary (Python's handler would wait for the
    # extension to return before raising KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _load_cuda()
    sys.exit(_extension().command_line(sys.argv))
