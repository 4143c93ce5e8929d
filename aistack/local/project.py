"""What `aistack run PATH...` runs: one TaskOrchestration, its agents and their model definitions.

Everything is validated together with cross-file references (as `aistack validate` does), so a
step whose agentRef names no agent among the files, or an agent whose model definition is
missing, stops the run before any model, agent or Airflow work, with every problem listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aistack.pipelines.plan import PipelinePlan, plan
from aistack.resources import OllamaAgent, OllamaModelDefinition, TaskOrchestration


class ProjectError(Exception):
    """The files cannot be run; the message says why and what to do."""


@dataclass(frozen=True)
class Project:
    orchestration: TaskOrchestration
    plan: PipelinePlan
    agents: tuple[tuple[OllamaAgent, OllamaModelDefinition], ...]  # the agents the steps name, once each
    orchestrations_path: Path  # what AISTACK_ORCHESTRATIONS_PATH is set to (absolute)

    @property
    def items_dir(self) -> Path | None:
        """The `documents/` folder beside the resources: in a local run, forEach.fromStorage lists it
        instead of S3 or the input folder (settings.local_items_dir)."""
        path = self.orchestrations_path
        folder = (path if path.is_dir() else path.parent) / "documents"
        return folder if folder.is_dir() else None

    @property
    def definitions(self) -> list[OllamaModelDefinition]:
        seen: dict[str, OllamaModelDefinition] = {}
        for _, definition in self.agents:
            seen.setdefault(definition.model_name, definition)
        return list(seen.values())


def load_project(paths: Sequence[Path], orchestration: str | None = None) -> Project:
    from aistack.resources.validation import validate_paths

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ProjectError(f"no such file or folder: {', '.join(missing)}")
    result = validate_paths(paths)
    if not result.ok:
        lines = [line for problem in result.problems for line in problem.lines()]
        raise ProjectError(
            f"{len(result.problems)} invalid document(s); nothing was started:\n  "
            + "\n  ".join(lines)
            + "\n(run `aistack validate` on the same files after fixing them)"
        )
    chosen = _choose(result.of_kind(TaskOrchestration), orchestration, paths)
    agents = {(a.namespace, a.name): a for a in result.of_kind(OllamaAgent)}
    definitions = {(d.namespace, d.name): d for d in result.of_kind(OllamaModelDefinition)}
    pairs: dict[str, tuple[OllamaAgent, OllamaModelDefinition]] = {}
    for step in chosen.spec.pipeline:
        agent = agents[(chosen.namespace, step.agent_ref)]  # validate_paths resolved every agentRef
        pairs.setdefault(agent.name, (agent, definitions[(agent.namespace, agent.spec.model_definition.name)]))
    source = next(document.source for document, resource in result.resources if resource is chosen)
    return Project(chosen, plan(chosen), tuple(pairs.values()), _orchestrations_path(paths, Path(source)))


def _choose(found: list[TaskOrchestration], wanted: str | None, paths: Sequence[Path]) -> TaskOrchestration:
    where = ", ".join(str(p) for p in paths)
    if wanted is not None:
        matches = [o for o in found if o.name == wanted or f"{o.namespace}/{o.name}" == wanted]
        if not matches:
            names = ", ".join(f"{o.namespace}/{o.name}" for o in found) or "none"
            raise ProjectError(f'no TaskOrchestration "{wanted}" in {where} (found: {names})')
        return matches[0]
    if not found:
        raise ProjectError(f"no TaskOrchestration in {where}: give the folder or files with the pipeline's task.yaml")
    if len(found) > 1:
        names = ", ".join(f"{o.namespace}/{o.name}" for o in found)
        raise ProjectError(f"{where} holds {len(found)} TaskOrchestrations ({names}): choose one with --orchestration NAME")
    return found[0]


def _orchestrations_path(paths: Sequence[Path], source: Path) -> Path:
    """What the DAG file reads orchestrations from: the one folder or file given, else (several
    paths) the file that holds the chosen orchestration, so no unrelated manifests are parsed."""
    return (paths[0] if len(paths) == 1 else source).resolve()
