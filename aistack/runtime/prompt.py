"""The prompt a chat or generate request turns into, as Ollama builds it.

Messages first: the system prompt (the request's own system messages, else the model's
SYSTEM), then the model's MESSAGEs, then the request's messages (for /api/generate: the
request's `system` or the model's SYSTEM, the MESSAGEs, and the prompt as a user message).

Then the template. A model with a custom TEMPLATE renders it with `aistack.gotemplate`
exactly as Ollama's `template.Execute` does: a template that reads `.Messages` is executed
once over all messages (`.System` = the system messages joined, `.Prompt` = the last user
message, `.Response` empty); any other template is executed once per exchange with `.System`,
`.Prompt` and `.Response`, and the last execution stops where `.Response` is printed, so the
model continues from there. A model without one uses its GGUF's own chat template
(`tokenizer.chat_template`, Jinja) through llama-cpp-python's formatter. `raw` skips all this.
A model whose base was substituted (AISTACK_BASE_MODELS) renders its TEMPLATE inside the
substitute's chat template instead (`inside_chat`), and says so in /api/show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aistack.gotemplate import Budget
from aistack.runtime.errors import ApiError

# The top-level names Ollama puts in a template's data; anything else is an error at create time.
TEMPLATE_FIELDS = frozenset({"System", "Prompt", "Response", "Messages", "Tools", "Suffix", "Think", "ThinkLevel", "IsThinkSet"})

_RESPONSE_MARK = "\u0000aistack:response\u0000"


@dataclass(frozen=True)
class Message:
    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def chat_messages(system: str | None, model_messages: Sequence[Mapping[str, str]], request: Sequence[Message]) -> list[Message]:
    """The conversation a chat request runs: system, the model's MESSAGEs, the request's turns.

    The request's leading system messages replace the model's SYSTEM and stay in front, so a
    chat template sees the system prompt first even when the model has example MESSAGEs.
    """
    leading = 0
    while leading < len(request) and request[leading].role == "system":
        leading += 1
    head = list(request[:leading])
    if not any(m.role == "system" for m in request) and system:
        head = [Message("system", system)]
    examples = [Message(m["role"], m["content"]) for m in model_messages]
    return head + examples + list(request[leading:])


def generate_messages(system: str | None, model_messages: Sequence[Mapping[str, str]], prompt: str, with_examples: bool = True) -> list[Message]:
    messages = [Message("system", system)] if system else []
    if with_examples:
        messages += [Message(m["role"], m["content"]) for m in model_messages]
    return messages + [Message("user", prompt)]


def check_template_fields(template: Any) -> None:
    """Reject at create time a template reading a field Ollama never sets (e.g. `.Input`)."""
    unknown = sorted(template.fields() - TEMPLATE_FIELDS)
    if unknown:
        names = ", ".join(f".{name}" for name in unknown)
        known = ", ".join(f".{name}" for name in sorted(TEMPLATE_FIELDS))
        hint = " (aistack's .Input is Ollama's .Prompt)" if "Input" in unknown else ""
        raise ApiError(400, f"invalid template: it reads {names}, which Ollama never sets{hint}; it sets {known}")


def render_template(template: Any, messages: Sequence[Message]) -> str:
    """Ollama's template.Execute over a parsed aistack.gotemplate Template.

    Every execution for the prompt shares one rendering budget, so a conversation of many
    exchanges cannot multiply what a template may spend.
    """
    budget = Budget()
    system, collated = _collate(messages)
    last_user = next((m.content for m in reversed(collated) if m.role == "user"), "")
    if "Messages" in template.fields():
        return template.render(
            _data(
                System=system,
                Prompt=last_user,
                Messages=[_message_data(m) for m in collated],
            ),
            budget,
        )
    out: list[str] = []
    system, prompt, response = "", "", ""
    for message in collated:
        if message.role == "system":
            if prompt or response:
                out.append(template.render(_data(System=system, Prompt=prompt, Response=response), budget))
                system, prompt, response = "", "", ""
            system = message.content
        elif message.role == "user":
            if response:
                out.append(template.render(_data(System=system, Prompt=prompt, Response=response), budget))
                system, prompt, response = "", "", ""
            prompt = message.content
        elif message.role == "assistant":
            response = message.content
    last = template.render(_data(System=system, Prompt=prompt, Response=response + _RESPONSE_MARK), budget)
    cut = last.find(_RESPONSE_MARK)
    out.append(last[:cut] if cut >= 0 else last)
    return "".join(out)


def inside_chat(template: Any, messages: Sequence[Message]) -> list[Message]:
    """The conversation for a model whose base model was substituted: its system prompt, then one
    user turn holding what the custom template renders without the system prompt.

    A TEMPLATE written for the base a manifest names (`from: llama2`) carries that model's prompt
    format, not the substitute's, and a small chat model given a bare completion prompt answers
    much worse (measured in bench/pipeline_quality.py). So the template's text keeps its words and
    the substitute's own chat template supplies the markup. Without substitution, templates are
    rendered exactly as Ollama does.
    """
    system, _ = _collate(messages)
    body = render_template(template, [m for m in messages if m.role != "system"])
    return ([Message("system", system)] if system else []) + [Message("user", body.strip())]


def render_chat_template(chat_template: str, bos_token: str, eos_token: str, messages: Sequence[Message]) -> str:
    """The GGUF's Jinja chat template, with the generation prompt for the assistant's turn."""
    formatter = _formatter(chat_template, bos_token, eos_token)
    return formatter(messages=[m.as_dict() for m in messages]).prompt


def render_plain(messages: Sequence[Message]) -> str:
    """For a GGUF without a chat template: Ollama's default `{{ .System }} {{ .Prompt }}`."""
    system, collated = _collate(messages)
    prompt = next((m.content for m in reversed(collated) if m.role == "user"), "")
    return f"{system}\n\n{prompt}" if system else prompt


_FORMATTERS: dict[tuple[str, str, str], Any] = {}


def _formatter(chat_template: str, bos_token: str, eos_token: str) -> Any:
    key = (chat_template, bos_token, eos_token)
    formatter = _FORMATTERS.get(key)
    if formatter is None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(template=chat_template, eos_token=eos_token, bos_token=bos_token)
        _FORMATTERS[key] = formatter
    return formatter


def _collate(messages: Sequence[Message]) -> tuple[str, list[Message]]:
    """Ollama's collate: system messages joined, consecutive messages of one role merged."""
    system: list[str] = []
    collated: list[Message] = []
    for message in messages:
        if message.role == "system":
            system.append(message.content)
        if collated and collated[-1].role == message.role and message.role != "tool":
            collated[-1] = Message(message.role, collated[-1].content + "\n\n" + message.content)
        else:
            collated.append(message)
    return "\n\n".join(system), collated


def _data(**values: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "System": "",
        "Prompt": "",
        "Response": "",
        "Messages": [],
        "Tools": [],
        "Suffix": "",
        "Think": False,
        "ThinkLevel": "",
        "IsThinkSet": False,
    }
    data.update(values)
    return data


def _message_data(message: Message) -> dict[str, Any]:
    return {
        "Role": message.role,
        "Content": message.content,
        "Thinking": "",
        "Images": [],
        "ToolCalls": [],
        "ToolName": "",
    }
