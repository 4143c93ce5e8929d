"""The `aistack` command line."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from aistack import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    return int(args.handler(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aistack", description="Multi-agent LLM workflows on Kubernetes and Airflow.")
    parser.add_argument("--version", action="version", version=f"aistack {__version__}")
    commands = parser.add_subparsers(title="commands")

    validate = commands.add_parser("validate", help="check manifests of the three aistack kinds")
    validate.add_argument("paths", nargs="+", type=Path, help="YAML files or folders (searched recursively)")
    validate.add_argument(
        "--external-refs",
        action="store_true",
        help="do not resolve agentRef and modelDefinition among the files (they live in the cluster)",
    )
    validate.set_defaults(handler=_validate)

    crds = commands.add_parser("crds", help="CustomResourceDefinition manifests")
    crd_commands = crds.add_subparsers(title="crds commands")
    generate = crd_commands.add_parser("generate", help="write crds/ and docs/resources.md from the models")
    generate.add_argument("--root", type=Path, default=Path("."), help="repository root (default: .)")
    generate.add_argument("--check", action="store_true", help="write nothing; fail if the files are out of date")
    generate.set_defaults(handler=_crds_generate)
    return parser


def _validate(args: argparse.Namespace) -> int:
    from aistack.validation import validate_paths

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"aistack validate: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    result = validate_paths(args.paths, check_references=not args.external_refs)
    for problem in result.problems:
        for line in problem.lines():
            print(line)
    counts = Counter(resource.kind for _, resource in result.resources)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"
    skipped = f"; skipped {len(result.skipped)} other Kubernetes objects" if result.skipped else ""
    if result.ok:
        print(f"ok: {len(result.resources)} valid resources ({summary}){skipped}")
        return 0
    print(f"{len(result.problems)} invalid documents; {len(result.resources)} valid resources ({summary}){skipped}")
    return 1


def _crds_generate(args: argparse.Namespace) -> int:
    from aistack.crds import generated_files, write_generated

    if args.check:
        stale = [p for p, text in generated_files(args.root).items() if not p.exists() or p.read_text() != text]
        for path in stale:
            print(f"out of date: {path} (run `aistack crds generate`)", file=sys.stderr)
        return 1 if stale else 0
    changed = write_generated(args.root)
    for path in changed:
        print(f"wrote {path}")
    if not changed:
        print("up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
