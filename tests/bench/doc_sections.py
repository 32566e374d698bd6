"""docs/benchmarks.md is shared by several benchmarks; each owns the section between
<!-- NAME-bench:begin --> and <!-- NAME-bench:end --> (with the "## " heading just before it)."""
import re
from pathlib import Path

_SECTION = re.compile(r"<!-- ([a-z0-9-]+)-bench:begin -->.*?<!-- \1-bench:end -->", re.S)


def _with_heading(doc: str, m: re.Match) -> str:
    start = doc.rfind("\n## ", 0, m.start())
    return doc[start + 1 if start >= 0 else m.start():m.end()]


def keep_other_sections(old: str, new: str) -> str:
    """`new` plus every marked section of `old` that `new` does not have."""
    for m in _SECTION.finditer(old):
        if f"<!-- {m.group(1)}-bench:begin -->" not in new:
            new = new.rstrip("\n") + "\n\n" + _with_heading(old, m) + "\n"
    return new


def write_section(doc: Path, name: str, heading: str, body: str) -> None:
    """Replaces (or appends) section NAME of `doc`, leaving the rest of the file alone."""
    begin, end = f"<!-- {name}-bench:begin -->", f"<!-- {name}-bench:end -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"
    doc.write_text(text)
