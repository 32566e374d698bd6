"""`pip install --no-build-isolation ./python` into a fresh venv, then the installed package works.

Runs as its own ctest entry (python.pip_install): it compiles core, formats and the extension
again through the package's build backend. MALLORN_PY_BUILD_DIR keeps that CMake build between
runs (ctest points it into the build directory).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import REPO, TFLITE_PAIR, pair_files

CHECK = textwrap.dedent("""
    import importlib.metadata, json, sys
    from pathlib import Path
    import mallorn
    old, new, work = map(Path, sys.argv[1:4])
    stats = mallorn.create_patch(old, new, work / "p.tflp", compression_level=9)
    result = mallorn.apply_patch(old.read_bytes(), work / "p.tflp", work / "out.tflite")
    print(json.dumps({
        "file": mallorn.__file__,
        "version": importlib.metadata.version("mallorn"),
        "package_version": mallorn.__version__,
        "typed": (Path(mallorn.__file__).parent / "py.typed").is_file(),
        "stubs": (Path(mallorn.__file__).parent / "_mallorn.pyi").is_file(),
        "valid": result.is_valid(),
        "identical": (work / "out.tflite").read_bytes() == new.read_bytes(),
        "patch_size": stats.patch_size,
    }))
""")


def test_pip_install_into_a_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only the installed copy may load
    env.setdefault("MALLORN_PY_BUILD_DIR", str(tmp_path / "cmake-build"))
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-cache-dir",
         str(REPO / "python")],
        env=env, cwd=tmp_path, capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "Successfully installed mallorn-0.1.0" in install.stdout

    old, new = pair_files(TFLITE_PAIR)
    done = subprocess.run([str(python), "-c", CHECK, str(old), str(new), str(tmp_path)], env=env, cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["file"].startswith(str(venv)), report["file"]
    assert report["version"] == report["package_version"] == "0.1.0"
    assert report["typed"] and report["stubs"] and report["valid"] and report["identical"]
    assert report["patch_size"] == (tmp_path / "p.tflp").stat().st_size
