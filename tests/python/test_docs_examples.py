"""Every ```python block of docs/python.md runs, in order, in a fresh directory.

The blocks name models as ../shared/models/...; here that prefix points at MALLORN_MODELS_DIR.
"""

from __future__ import annotations

import re

import pytest

from conftest import MODELS, REPO

DOC = REPO / "docs" / "python.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_page_has_examples():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_docs_example_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = BLOCKS[index].replace("../shared/models", str(MODELS))
    exec(compile(code, f"{DOC}:block{index + 1}", "exec"), {"__name__": f"docs_block_{index + 1}"})
    assert capsys.readouterr().out.strip(), "an example should print what it shows"
