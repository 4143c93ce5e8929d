"""The results page of one pipeline run: every step with its state, attempts, timings, tokens, model
and build, its artifacts rendered, its quality verdict and evidence, and links to its task logs.

Built from what Airflow keeps of the run (its task instances and the steps' XCom results, read
by the plugin) and the pipeline's plan, so it shows the same for a folder source and a cluster
one. Kept free of Airflow so the page is tested without a server.

Everything shown comes from a resource or an agent, so everything is escaped: text artifacts are
shown as text, JSON ones pretty-printed, and Markdown ones rendered by markdown-it with raw HTML
off (it escapes tags and refuses `javascript:` links), never as markup of their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from markdown_it import MarkdownIt

from aistack.agents.client import artifact_body
from aistack.agents.quality import is_verdict
from aistack.agents.usage import describe, run_totals
from aistack.pipelines.plan import PipelinePlan

FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
ENDED_RUN = frozenset({"success", "failed"})
MAX_SHOWN = 100_000  # characters of one artifact on the page; XCom has it whole
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


@dataclass(frozen=True)
class TaskRow:
    """One task instance, as Airflow reports it (mapped ones have their index)."""

    task_id: str
    state: str | None
    try_number: int = 0
    map_index: int = -1
    started: datetime | None = None
    ended: datetime | None = None


@dataclass(frozen=True)
class RunInfo:
    dag_id: str
    run_id: str
    state: str
    started: datetime | None = None
    ended: datetime | None = None


@dataclass
class StepView:
    name: str
    agent: str
    state: str
    attempts: int
    started: datetime | None
    ended: datetime | None
    result: Mapping[str, Any] | None
    tasks: list[str] = field(default_factory=list)  # the Airflow tasks of the step, for their logs

    @property
    def seconds(self) -> float | None:
        return (self.ended - self.started).total_seconds() if self.started and self.ended else None


@dataclass
class RunView:
    namespace: str
    name: str
    run: RunInfo
    steps: list[StepView]
    outputs: list[str] = field(default_factory=list)  # where publish wrote the results

    @property
    def ended(self) -> bool:
        return self.run.state in ENDED_RUN

    @property
    def progress(self) -> str:
        return f"{sum(1 for s in self.steps if s.state in FINISHED)}/{len(self.steps)}"

    @property
    def usage(self) -> dict[str, Any]:
        return run_totals((s.result or {}).get("usage") for s in self.steps)


def step_state(rows: Sequence[TaskRow]) -> str:
    """A step's state over its tasks ([items ->] step [-> review], mapped items): the first that
    has not succeeded, else success; none yet: not started."""
    states = [row.state or "none" for row in rows]
    if not states:
        return "none"
    for state in ("failed", "upstream_failed", "running", "awaiting_input", "deferred", "up_for_retry", "queued", "scheduled", "none", "skipped"):
        if state in states:
            return state
    return states[-1]


@dataclass(frozen=True)
class StepTasks:
    """A step and its Airflow tasks ([items ->] step [-> review]), in that order."""

    name: str
    agent: str
    tasks: tuple[str, ...]


def plan_steps(plan: PipelinePlan) -> list[StepTasks]:
    return [StepTasks(s.task_id, s.agent_ref, tuple(t for t in (s.items_task_id, s.task_id, s.review_task_id) if t)) for s in plan.steps]


def run_view(plan: PipelinePlan, run: RunInfo, tasks: Sequence[TaskRow], results: Mapping[str, Mapping[str, Any] | None]) -> RunView:
    """`results`: each step's result by step name (the reviewed result where there is a review,
    the gathered items of a forEach step)."""
    return RunView(plan.namespace, plan.name, run, step_views(plan_steps(plan), tasks, results))


def step_views(steps: Sequence[StepTasks], tasks: Sequence[TaskRow], results: Mapping[str, Mapping[str, Any] | None]) -> list[StepView]:
    views = []
    for step in steps:
        rows = [row for row in tasks if row.task_id in step.tasks]
        main = [row for row in rows if row.task_id == step.name]
        starts = [row.started for row in rows if row.started]
        ends = [row.ended for row in rows if row.ended]
        views.append(
            StepView(
                name=step.name,
                agent=step.agent,
                state=step_state(rows),
                attempts=max((row.try_number for row in main), default=0),
                started=min(starts) if starts else None,
                ended=max(ends) if ends and len(ends) == len(rows) else None,
                result=results.get(step.name),
                tasks=[task for task in step.tasks if any(row.task_id == task for row in rows)],
            )
        )
    return views


SYMBOLS = {
    "success": "✔",
    "failed": "✖",
    "upstream_failed": "✖",
    "skipped": "○",
    "running": "●",
    "awaiting_input": "⏸",
    "deferred": "◷",
    "up_for_retry": "↻",
    "queued": "◌",
    "scheduled": "◌",
    "none": "◌",
}


def render_text(view: RunView, depth: Mapping[str, int]) -> str:
    """`aistack get`: the run, then its steps as a tree (indented by how many steps come before
    each), with state, attempts, duration, tokens and model; a forEach step counts its items."""
    run, totals = view.run, view.usage
    seconds = (run.ended - run.started).total_seconds() if run.started and run.ended else None
    phase = run.state if view.ended else "running"
    lines = [
        f"{view.namespace}/{view.name}  run {run.run_id}",
        f"  {SYMBOLS.get(run.state, '●') if view.ended else '●'} {phase}  progress {view.progress}"
        + (f"  {seconds:.1f}s" if seconds is not None else "")
        + f"  {totals['totalTokens']:,} tokens ({totals['promptTokens']:,} prompt, {totals['completionTokens']:,} completion)",
        "",
        f"  {'STEP':<28} {'STATE':<16} {'TRIES':>5} {'TIME':>8}  {'TOKENS':>8}  MODEL",
    ]
    for index, step in enumerate(view.steps):
        result = step.result or {}
        usage = result.get("usage") or {}
        branch = "└─" if index == len(view.steps) - 1 else "├─"
        name = "  " * depth.get(step.name, 0) + f"{branch}{SYMBOLS.get(step.state, '●')} {step.name}"
        time_taken = f"{step.seconds:.1f}s" if step.seconds is not None else ""
        tokens = f"{usage['totalTokens']:,}" if usage.get("totalTokens") is not None else ""
        notes = [str(usage.get("model") or "")]
        if result.get("items"):
            failed = sum(1 for item in result["items"] if item.get("state") != "TASK_STATE_COMPLETED")
            notes.append(f"{len(result['items'])} items" + (f", {failed} failed" if failed else ""))
        if result.get("cached"):
            notes.append(f"reused from {result['cached'].get('fromRun')}")
        if result.get("review"):
            notes.append(f"review: {result['review'].get('decision')}")
        lines.append(f"  {name:<28} {step.state:<16} {step.attempts or '':>5} {time_taken:>8}  {tokens:>8}  {'; '.join(n for n in notes if n)}".rstrip())
    return "\n".join(lines)


def render_run(view: RunView, airflow_base: str = "../../../") -> str:
    """The run's page (relative links: it is served under /aistack/runs/<dag>/<run>)."""
    run = view.run
    dag, run_id = quote(run.dag_id, safe=""), quote(run.run_id, safe="")
    airflow_run = f"{airflow_base}dags/{dag}/runs/{run_id}"
    totals = view.usage
    phase = run.state.capitalize() if view.ended else "Running"
    header = [
        f"<h1>{escape(view.namespace)}/{escape(view.name)}</h1>",
        f'<p class="meta">Run <a target="_top" href="{escape(airflow_run)}">{escape(run.run_id)}</a> · '
        f'<span class="state {escape(run.state)}">{escape(phase)}</span> · progress {escape(view.progress)} · '
        f"{totals['totalTokens']:,} tokens ({totals['promptTokens']:,} prompt, {totals['completionTokens']:,} completion) · "
        f"{totals['modelSeconds']:.2f}s in models · {_when(run.started)}{' → ' + _when(run.ended) if run.ended else ''}</p>",
        '<p><a href="../../../">All TaskOrchestrations</a></p>',
    ]
    if view.outputs:
        header.append("<p>Results written to: " + ", ".join(f"<code>{escape(location)}</code>" for location in view.outputs) + "</p>")
    sections = [_step_section(step, airflow_run) for step in view.steps]
    refresh = "" if view.ended else '<meta http-equiv="refresh" content="5">'
    return page(f"{view.name} {run.run_id}", refresh, "\n".join(header + sections))


