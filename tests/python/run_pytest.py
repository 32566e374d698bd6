"""Runs pytest with the interpreter the extension was built for (ctest calls this).

When that interpreter has no pytest of its own (a pyenv or other non-Debian python3 first on
PATH) and is the same minor version as Debian's python3, Debian's python3-pytest is used: it is
pure Python. The directory is appended, so the interpreter's own packages still win.
"""

import sys

try:
    import pytest
except ImportError:
    debian = "/usr/lib/python3/dist-packages"
    sys.path.append(debian)
    try:
        import pytest
    except ImportError:
        sys.exit(f"pytest is not importable by {sys.executable} (nor from {debian}): install python3-pytest")
    print(f"run_pytest: using pytest from {debian} for {sys.executable}", file=sys.stderr)

sys.exit(pytest.main(sys.argv[1:]))
