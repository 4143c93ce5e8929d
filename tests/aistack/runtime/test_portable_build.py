"""The installed llama.cpp is the portable build the Makefile makes: no AMX kernels, no AVX-512.

llama.cpp's default build (-march=native) turns on its AMX matrix kernels on CPUs that have AMX,
and those crash (SIGSEGV in ggml_backend_amx_mul_mat). These checks read the library itself, so
they fail on any machine where a native build slipped in, AMX or not: a native build on an
AVX-512 machine reports AVX512 and exports the AMX backend where AMX is present.
"""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

import llama_cpp


def _libraries() -> list[Path]:
    folder = Path(llama_cpp.__file__).parent / "lib"
    return sorted(p for p in folder.glob("*.so") if p.is_file())


def test_system_info_reports_no_amx_and_no_avx512():
    info = llama_cpp.llama_print_system_info().decode()
    if platform.machine() == "x86_64":
        assert "AVX2 = 1" in info, info  # the x86-64-v3 baseline is there
    for feature in ("AMX_INT8 = 1", "AMX_BF16 = 1", "AVX512 = 1", "AVX512_VNNI = 1", "AVX512_BF16 = 1"):
        assert feature not in info, f"{feature}: llama-cpp-python was not built by the Makefile's portable flags ({info})"


def test_no_library_exports_the_amx_backend():
    libraries = _libraries()
    assert any(p.name.startswith("libggml-cpu") for p in libraries), libraries
    for path in libraries:
        library = ctypes.CDLL(str(path))
        for symbol in ("ggml_backend_amx_mul_mat", "ggml_backend_amx_buffer_type"):
            assert not hasattr(library, symbol), f"{path.name} exports {symbol}: an AMX build"


def test_the_cpu_backend_says_it_was_compiled_without_amx():
    cpu = ctypes.CDLL(str(next(p for p in _libraries() if p.name.startswith("libggml-cpu"))))
    for probe in ("ggml_cpu_has_amx_int8", "ggml_cpu_has_avx512"):
        function = getattr(cpu, probe)
        function.restype = ctypes.c_int
        assert function() == 0, f"{probe}() = 1"
