"""Every malformed manifest in tests/resources/malformed yields exactly the errors its header expects.

Each file starts with `# expect: <path>: <message>` lines (a message may be a prefix of the
full text) and optionally `# references: checked` when it tests references between resources.
"""

from pathlib import Path

import pytest

from aistack.resources.validation import validate_paths

CORPUS = Path(__file__).resolve().parents[2] / "resources" / "malformed"
FILES = sorted(CORPUS.glob("*.yaml"))


def _header(path: Path) -> tuple[list[str], bool]:
    lines = path.read_text().splitlines()
    expected = [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]
    return expected, "# references: checked" in lines


def test_corpus_is_large_enough():
    assert len(FILES) >= 25


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_malformed_manifest_reports_expected_errors(path: Path):
    expected, check_references = _header(path)
    assert expected, f"{path.name} has no '# expect:' header"

    result = validate_paths([path], check_references=check_references)

    reported = [str(error) for problem in result.problems for error in problem.errors]
    assert not result.ok
    assert len(reported) == len(expected), reported
    for want in expected:
        assert any(line.startswith(want) for line in reported), f"missing {want!r} in {reported}"
