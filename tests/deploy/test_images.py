"""The container images (images/*/Dockerfile, .dockerignore), checked without a container engine.

No Docker runs on the development machines or in CI, so these tests read the Dockerfiles the
way the builder would: a small instruction parser (line continuations, comment lines inside
them, exec and shell forms, flags), Docker's .dockerignore matching, and the ARGs used in
FROM. They check what a build or a rollout would otherwise find out late: a COPY source that
is missing or ignored, base images whose Airflow or Python versions differ from the pins, and
an agent image whose user, entrypoint, port or health check disagree with the Deployment that
aistack.agents.workload renders. hadolint lints both files.
"""

from __future__ import annotations

import ast
import http.server
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
AGENT = REPO / "images" / "agent" / "Dockerfile"
AIRFLOW = REPO / "images" / "airflow" / "Dockerfile"
DOCKERFILES = {"agent": AGENT, "airflow": AIRFLOW}
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


# --- Dockerfile parsing -------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    flags: list[tuple[str, str]]  # leading --name=value options, in order
    rest: str  # what follows the flags
    line: int  # 1-based line where the instruction starts

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of RUN/CMD/ENTRYPOINT/COPY..., or None for the shell form."""
        if self.rest.startswith("["):
            try:
                value = json.loads(self.rest)
            except json.JSONDecodeError:
                return None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        return None

    def words(self) -> list[str]:
        return self.exec_form or shlex.split(self.rest)

    def flag(self, name: str) -> str | None:
        return next((v for k, v in self.flags if k == name), None)


@dataclass
class Stage:
    base: str  # FROM's image with ARGs substituted
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.of(keyword)
        return found[-1] if found else None


# Instructions whose leading --options are flags (not part of a shell command).
_FLAGGED = {"FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"}


def parse_instructions(text: str) -> list[Instruction]:
    """Docker's line handling: a trailing backslash continues the instruction; comment lines
    and blank lines inside a continuation are dropped; `#` starts a comment only at the start
    of a line."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        pending.append(raw)
        instructions.append(_instruction(" ".join(part.strip() for part in pending), start))
        pending = []
    assert not pending, f"the file ends inside a continued instruction (line {start})"
    return instructions


def _instruction(logical: str, line: int) -> Instruction:
    keyword, _, rest = logical.partition(" ")
    keyword = keyword.upper()
    rest = rest.strip()
    flags: list[tuple[str, str]] = []
    if keyword in _FLAGGED:
        while rest.startswith("--"):
            token, _, rest = rest.partition(" ")
            name, _, value = token[2:].partition("=")
            flags.append((name, value))
            rest = rest.strip()
    return Instruction(keyword, flags, rest, line)


def _substitute(value: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"${name} has no value (declare it with ARG and a default)"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, value)


def parse_stages(path: Path) -> list[Stage]:
    """The build stages, with the global ARGs (those before the first FROM) resolved in FROM."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in parse_instructions(path.read_text()):
        if instruction.keyword == "FROM":
            words = instruction.rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(_substitute(words[0], global_args), name))
        elif not stages:
            assert instruction.keyword == "ARG", f"{path}:{instruction.line}: only ARG may precede FROM"
            key, _, default = instruction.rest.partition("=")
            global_args[key] = default.strip('"')
        else:
            stages[-1].instructions.append(instruction)
    return stages


def env_of(stage: Stage) -> dict[str, str]:
    """ENV key=value pairs of a stage (multi-pair form; later ones win)."""
    env: dict[str, str] = {}
    for instruction in stage.of("ENV"):
        for word in shlex.split(instruction.rest):
            key, _, value = word.partition("=")
            env[key] = value
    return env


# --- .dockerignore matching ---------------------------------------------------------------


@dataclass
class IgnorePattern:
    text: str
    exclusion: bool  # a `!` pattern: re-includes what earlier patterns excluded
    regex: re.Pattern


def _pattern_regex(pattern: str) -> re.Pattern:
    """Docker's translation (moby/patternmatcher): filepath.Match's `*`, `?`, `[...]` and `\\`
    plus `**`, which matches any number of path segments, including none."""
    out = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":  # `**/` is `**`
                    i += 1
                out += ".*" if i + 1 >= len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif ch in ".+()|{}$":
            out += "\\" + ch
        else:
            out += ch  # `[`, `]`, `^` and `-` keep their character-class meaning
        i += 1
    return re.compile(f"^{out}$")


def _clean(path: str) -> str:
    """Go's filepath.Clean for relative slash paths, without a leading slash."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or "."