def _step_section(step: StepView, airflow_run: str) -> str:
    result = step.result or {}
    facts = [f'<span class="state {escape(step.state)}">{escape(step.state)}</span>'] + ([f"agent {escape(step.agent)}"] if step.agent else [])
    if step.attempts:
        facts.append(f"attempt{'s' if step.attempts > 1 else ''} {step.attempts}")
    if step.seconds is not None:
        facts.append(f"{step.seconds:.1f}s")
    if result.get("usage"):
        facts.append(escape(describe({k: v for k, v in result["usage"].items() if k != "attempt"}).removeprefix("usage: ")))
    if result.get("cached"):
        facts.append(f"reused from run {escape(str(result['cached'].get('fromRun')))}")
    if result.get("review"):
        facts.append(f"review: {escape(str(result['review'].get('decision')))}")
    if result.get("taskId"):
        facts.append(f"A2A task <code>{escape(str(result['taskId']))}</code>")
    logs = " ".join(f'<a target="_top" href="{escape(airflow_run)}/tasks/{quote(task, safe="")}">{escape(task)} log</a>' for task in step.tasks)
    parts = [f'<section class="step"><h2>{escape(step.name)}</h2>', f'<p class="meta">{" · ".join(facts)}</p>', f'<p class="logs">{logs}</p>']
    if result.get("items"):
        items = "".join(
            f'<li><span class="state {escape(_item_state(i))}">{escape(_item_state(i))}</span> {escape(str(i.get("label") or i.get("index")))}</li>'
            for i in result["items"]
        )
        parts.append(f'<details><summary>{len(result["items"])} items</summary><ul class="items">{items}</ul></details>')
    for artifact in result.get("artifacts") or ():
        parts.append(_artifact(artifact))
    if result and not result.get("artifacts") and result.get("message"):
        parts.append(f'<pre class="message">{escape(str(result["message"]))}</pre>')
    parts.append("</section>")
    return "\n".join(parts)


