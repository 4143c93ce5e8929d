"""The rules a pipeline must follow as a graph, which field types alone cannot express.

Each broken rule is reported at the exact field that breaks it, all at once, so a user fixes
a pipeline in one pass instead of one error per `kubectl apply`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from aistack.resources.errors import FieldError, did_you_mean

if TYPE_CHECKING:
    from aistack.resources.orchestration import ArtifactReference, ItemsFromArtifact, PipelineStep


def check_pipeline(
    steps: Iterable[tuple[int, PipelineStep]],
    prefix: str = "spec.pipeline",
    invalid_steps: Iterable[str] = (),
    failure_action: str = "continue",
) -> list[FieldError]:
    """Check names, dependencies, cycles, artifact references and conditions.

    `steps` pairs each step with its index in the manifest, so steps that failed their own
    validation can be left out while the rest are still checked; `invalid_steps` names those
    left out, so references to them are not reported as unknown.
    """
    skipped = set(invalid_steps)
    indexed = list(steps)
    errors: list[FieldError] = []
    first_index: dict[str, int] = {}
    for index, step in indexed:
        if step.name in first_index:
            errors.append(FieldError(f"{prefix}[{index}].name", f'duplicate step name "{step.name}" (also {prefix}[{first_index[step.name]}])'))
        else:
            first_index[step.name] = index
    by_name = {step.name: step for _, step in indexed}

    for index, step in indexed:
        here = f"{prefix}[{index}]"
        for position, upstream in enumerate(step.depends_on or []):
            if upstream == step.name:
                errors.append(FieldError(f"{here}.dependsOn[{position}]", "a step cannot depend on itself"))
            elif upstream not in by_name and upstream not in skipped:
                errors.append(FieldError(f"{here}.dependsOn[{position}]", f'unknown step "{upstream}"{did_you_mean(upstream, by_name)}'))
        if step.condition != "success" and failure_action == "abort":
            errors.append(
                FieldError(
                    f"{here}.condition",
                    f'"{step.condition.value}" needs errorPolicy.failureAction continue or rollback: with abort the run stops at the first failed step',
                )
            )
        elif step.condition != "success" and not step.depends_on:
            errors.append(
                FieldError(
                    f"{here}.condition",
                    f'"{step.condition.value}" is judged on upstream steps, and this step has none: add dependsOn or remove the condition',
                )
            )

    cycle = find_cycle({name: [d for d in s.depends_on or [] if d in by_name and d != name] for name, s in by_name.items()})
    if cycle:
        errors.append(FieldError(prefix, "dependency cycle: " + " -> ".join(cycle)))
    else:
        errors.extend(_check_inputs(indexed, by_name, prefix, skipped))
    return errors


def _check_inputs(indexed: Sequence[tuple[int, PipelineStep]], by_name: dict[str, PipelineStep], prefix: str, skipped: set[str]) -> list[FieldError]:
    errors = []
    for index, step in indexed:
        ancestors = upstream_of(step.name, by_name)
        refs: list[tuple[str, ArtifactReference | ItemsFromArtifact]] = [
            (f"{prefix}[{index}].inputFrom[{position}]", ref) for position, ref in enumerate(step.input_from or [])
        ]
        if step.for_each is not None and step.for_each.from_artifact is not None:
            refs.append((f"{prefix}[{index}].forEach.fromArtifact", step.for_each.from_artifact))
        if step.for_each is not None and step.review is not None:
            errors.append(
                FieldError(
                    f"{prefix}[{index}].review",
                    "a forEach step cannot be reviewed item by item: review a step after it that receives the gathered results",
                )
            )
        for here, ref in refs:
            source = by_name.get(ref.task_ref)
            if source is None and ref.task_ref in skipped:
                continue
            if source is None:
                errors.append(FieldError(f"{here}.taskRef", f'unknown step "{ref.task_ref}"{did_you_mean(ref.task_ref, by_name)}'))
            elif ref.task_ref not in ancestors:
                errors.append(
                    FieldError(
                        f"{here}.taskRef",
                        f'step "{ref.task_ref}" does not run before "{step.name}": add it to dependsOn',
                    )
                )
            else:
                declared = [a.name for a in source.artifacts or []]
                if ref.artifact_name not in declared:
                    listing = ", ".join(declared) if declared else "none"
                    errors.append(
                        FieldError(
                            f"{here}.artifactName",
                            f'step "{ref.task_ref}" declares no artifact "{ref.artifact_name}"{did_you_mean(ref.artifact_name, declared)}; it declares: {listing}',
                        )
                    )
    return errors


def upstream_of(name: str, by_name: dict[str, PipelineStep]) -> set[str]:
    """Every step that runs before `name`, directly or through others (the graph is acyclic)."""
    seen: set[str] = set()
    pending = list(by_name[name].depends_on or [])
    while pending:
        current = pending.pop()
        if current in seen or current not in by_name:
            continue
        seen.add(current)
        pending.extend(by_name[current].depends_on or [])
    return seen


def find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A cycle as a closed path ['a', 'b', 'a'], or None; deterministic for stable messages."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in edges:
        if start not in state and (found := visit(start)):
            return found
    return None