def read_dockerignore(text: str) -> list[IgnorePattern]:
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        body = _clean(line[1:].strip() if exclusion else line)
        patterns.append(IgnorePattern(line, exclusion, _pattern_regex(body)))
    return patterns


def is_ignored(path: str, patterns: list[IgnorePattern]) -> bool:
    """Docker's MatchesOrParentMatches: each pattern is tried on the path and on each of its
    parent folders (excluding a folder excludes what is in it); the last match decides."""
    path = _clean(path)
    parents = path.split("/")[:-1]
    ignored = False
    for pattern in patterns:
        match = bool(pattern.regex.match(path)) or any(pattern.regex.match("/".join(parents[: i + 1])) for i in range(len(parents)))
        if match:
            ignored = not pattern.exclusion
    return ignored


# --- what a build reads from the context --------------------------------------------------


def context_sources(stages: list[Stage]) -> list[tuple[int, str]]:
    """(line, path) of everything taken from the build context: COPY/ADD sources without
    --from, and RUN bind mounts without from=."""
    sources = []
    for stage in stages:
        for instruction in stage.instructions:
            if instruction.keyword in ("COPY", "ADD") and instruction.flag("from") is None:
                sources += [(instruction.line, s) for s in instruction.words()[:-1]]
            if instruction.keyword == "RUN":
                for name, value in instruction.flags:
                    if name != "mount":
                        continue
                    options = dict(option.partition("=")[::2] for option in value.split(","))
                    if options.get("type", "bind") == "bind" and "from" not in options:
                        sources.append((instruction.line, options.get("source", options.get("src", "."))))
    return sources


def copy_problems(context: Path, dockerfile: Path) -> list[str]:
    """What a build of `dockerfile` in `context` would miss: sources that do not exist, that
    .dockerignore excludes, or folders whose Python files it excludes (the images copy
    Python packages and DAG folders, which must arrive whole)."""
    ignore_file = context / ".dockerignore"
    patterns = read_dockerignore(ignore_file.read_text()) if ignore_file.exists() else []
    problems = []
    for line, source in context_sources(parse_stages(dockerfile)):
        relative = _clean(source)
        matches = sorted(context.glob(relative)) if any(c in relative for c in "*?[") else [context / relative]
        matches = [m for m in matches if m.exists()]
        if not matches:
            problems.append(f"line {line}: {source} does not exist in the build context")
        for match in matches:
            name = match.relative_to(context).as_posix() if match != context else "."
            if match.is_file() and is_ignored(name, patterns):
                problems.append(f"line {line}: {name} is excluded by .dockerignore")
            if match.is_dir():
                python = [f.relative_to(context).as_posix() for f in match.rglob("*.py") if "__pycache__" not in f.parts]
                lost = [f for f in python if is_ignored(f, patterns)]
                if not python:
                    problems.append(f"line {line}: {name}/ has no Python files")
                if lost:
                    problems.append(f"line {line}: {name}/ loses Python files to .dockerignore: {', '.join(lost)}")
    return problems


# --- the rendered Deployment and the pins ------------------------------------------------


@pytest.fixture(scope="module")
def deployment() -> dict:
    from aistack.agents.workload import render
    from aistack.resources import OllamaAgent, OllamaModelDefinition
    from aistack.resources.validation import validate_paths

    result = validate_paths([REPO / "examples" / "summarization-pipeline"])
    assert result.ok
    definitions = {d.name: d for d in result.of_kind(OllamaModelDefinition)}
    agent = result.of_kind(OllamaAgent)[0]
    objects = render(agent, definitions[agent.spec.model_definition.name])
    return next(o for o in objects if o["kind"] == "Deployment")


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def constraint_pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = Version(version)
    return pins