def _item_state(item: Mapping[str, Any]) -> str:
    return "success" if item.get("state") == "TASK_STATE_COMPLETED" else "failed"


def _artifact(artifact: Mapping[str, Any]) -> str:
    name, media = escape(str(artifact.get("name"))), escape(str(artifact.get("mediaType")))
    title = f"<h3>{name} <small>{media}</small></h3>"
    if is_verdict(artifact):
        return title + _verdict(artifact["data"])
    text = _bounded(artifact_body(artifact))
    if "data" in artifact:
        return title + f"<pre>{escape(text)}</pre>"
    if str(artifact.get("mediaType")) == "text/markdown":
        return title + f'<div class="markdown">{_MARKDOWN.render(text)}</div>'
    return title + f'<pre class="text">{escape(text)}</pre>'


def _verdict(data: Mapping[str, Any]) -> str:
    passed = bool(data.get("passed"))
    lines = [f'<div class="verdict {"passed" if passed else "failed"}"><strong>{"Passed" if passed else "Did not pass"}</strong>']
    if data.get("score") is not None:
        lines.append(f" · score {escape(str(data['score']))}")
    issues = data.get("issues") or []
    if issues:
        lines.append("<ul>" + "".join(f"<li>{escape(str(issue))}</li>" for issue in issues[:50]) + "</ul>")
    evidence = data.get("evidence")
    if evidence:
        lines.append(f"<details><summary>evidence</summary><pre>{escape(_bounded(json.dumps(evidence, indent=2, ensure_ascii=False)))}</pre></details>")
    lines.append("</div>")
    return "".join(lines)


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + f"\n... (first {MAX_SHOWN:,} of {len(text):,} characters; the whole is in XCom)"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem; color: #1a202c; font-size: 14px; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 0 0 .3rem; } h3 { font-size: .95rem; margin: .8rem 0 .3rem; }
h3 small { color: #718096; font-weight: normal; } .meta { color: #4a5568; margin: .2rem 0 .6rem; } a { color: #2b6cb0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .7rem; border-bottom: 1px solid #e2e8f0; vertical-align: top; }
th { background: #f7fafc; font-weight: 600; }
.step { border: 1px solid #e2e8f0; border-radius: 6px; padding: .8rem 1rem; margin: .8rem 0; }
pre { background: #f7fafc; border: 1px solid #edf2f7; border-radius: 4px; padding: .6rem; white-space: pre-wrap; word-break: break-word; }
.markdown { border-left: 3px solid #e2e8f0; padding-left: .8rem; }
.state { font-weight: 600; } .success, .succeeded, .passed { color: #2f855a; } .failed, .upstream_failed, .invalid { color: #c53030; }
.running, .queued, .scheduled, .awaiting_input, .deferred, .up_for_retry { color: #2b6cb0; } .skipped, .none, .notrun { color: #718096; }
.verdict { border-radius: 4px; padding: .5rem .7rem; } .verdict.passed { background: #f0fff4; } .verdict.failed { background: #fff5f5; }
.stale { color: #c05621; } .source { color: #718096; } .logs a { margin-right: .8rem; }
"""


def page(title: str, head: str, body: str) -> str:
    """A page of the plugin (the list in overview.py, a run here): one style for both."""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(title)}</title>{head}
<style>{STYLE}</style></head>
<body>
{body}
</body></html>
"""
