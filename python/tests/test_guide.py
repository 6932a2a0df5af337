"""Every Python block of the README and the guide (docs/) runs, from the repository's root, as
a reader would paste it; a block whose first line is a `# not run` comment is only shown (it
needs what the tests do not have: a trainer's package, a language model, torchrun)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks():
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
            line = text[: match.start()].count("\n") + 1
            yield pytest.param(match.group(1), id=f"{page.relative_to(ROOT)}:{line}")


RUNNABLE = [block for block in blocks() if not block.values[0].startswith("# not run")]


def test_the_guide_has_runnable_python():
    assert len(RUNNABLE) >= 2


@pytest.mark.parametrize("code", RUNNABLE)
def test_every_python_block_of_the_guide_runs(code, monkeypatch):
    monkeypatch.chdir(ROOT)
    (ROOT / "target" / "guide").mkdir(parents=True, exist_ok=True)
    exec(compile(code, "<guide>", "exec"), {"__name__": "__guide__"})


# `help()` on every public name teaches by example: each function and class of the API has one,
# and every example that can run here runs (doctest, from the repository's root).
TAUGHT = [name for name in __import__("rmt_torch").__all__
          if not name.endswith("Error") and name not in ("HESSIAN_RECORD", "losses")]


@pytest.mark.parametrize("name", TAUGHT)
def test_every_public_name_has_an_example_that_runs(name, monkeypatch):
    import doctest

    import torch

    import rmt_torch

    monkeypatch.chdir(ROOT)
    (ROOT / "target" / "guide").mkdir(parents=True, exist_ok=True)
    obj = getattr(rmt_torch, name)
    assert ">>>" in (obj.__doc__ or ""), f"rmt_torch.{name} has no example"
    torch.manual_seed(0)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(obj, name, globs={"rmt_torch": rmt_torch, "torch": torch}):
        runner.run(test)
    assert runner.failures == 0, f"rmt_torch.{name}'s example failed (see the output above)"