def dependency_closure(requirements: list[str]) -> dict[str, list[Requirement]]:
    """Every distribution the requirements pull in (with the requirements naming it), walked
    through the metadata of the installed distributions, extras and markers evaluated for
    this interpreter (Linux, Python 3.11, as in the images)."""
    seen: dict[str, list[Requirement]] = {}
    queue = [(Requirement(r), "") for r in requirements]
    expanded: set[tuple[str, str]] = set()
    while queue:
        requirement, extra = queue.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        seen.setdefault(name, []).append(requirement)
        for wanted in ["", *sorted(requirement.extras)]:
            if (name, wanted) in expanded:
                continue
            expanded.add((name, wanted))
            for text in metadata.distribution(name).requires or []:
                child = Requirement(text)
                in_extra = child.marker is not None and "extra" in str(child.marker)
                if (wanted == "") == (not in_extra):
                    queue.append((child, wanted))
    return seen


# --- lint ---------------------------------------------------------------------------------


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_hadolint_finds_nothing(image):
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint comes with the test extra: pip install -c constraints.txt -e '.[test]'"
    result = subprocess.run(
        [str(hadolint), "--format", "json", "--failure-threshold", "style", str(DOCKERFILES[image])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def test_hadolint_reports_a_real_problem(tmp_path):
    # The lint above means something only if hadolint runs on these files' syntax and reports.
    bad = tmp_path / "Dockerfile"
    bad.write_text(AGENT.read_text() + "USER root\n")
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), "--format", "json", str(bad)], capture_output=True, text=True, timeout=60)
    assert "DL3002" in {f["code"] for f in json.loads(result.stdout)}  # "Last USER should not be root"


# --- the parser and the matcher themselves ------------------------------------------------


def test_parser_joins_continuations_and_drops_comment_lines_inside_them(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("ARG BASE=python:3.11-slim\nFROM ${BASE} AS build\nRUN a \\\n# a comment\n\n    && b\nCOPY --chown=1:1 --from=x a b /d/\n")
    (stage,) = parse_stages(dockerfile)
    assert (stage.base, stage.name) == ("python:3.11-slim", "build")
    run, copy = stage.instructions
    assert (run.rest, run.line) == ("a && b", 3)
    assert copy.flags == [("chown", "1:1"), ("from", "x")] and copy.words() == ["a", "b", "/d/"]


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        ("*.egg-info", "aistack.egg-info/PKG-INFO", True),  # a matching parent folder excludes its files
        ("*.pyc", "aistack/cli.pyc", False),  # `*` does not cross `/`
        ("**/*.pyc", "aistack/agents/__pycache__/app.cpython-311.pyc", True),
        ("**/*.pyc", "top.pyc", True),  # `**/` also matches no folder at all
        ("**/__pycache__", "__pycache__/x.pyc", True),
        ("aistack/**", "aistack/agents/app.py", True),
        ("/tests", "tests/conftest.py", True),  # a leading slash is the context root
        ("./docs/../tests", "tests/x", True),  # patterns are cleaned like paths
        ("tests", "aistack/tests/x.py", False),  # patterns are anchored at the root
        ("test?", "tests/x", True),
        ("test?", "test/x", False),
        ("[a-c]ench", "bench/run.py", True),
        ("[^a-c]ench", "bench/run.py", False),
        ("*.md\n!README.md", "README.md", False),  # the last matching pattern wins
        ("*.md\n!README.md", "NOTES.md", True),
        ("!README.md\n*.md", "README.md", True),
        ("docs\n!docs/keep.md", "docs/keep.md", False),  # an exception inside an excluded folder
        ("docs\n!docs/keep.md", "docs/other.md", True),
        ("a\\*b", "a*b", True),  # backslash escapes
        ("a\\*b", "axb", False),
        ("# comment\n\n  bench  ", "bench/x", True),
    ],
)
def test_dockerignore_matching(patterns, path, ignored):
    assert is_ignored(path, read_dockerignore(patterns)) is ignored


