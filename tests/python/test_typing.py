"""The package is typed (py.typed, annotations, _mallorn.pyi): mypy --strict accepts it and its
correct use, and flags misuse. Uses Debian's mypy command on the package under test."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import mallorn

USE = textwrap.dedent("""
    from pathlib import Path
    from typing import Optional
    import mallorn

    stats: mallorn.PatchStats = mallorn.create_patch("a", Path("b"), "c", compression_level=9, neural=True)
    ratio: float = stats.compression_ratio
    result = mallorn.apply_patch(b"old", "p", Path("o"), public_key=None)
    ok: bool = result.is_valid()
    created: Optional[int] = mallorn.patch_info("p").created_at
    public_key, private_key = mallorn.generate_keypair()
    mallorn.sign_patch("p", private_key, "o")
    short: str = mallorn.fingerprint("m").short()
    same: bool = mallorn.compare_fingerprints("a", "b")
    try:
        pass
    except mallorn.SourceHashMismatch as e:
        code: str = e.code
""")
MISUSE = USE + textwrap.dedent("""
    wrong: int = mallorn.create_patch("a", "b", "c")
    mallorn.fingerprint(3)
""")


def mypy(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("mypy")
    assert exe, "mypy not found: install Debian's mypy (scripts/deps.sh)"
    package_root = str(Path(mallorn.__file__).parent.parent)
    return subprocess.run([exe, "--strict", "--no-incremental", "--python-version", "3.11", *args], cwd=cwd,
                          env={"MYPYPATH": package_root, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)


def test_package_and_correct_use_pass_mypy_strict(tmp_path):
    (tmp_path / "use.py").write_text(USE)
    package = mypy("-p", "mallorn", cwd=tmp_path)
    assert package.returncode == 0, package.stdout
    use = mypy("use.py", cwd=tmp_path)
    assert use.returncode == 0, use.stdout


def test_mypy_flags_misuse(tmp_path):
    (tmp_path / "misuse.py").write_text(MISUSE)
    out = mypy("misuse.py", cwd=tmp_path).stdout
    assert 'variable has type "int"' in out and 'Argument 1 to "fingerprint"' in out, out
