"""The README stays in step with the code: set-up commands and the settings reference."""

from __future__ import annotations

import re
from pathlib import Path

from fleetlog.config import reference_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_readme_embeds_the_generated_settings_reference() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(
        r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", readme, flags=re.DOTALL
    )
    assert match, "README lacks the settings markers"
    assert match.group(1).strip() == reference_markdown().strip(), (
        "README settings reference is stale: paste fleetlog.config.reference_markdown() "
        "between the markers (python -c 'from fleetlog.config import reference_markdown as r; "
        "print(r())')"
    )


def test_readme_opens_with_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    head = readme[: readme.index("## Configuration")]
    assert "make demo" in head and "make test" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().endswith("make test")