def test_dockerignore_leaves_out_local_state_and_keeps_the_sources():
    patterns = read_dockerignore((REPO / ".dockerignore").read_text())
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "bench/x.py",
        "aistack.egg-info/PKG-INFO",
        "aistack/__pycache__/cli.cpython-311.pyc",
        "aistack/agents/__pycache__/app.cpython-311.pyc",
        ".mypy_cache/x",
        ".pytest_cache/x",
        "examples/summarization-pipeline/task.yaml",
        ".env",
    ):
        assert is_ignored(path, patterns), path
    for path in (
        "pyproject.toml",
        "README.md",
        "constraints.txt",
        "aistack/cli.py",
        "aistack/agents/app.py",
        "plugins/generator.py",
        "operators/a2a.py",
        "sensors/__init__.py",
        "hooks/a2a.py",
        "triggers/a2a.py",
        "dags/task_orchestrations.py",
    ):
        assert not is_ignored(path, patterns), path


# --- the build context --------------------------------------------------------------------


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_every_copy_source_is_in_the_build_context(image):
    assert copy_problems(REPO, DOCKERFILES[image]) == []


def _context_copy(tmp_path: Path) -> Path:
    """The repository files both images read, in a scratch context."""
    context = tmp_path / "context"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("aistack", "plugins", "operators", "sensors", "hooks", "triggers", "dags"):
        shutil.copytree(REPO / name, context / name, ignore=skip)
    for name in ("pyproject.toml", "README.md", "constraints.txt", ".dockerignore"):
        shutil.copy2(REPO / name, context / name)
    return context


def test_copy_check_catches_missing_and_ignored_sources(tmp_path):
    context = _context_copy(tmp_path)
    assert copy_problems(context, AGENT) == [] and copy_problems(context, AIRFLOW) == []

    (context / "README.md").unlink()
    assert [p for p in copy_problems(context, AGENT) if "README.md does not exist" in p]

    (context / "README.md").write_text("back\n")
    with (context / ".dockerignore").open("a") as ignore:
        ignore.write("aistack/cli.py\n")
    assert [p for p in copy_problems(context, AGENT) if "aistack/cli.py" in p]

    (context / ".dockerignore").write_text("constraints.txt\n")  # the Airflow image bind-mounts it
    assert [p for p in copy_problems(context, AIRFLOW) if "constraints.txt is excluded" in p]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_copied_sources_hold_every_package_of_the_distribution(image, tmp_path):
    # The wheel is built from what the first stage copies: every package pyproject lists (with
    # its package-dir) must be there, and the `readme` file. (Building the wheel itself needs
    # setuptools>=68 from PyPI, which a test cannot rely on.)
    build = parse_stages(DOCKERFILES[image])[0]
    assert build.name in ("build", "wheel")
    copied = tmp_path / "copied"
    for instruction in build.of("COPY"):
        *sources, destination = instruction.words()
        for source in sources:
            # Each COPY keeps the repository layout under WORKDIR, so the copy below is the tree pip sees.
            assert destination in ("./", source), f"line {instruction.line}: {source} -> {destination}"
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, copied / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                copied.mkdir(exist_ok=True)
                shutil.copy2(REPO / source, copied / source)
    setuptools = PYPROJECT["tool"]["setuptools"]
    folders = {p: Path(setuptools["package-dir"].get(p, p.replace(".", "/"))) for p in setuptools["packages"]}
    nested = {
        p: folders[p.rpartition(".")[0]] / p.rpartition(".")[2]
        for p in folders
        if p not in setuptools["package-dir"] and "." in p and p.rpartition(".")[0] in setuptools["package-dir"]
    }
    folders.update(nested)
    missing = [f"{package} ({folder}/__init__.py)" for package, folder in folders.items() if not (copied / folder / "__init__.py").is_file()]
    assert missing == [], f"packages the wheel is built with but the image does not copy: {missing}"
    assert (copied / PYPROJECT["project"]["readme"]).is_file()
    assert (copied / "pyproject.toml").is_file()


# --- base images --------------------------------------------------------------------------


def _external_bases(path: Path) -> list[str]:
    stages = parse_stages(path)
    names = {s.name for s in stages if s.name}
    return [s.base for s in stages if s.base not in names]


def _python_of(base: str) -> Version:
    image, _, tag = base.partition(":")
    tag = tag.split("@")[0]  # a digest, if one is added, follows the tag
    if image == "python":
        match = re.fullmatch(r"(\d+\.\d+\.\d+)-slim(-\w+)?", tag)
    elif image == "apache/airflow":
        match = re.fullmatch(r"\d+\.\d+\.\d+-python(\d+\.\d+)", tag)
    else:
        pytest.fail(f"unexpected base image {base}")
    assert match, f"{base}: pin a full version tag (no floating tags such as latest or 3.11)"
    return Version(match.group(1))


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_base_images_run_the_python_pyproject_requires(image):
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    bases = _external_bases(DOCKERFILES[image])
    assert bases
    for base in bases:
        assert _python_of(base) in requires, f"{base} vs requires-python {requires}"


def test_airflow_base_image_is_the_pinned_airflow():
    stages = parse_stages(AIRFLOW)
    final = stages[-1].base
    image, _, tag = final.partition(":")
    assert image == "apache/airflow"
    airflow_version = Version(tag.split("-python")[0])
    assert airflow_version == constraint_pins()["apache-airflow"]
    (extra_requirement,) = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["airflow"] if Requirement(r).name == "apache-airflow"]
    assert airflow_version in extra_requirement.specifier


def test_both_images_share_one_python_base():
    # The agent image and the Airflow image's wheel builder name the same Python base: a bump
    # of one that leaves the other behind fails here.
    assert {s.base for s in parse_stages(AGENT)} == {parse_stages(AIRFLOW)[0].base}


# --- what each image installs -------------------------------------------------------------


def _pip_installs(stage: Stage) -> list[Instruction]:
    return [i for i in stage.of("RUN") if re.search(r"\bpip install\b", i.rest)]


def _agent_install() -> tuple[Instruction, list[str]]:
    """The agent image's pip install and the requirements it names besides aistack itself."""
    (install,) = _pip_installs(parse_stages(AGENT)[0])
    words = install.words()
    named = words[words.index("install") + 1 :]
    targets = [w for i, w in enumerate(named) if not w.startswith("-") and not named[i - 1].startswith("--constraint")]
    assert "." in targets, "the agent image installs aistack from the copied sources"
    return install, [t for t in targets if t != "."]


def test_agent_image_installs_the_core_only_with_the_pins():
    install, _ = _agent_install()
    words = install.words()
    assert "[" not in install.rest  # no extras: no airflow, no runtime
    assert words[words.index("--constraint") + 1] == "constraints.txt"


_AGENT_ENTRY_MODULES = ("aistack.cli", "aistack.agents.cli", "aistack.agents.logs", "aistack.resources.validation")


def test_agent_image_installs_every_module_the_agent_server_imports():
    # Which aistack modules `aistack agents serve` loads (in a fresh interpreter: the serve
    # command and every module of the A2A server package, some of which load lazily per
    # request), then every third-party import written in them, function-level ones included.
    # Each must come from a distribution the agent image installs: the core dependencies'
    # closure plus what its pip install names explicitly. The embedded runtime
    # (aistack.runtime) stays out: the Deployment always passes --ollama-host.
    script = (
        "import importlib, json, pkgutil, sys\n"
        f"for name in {list(_AGENT_ENTRY_MODULES)!r}: importlib.import_module(name)\n"
        "import aistack.agents\n"
        "for info in pkgutil.walk_packages(aistack.agents.__path__, 'aistack.agents.'): importlib.import_module(info.name)\n"
        "print(json.dumps({n: m.__file__ for n, m in sys.modules.items() if n.split('.')[0] == 'aistack'}))\n"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True, timeout=120).stdout)
    assert not [n for n in loaded if n.startswith(("aistack.runtime", "aistack.local."))]
    first_party = {"aistack", "aistack_airflow"}
    imported: dict[str, set[str]] = {}
    for name, file in loaded.items():
        for node in ast.walk(ast.parse(Path(file).read_text())):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            )
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in first_party and top != "__future__":
                    imported.setdefault(top, set()).add(name)
    core = set(dependency_closure(PYPROJECT["project"]["dependencies"]))
    _, named = _agent_install()
    named_closure = set(dependency_closure(named))
    providers = metadata.packages_distributions()
    missing = {top: sorted(by) for top, by in imported.items() if not {canonicalize_name(d) for d in providers.get(top, [])} & (core | named_closure)}
    assert missing == {}, f"imported by the agent server, installed by nothing in the agent image: {missing}"
    # What the Dockerfile names besides aistack must be exactly what pyproject fails to declare,
    # so the workaround goes away when pyproject is fixed.
    undeclared = {canonicalize_name(d) for top in imported for d in providers.get(top, []) if not {canonicalize_name(p) for p in providers[top]} & core}
    assert {canonicalize_name(Requirement(n).name) for n in named} == undeclared, (
        "declare these in pyproject's core dependencies and install only `.` in images/agent/Dockerfile"
    )


def test_airflow_image_installs_the_airflow_extra_without_moving_airflow():
    final = parse_stages(AIRFLOW)[-1]
    (install,) = _pip_installs(final)
    assert '"$1[airflow]"' in install.rest and "runtime" not in install.rest
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in install.rest
    constraint = re.search(r"--constraint (\S+)", install.rest).group(1)
    mounts = [dict(o.partition("=")[::2] for o in v.split(",")) for k, v in install.flags if k == "mount"]
    assert {"type": "bind", "source": "constraints.txt", "target": constraint} in mounts
    # pip must run as the base image's airflow user (uid 50000), which is also the user the image ends with.
    users = final.of("USER")
    assert users and all(u.rest == "50000" for u in users) and users[0].line < install.line


def test_airflow_image_bakes_the_dags_and_gets_the_plugin_from_the_wheel_only():
    final = parse_stages(AIRFLOW)[-1]
    copies = {tuple(i.words()) for i in final.of("COPY") if i.flag("from") is None}
    assert ("dags/", "/opt/airflow/dags/") in copies
    assert not any(dest.startswith("/opt/airflow/plugins") for *_, dest in copies), "the plugin would load twice"
    assert all(i.flag("chown") == "airflow:root" for i in final.of("COPY"))
    entry_points = PYPROJECT["project"]["entry-points"]
    assert entry_points["airflow.plugins"] == {"aistack": "aistack_airflow.plugin:AistackPlugin"}


@pytest.mark.parametrize(
    ("extras", "absent"),
    [((), {"apache-airflow", "llama-cpp-python"}), (("airflow",), {"llama-cpp-python"})],
    ids=["agent-core", "airflow-extra"],
)
def test_constraints_pin_everything_the_images_install(extras, absent):
    # What `pip install -c constraints.txt .[extras]` resolves, walked through the installed
    # metadata: every distribution must be pinned, the pin must satisfy every requirement on it,
    # and the metadata walked must be the pinned version's.
    requirements = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        requirements += PYPROJECT["project"]["optional-dependencies"][extra]
    closure = dependency_closure(requirements)
    pins = constraint_pins()
    # `make lock` is pip freeze, which never lists pip's own tooling; every base image has it.
    tooling = {"pip", "setuptools", "wheel"}
    unpinned = sorted(set(closure) - set(pins) - tooling)
    assert unpinned == []
    for name, wanted in closure.items():
        version = pins.get(name) or Version(metadata.version(name))
        for requirement in wanted:
            assert version in requirement.specifier, f"{name}=={version} does not satisfy {requirement}"
        assert Version(metadata.version(name)) == version, f"installed {name} is not the pinned version"
    assert not absent & set(closure), "the images must not install these"
    if extras:
        assert "apache-airflow-providers-cncf-kubernetes" in closure


# --- the agent image against its Deployment -----------------------------------------------


def _agent_final() -> Stage:
    return parse_stages(AGENT)[-1]


def test_agent_image_runs_as_the_deployments_non_root_user(deployment):
    final = _agent_final()
    user = final.last("USER").rest
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), "a numeric USER lets the kubelet verify runAsNonRoot"
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert int(uid) != 0 and int(uid) == pod_security["runAsUser"]
    # The user exists in the image with that uid and gid (tools that look it up find it).
    (useradd,) = [i for i in final.of("RUN") if "useradd" in i.rest]
    assert f"--uid {uid}" in useradd.rest and f"--gid {gid}" in useradd.rest


def test_agent_image_writes_only_where_the_deployment_mounts_a_volume(deployment):
    container = _container(deployment)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    env = env_of(_agent_final())
    for key in ("HOME", "AISTACK_HOME"):
        assert any(env[key] == w or env[key].startswith(w + "/") for w in writable), f"{key}={env[key]}"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_agent_entrypoint_is_the_aistack_console_script():
    final = _agent_final()
    entrypoint = final.last("ENTRYPOINT").exec_form
    assert entrypoint == ["aistack"]
    assert PYPROJECT["project"]["scripts"][entrypoint[0]] == "aistack.cli:main"
    # pip puts console scripts in the venv's bin/, which must come first on PATH.
    (install,) = _pip_installs(parse_stages(AGENT)[0])
    venv_bin = Path(install.words()[0]).parent
    assert env_of(final)["PATH"].split(":")[0] == str(venv_bin)
    assert any(str(venv_bin.parent) in i.words() for i in final.of("COPY") if i.flag("from"))


def test_deployment_args_and_default_cmd_parse_as_agents_serve(deployment):
    from aistack.agents.workload import AGENT_PORT, CONFIG_PATH
    from aistack.cli import _agents_serve, _parser

    container = _container(deployment)
    # With no `command`, Kubernetes keeps the image's ENTRYPOINT and replaces only CMD.
    assert "command" not in container
    config_mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "config")
    for args in (container["args"], _agent_final().last("CMD").exec_form):
        parsed = _parser().parse_args(args)
        assert parsed.handler is _agents_serve
        assert (parsed.host, parsed.port) == ("0.0.0.0", AGENT_PORT)
        assert parsed.paths == [Path(CONFIG_PATH) / "agent.yaml"]
        assert parsed.paths[0].parent == Path(config_mount)


def test_agent_image_exposes_the_container_port(deployment):
    (port,) = _container(deployment)["ports"]
    assert _agent_final().last("EXPOSE").rest == str(port["containerPort"])


def _healthcheck_url() -> tuple[list[str], re.Match]:
    healthcheck = _agent_final().last("HEALTHCHECK")
    assert healthcheck.rest.startswith("CMD ")
    command = json.loads(healthcheck.rest[len("CMD ") :])
    assert command[:2] == ["python", "-c"], "exec form, with the image's Python: the slim base has no curl"
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)", command[2])
    assert match, command
    return command, match


def test_healthcheck_requests_the_agents_liveness_path(deployment):
    from aistack.agents.app import OPERATIONAL_PATHS

    _, match = _healthcheck_url()
    container = _container(deployment)
    assert int(match.group(1)) == container["ports"][0]["containerPort"]
    assert match.group(2) in OPERATIONAL_PATHS  # served without the bearer token
    assert match.group(2) == container["livenessProbe"]["httpGet"]["path"]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_command_exit_status_follows_the_server(status, healthy):
    # The HEALTHCHECK's own command, pointed at a local stand-in for the agent.
    command, match = _healthcheck_url()
    handler = type("Handler", (_Health,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code = command[2].replace(f":{match.group(1)}/", f":{server.server_address[1]}/")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert (result.returncode == 0) is healthy


def test_healthcheck_fails_when_nothing_listens():
    command, match = _healthcheck_url()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The port is closed again here: a connection is refused, as before the agent listens.
    code = command[2].replace(f":{match.group(1)}/", f":{port}/")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode != 0
