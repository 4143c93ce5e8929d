"""Go ``text/template``, as far as Ollama model templates use it: parse to reject, execute to render.

An Ollama model's TEMPLATE (the Modelfile line, or ``template`` of ``ollama create``) is Go
``text/template`` source: Ollama parses it when the model is created and executes it for every
request. aistack needs both halves without Go. Validation must refuse, before anything reaches a
cluster, every template Ollama would refuse, with the line, column and problem a user can act on.
The embedded runtime (for machines without Ollama) must render a template to the very bytes
Ollama would send to the model, since a stray newline or a missing space changes what a model
answers. So this module follows Go's own lexer, parser and executor rather than a look-alike
syntax: the trim markers, the variable scoping, the truthiness rules, the built-in functions and
the way Go prints values all behave as in Go.

The data is Python: a mapping plays a Go map (and a struct: ``.Field`` looks the key up), a list or
tuple a slice, ``None`` a nil; ints print as Go ints, floats as Go float64s. Ollama hands a template
structs for its messages and tools, where an unknown field is an error, and a map for the top level,
where it prints ``<no value>``. ``strict_fields`` (the default) makes every unknown field an error,
so a template that reads a variable Ollama never sets (``.Input``) fails loudly instead of sending
``<no value>`` to a model; turned off, every mapping behaves as Ollama's top-level map.

Supported: text, actions, ``{{-``/``-}}`` trimming, comments, ``if``/``else if``/``else``,
``range`` (lists, mappings in key order, ints) with ``else``, ``break`` and ``continue``,
``with``/``else with``/``else``, ``define``/``template``/``block``, variables (``:=``, ``=``,
``$``), fields and chains, parenthesised pipelines, ``|`` pipelines, every literal kind but complex
numbers, and the functions and, or, not, eq, ne, lt, le, gt, ge, len, index, slice, print, printf,
println, html, js, urlquery and Ollama's json and currentDate.
Not supported, and rejected (unknown functions at parse time, like Go) or refused while rendering:
``call``, Ollama's ``toTypeScriptType``, complex constants, calling methods of Python objects.
Known differences from Go, none of which Ollama's templates use: printf's ``%[n]`` argument
indexes, ``%#v`` and the hexadecimal/binary float verbs print as unknown verbs; ``slice`` accepts an
index read straight from a map (Go refuses it); slicing a string inside a UTF-8 sequence gives U+FFFD.

Limits Go does not have: a template runs on the runtime's request path and in `aistack validate`,
so parsing refuses sources over MAX_SOURCE_CHARS, ``fields()`` walks each definition once however
often it is called, and rendering stops with a TemplateError after MAX_RENDER_STEPS steps or
MAX_RENDER_CHARS characters (a ``Budget``), where Go would run for hours or exhaust memory.
"""

from __future__ import annotations

import datetime
import math
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn

__all__ = ["MAX_RENDER_CHARS", "MAX_RENDER_STEPS", "MAX_SOURCE_CHARS", "Budget", "Template", "TemplateError", "parse"]


class TemplateError(ValueError):
    """A template that Go would refuse to parse, or that fails while rendering.

    A ValueError because a bad template is bad input. ``line`` and ``column`` (1-based, counted in
    characters) point into the template source so a CLI or an editor can show the very spot;
    ``reason`` is the message without the position, for callers that print their own location.
    """

    def __init__(self, reason: str, line: int, column: int) -> None:
        super().__init__(f"template line {line}, column {column}: {reason}")
        self.reason = reason
        self.line = line
        self.column = column


MAX_SOURCE_CHARS = 128 * 1024
"""The longest template source ``parse`` accepts, in characters.

Ollama's model templates are a few kilobytes (the largest, with tool calling, under 10 KB), a
TEMPLATE with long written instructions some more; this is ten times that. It bounds the time
parsing and ``fields()`` take, so a template posted to the runtime or written in a manifest cannot
keep a request or a validation busy.
"""

MAX_RENDER_STEPS = 1_000_000
"""The steps one rendering may take: a step is a node executed (text, action, if, range, with,
template call), a range iteration, or a variable looked at.

A conversation takes a few thousand (some 40 per message with llama3's tool template); a 128k-token
context of short messages some hundred thousand. A template whose definitions call the one before
twice doubles its work with every definition (40 of them: 2^40 steps, which Go runs for days); the
budget stops it within a second.
"""

MAX_RENDER_CHARS = 64 * 1024 * 1024
"""The characters one rendering may produce: its output plus the strings its functions take and
return (and the elements of the lists slice copies).

A prompt is at most a context window of text, some hundred kilobytes; this is above the runtime's
default request body limit (32 MiB), so a long prompt is refused for its length by the runtime,
not here. It bounds the memory a template can take with printf widths (Go allows ten million
characters each), variables that double or loops that print.
"""


class Budget:
    """What one prompt's rendering may spend: MAX_RENDER_STEPS steps and MAX_RENDER_CHARS characters.

    Ollama executes a template without .Messages once per exchange of a conversation; passing one
    Budget to every ``render`` of a prompt keeps a long conversation from multiplying the limits.
    """

    def __init__(self, max_steps: int = MAX_RENDER_STEPS, max_chars: int = MAX_RENDER_CHARS) -> None:
        self.max_steps = max_steps
        self.max_chars = max_chars
        self.steps = 0
        self.chars = 0


def parse(source: str, strict_fields: bool = True) -> Template:
    """Parse ``source`` as Go would, raising TemplateError where Go's parser fails.

    ``strict_fields`` decides what rendering does with ``.Name`` missing from a mapping: an error
    naming the field (True, as Ollama's structs behave) or Go's ``<no value>`` (False, as Go maps
    behave).
    """
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(
            f"the template is {len(source)} characters long; at most {MAX_SOURCE_CHARS} are "
            "accepted (model templates are a few kilobytes: move long text into SYSTEM)",
            1,
            1,
        )
    try:
        parser = _Parser(source)
        nodes = parser.parse()
    except RecursionError:
        raise TemplateError("template nested too deeply to parse", 1, 1) from None
    # Ollama's template is named "": {{define ""}} either clashes with the top level or, when the
    # top level is blank, becomes it.
    if "" in parser.defines and _has_content(parser.defines[""]):
        if _has_content(nodes):
            parser.fail(parser.define_pos[""], 'template "" is defined twice (it is the top level)')
        nodes = parser.defines[""]
    parser.defines[""] = nodes
    return Template(source, nodes, parser.defines, strict_fields)


class Template:
    """A parsed template: render it any number of times, or ask which top-level fields it reads."""

    def __init__(self, source: str, nodes: list[Any], defines: dict[str, list[Any]], strict_fields: bool) -> None:
        self.source = source
        self.strict_fields = strict_fields
        self._nodes = nodes
        self._defines = defines

    def render(self, data: Mapping[str, Any], budget: Budget | None = None) -> str:
        """Execute the template with ``data`` as ``.`` and ``$``; TemplateError names the failing action.

        ``budget`` (a fresh Budget when None) is what the rendering may spend; share one between
        the renderings of one prompt.
        """
        state = _Executor(self, data, budget or Budget())
        try:
            state.walk(data, self._nodes)
        except RecursionError:
            raise TemplateError("template nested too deeply to render", 1, 1) from None
        return "".join(state.out)

    def fields(self) -> set[str]:
        """The top-level names read as ``.Name`` or ``$.Name``, to spot variables Ollama never sets.

        Fields read inside ``range`` or ``with`` bodies (``.Role`` of a message) belong to another
        value and are left out; ``$.Name`` anywhere is the root's.
        """
        return _template_fields(self._nodes, self._defines)

    def __repr__(self) -> str:
        preview = self.source if len(self.source) <= 40 else self.source[:40] + "..."
        return f"Template({preview!r})"


# --------------------------------------------------------------------------------------------
# Positions and quoting shared by the three stages


def _error(source: str, offset: int, reason: str) -> TemplateError:
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return TemplateError(reason, line, column)


def _go_quote(text: str, quote: str = '"') -> str:
    """strconv.Quote: the form Go uses in its messages and printf's %q."""
    out = [quote]
    for ch in text:
        code = ord(ch)
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append(quote)
    return "".join(out)


_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _rune(ch: str) -> str:
    """Go's %#U, used when the lexer meets a character it cannot use."""
    code = f"U+{ord(ch):04X}"
    return code + " " + _go_quote(ch, "'") if ch.isprintable() else code


# --------------------------------------------------------------------------------------------
# Lexer: the source as text runs and the tokens inside {{ }}, with Go's trimming already applied

_SPACE = " \t\r\n"
_TERMINATORS = _SPACE + ".,|:()"
_KEYWORDS = frozenset({"block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"})

# token kinds
_TEXT, _LEFT, _RIGHT, _BLANK, _EOF = "text", "left", "right", "space", "eof"
_FIELD, _VARIABLE, _DOT, _IDENT, _KEYWORD = "field", "variable", "dot", "identifier", "keyword"
_BOOL, _NIL, _NUMBER, _CHAR_CONST, _STRING, _RAW_STRING = "bool", "nil", "number", "char", "string", "raw"
_DECLARE, _ASSIGN, _PIPE, _LPAREN, _RPAREN, _CHAR = ":=", "=", "|", "(", ")", "punctuation"
_OPERAND_START = frozenset({_BOOL, _CHAR_CONST, _DOT, _FIELD, _IDENT, _NUMBER, _NIL, _RAW_STRING, _STRING, _VARIABLE, _LPAREN})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    value: str
    pos: int
    end: int

    def describe(self) -> str:
        if self.kind == _EOF:
            return "EOF"
        text = self.value if len(self.value) <= 20 else self.value[:20] + "..."
        return _go_quote(text)


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdecimal()


class _Lexer:
    def __init__(self, source: str) -> None:
        self.src = source
        self.tokens: list[_Token] = []

    def fail(self, pos: int, reason: str) -> NoReturn:
        raise _error(self.src, pos, reason)

    def emit(self, kind: str, pos: int, end: int) -> None:
        self.tokens.append(_Token(kind, self.src[pos:end], pos, end))

    def run(self) -> list[_Token]:
        src, pos = self.src, 0
        while True:
            left = src.find("{{", pos)
            if left < 0:
                if pos < len(src):
                    self.emit(_TEXT, pos, len(src))
                break
            # "{{- " trims the text before it; the marker needs the blank so "{{-3}}" stays a number.
            trim = src.startswith("-", left + 2) and left + 3 < len(src) and src[left + 3] in _SPACE
            text_end = pos + len(src[pos:left].rstrip(_SPACE)) if trim else left
            if text_end > pos:
                self.emit(_TEXT, pos, text_end)
            inner = left + (4 if trim else 2)
            if src.startswith("/*", inner):
                pos = self.comment(left, inner)
            else:
                self.emit(_LEFT, left, left + 2)
                pos = self.action(left, inner)
        self.tokens.append(_Token(_EOF, "", len(src), len(src)))
        return self.tokens

    def right_delim(self, i: int) -> tuple[bool, bool, int]:
        """Whether "}}" or " -}}" starts at i, whether it trims, and where it ends."""
        src = self.src
        if src.startswith("}}", i):
            return True, False, i + 2
        if i < len(src) and src[i] in _SPACE and src.startswith("-}}", i + 1):
            return True, True, i + 4
        return False, False, i

    def skip_space(self, i: int) -> int:
        while i < len(self.src) and self.src[i] in _SPACE:
            i += 1
        return i

    def comment(self, left: int, inner: int) -> int:
        close = self.src.find("*/", inner + 2)
        if close < 0:
            self.fail(left, "unclosed comment")
        is_delim, trim, end = self.right_delim(close + 2)
        if not is_delim:
            self.fail(close + 2, "comment ends before closing delimiter")
        return self.skip_space(end) if trim else end

    def action(self, left: int, i: int) -> int:
        src, n = self.src, len(self.src)
        depth = 0
        while True:
            is_delim, trim, end = self.right_delim(i)
            if is_delim:
                if depth:
                    self.fail(i, "unclosed left paren")
                self.emit(_RIGHT, i, end)
                return self.skip_space(end) if trim else end
            if i >= n:
                self.fail(left, 'unclosed action: no "}}" before the end of the template')
            ch, start = src[i], i
            if ch in _SPACE:
                i = self.skip_space(i)
                if src.startswith("-}}", i):
                    i -= 1  # that blank belongs to the " -}}" marker
                if i > start:
                    self.emit(_BLANK, start, i)
                continue
            if ch == "=":
                kind, i = _ASSIGN, i + 1
            elif ch == ":":
                if not src.startswith(":=", i):
                    self.fail(i, 'expected ":="')
                kind, i = _DECLARE, i + 2
            elif ch == "|":
                kind, i = _PIPE, i + 1
            elif ch == '"':
                kind, i = _STRING, self.quoted(i, '"', "unterminated quoted string")
            elif ch == "'":
                kind, i = _CHAR_CONST, self.quoted(i, "'", "unterminated character constant")
            elif ch == "`":
                close = src.find("`", i + 1)
                if close < 0:
                    self.fail(i, "unterminated raw quoted string")
                kind, i = _RAW_STRING, close + 1
            elif ch == "$":
                kind, i = _VARIABLE, self.word(i + 1)
            elif ch == "." and i + 1 < n and not "0" <= src[i + 1] <= "9":
                i = self.word(i + 1)
                kind = _DOT if i == start + 1 else _FIELD
            elif ch in "+-." or "0" <= ch <= "9":
                kind, i = _NUMBER, self.number(i)
            elif _is_alnum(ch):
                i = self.word(i)
                word = src[start:i]
                if word in _KEYWORDS:
                    kind = _KEYWORD
                elif word in ("true", "false"):
                    kind = _BOOL
                else:
                    kind = _NIL if word == "nil" else _IDENT
            elif ch == "(":
                kind, i, depth = _LPAREN, i + 1, depth + 1
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    self.fail(i, "unexpected right paren")
                kind, i = _RPAREN, i + 1
            elif ch.isascii() and ch.isprintable():
                kind, i = _CHAR, i + 1
            else:
                self.fail(i, f"unrecognized character in action: {_rune(ch)}")
            self.emit(kind, start, i)

    def word(self, i: int) -> int:
        src = self.src
        while i < len(src) and _is_alnum(src[i]):
            i += 1
        if i < len(src) and src[i] not in _TERMINATORS and not src.startswith("}}", i):
            self.fail(i, f"bad character {_rune(src[i])}")
        return i

    def quoted(self, start: int, quote: str, unterminated: str) -> int:
        src, i = self.src, start + 1
        while True:
            if i >= len(src) or src[i] == "\n":
                self.fail(start, unterminated)
            if src[i] == "\\":
                i += 1
                if i >= len(src) or src[i] == "\n":
                    self.fail(start, unterminated)
            elif src[i] == quote:
                return i + 1
            i += 1

    def number(self, start: int) -> int:
        """Scan what Go's lexer takes for a number; its value is checked by the parser."""
        src, n = self.src, len(self.src)

        def run(i: int, allowed: str) -> int:
            while i < n and src[i] in allowed:
                i += 1
            return i

        i = start + 1 if src[start] in "+-" else start
        digits, exponent = "0123456789_", "eE"
        if src.startswith(("0x", "0X"), i):
            digits, exponent, i = "0123456789abcdefABCDEF_", "pP", i + 2
        elif src.startswith(("0o", "0O"), i):
            digits, exponent, i = "01234567_", "", i + 2
        elif src.startswith(("0b", "0B"), i):
            digits, exponent, i = "01_", "", i + 2
        i = run(i, digits)
        if i < n and src[i] == ".":
            i = run(i + 1, digits)
        if exponent and i < n and src[i] in exponent:
            i += 1
            if i < n and src[i] in "+-":
                i += 1
            i = run(i, "0123456789_")
        if i < n and src[i] == "i":
            i += 1
        if i < n and (_is_alnum(src[i]) or src[i] in "+-"):
            self.fail(start, f"bad number syntax: {_go_quote(src[start : i + 1])}")
        return i


# --------------------------------------------------------------------------------------------
# Literals: Go's rules for numbers, strings and character constants


def _number_value(text: str) -> int | float:
    lower = text.lower()
    body = lower[1:] if lower[0] in "+-" else lower
    negative = lower[0] == "-"
    hexadecimal = body.startswith("0x")
    if body.endswith("i"):
        raise ValueError(f"complex numbers are not supported: {_go_quote(text)}")
    is_float = ("." in body or "p" in body) if hexadecimal else ("." in body or "e" in body)
    try:
        if is_float:
            value: int | float = float.fromhex(body) if hexadecimal else float(body)
            return -value if negative else value
        if len(body) > 1 and body[0] == "0" and body[1] not in "xob":
            value = int(body, 8)  # a leading 0 means octal in Go
        else:
            value = int(body, 0)
    except ValueError:
        raise ValueError(f"illegal number syntax: {_go_quote(text)}") from None
    value = -value if negative else value
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"integer overflow: {_go_quote(text)}")
    return value


_ESCAPE_VALUES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def _escape(body: str, i: int, quote: str) -> tuple[bool, int, int]:
    """Decode the escape whose letter is body[i]: (is a raw byte, value, index after it)."""
    letter = body[i] if i < len(body) else ""
    if not letter:
        raise ValueError("unfinished escape sequence")
    if letter in _ESCAPE_VALUES:
        return False, _ESCAPE_VALUES[letter], i + 1
    if letter == quote:
        return False, ord(letter), i + 1
    if letter in ("x", "u", "U"):
        size = {"x": 2, "u": 4, "U": 8}[letter]
        digits = body[i + 1 : i + 1 + size]
        if len(digits) != size or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise ValueError(f"invalid escape \\{letter}{digits}")
        value = int(digits, 16)
        if letter != "x" and (value > 0x10FFFF or 0xD800 <= value < 0xE000):
            raise ValueError(f"invalid escape \\{letter}{digits}: not a Unicode code point")
        return letter == "x", value, i + 1 + size
    if letter in "01234567":
        digits = body[i : i + 3]
        if len(digits) != 3 or any(d not in "01234567" for d in digits) or int(digits, 8) > 255:
            raise ValueError(f"invalid escape \\{digits}")
        return True, int(digits, 8), i + 3
    raise ValueError(f"unknown escape sequence \\{letter}")


def _string_value(text: str) -> str:
    if text[0] == "`":
        return text[1:-1].replace("\r", "")  # Go drops carriage returns from raw strings
    body, out, i = text[1:-1], bytearray(), 0
    while i < len(body):
        if body[i] != "\\":
            out += body[i].encode("utf-8", "replace")
            i += 1
            continue
        try:
            raw_byte, value, i = _escape(body, i + 1, '"')
        except ValueError as exc:
            raise ValueError(f"invalid string {text}: {exc}") from None
        out += bytes([value]) if raw_byte else chr(value).encode("utf-8", "replace")
    return out.decode("utf-8", "replace")


def _char_value(text: str) -> int:
    body = text[1:-1]
    try:
        if body.startswith("\\"):
            _, value, end = _escape(body, 1, "'")
        else:
            value, end = (ord(body[0]), 1) if body else (0, -1)
    except ValueError:
        end = -1
    if end != len(body):
        raise ValueError(f"malformed character constant: {text}")
    return value


# --------------------------------------------------------------------------------------------
# Parser: tokens to a small node tree, with Go's parse-time checks


@dataclass(slots=True)
class _Text:
    pos: int
    text: str


@dataclass(slots=True)
class _Field:  # .A.B
    pos: int
    end: int
    names: tuple[str, ...]


@dataclass(slots=True)
class _Variable:  # $x or $x.A.B
    pos: int
    end: int
    name: str
    names: tuple[str, ...]


@dataclass(slots=True)
class _Dot:
    pos: int
    end: int


@dataclass(slots=True)
class _Nil:
    pos: int
    end: int


@dataclass(slots=True)
class _Constant:  # a bool, number or string literal
    pos: int
    end: int
    value: Any


@dataclass(slots=True)
class _Identifier:  # a function name
    pos: int
    end: int
    name: str


@dataclass(slots=True)
class _Chain:  # (pipeline).A.B
    pos: int
    end: int
    node: Any
    names: tuple[str, ...]


@dataclass(slots=True)
class _Command:
    pos: int
    end: int
    args: list[Any]


@dataclass(slots=True)
class _Pipe:
    pos: int
    end: int
    decls: tuple[str, ...]
    is_assign: bool
    cmds: list[_Command]


@dataclass(slots=True)
class _Action:  # pos/end span the whole {{ }}, for error messages
    pos: int
    end: int
    pipe: _Pipe


@dataclass(slots=True)
class _Branch:  # if, with or range
    keyword: str
    pos: int
    end: int
    pipe: _Pipe
    body: list[Any]
    else_body: list[Any] | None


@dataclass(slots=True)
class _Break:
    pos: int


@dataclass(slots=True)
class _Continue:
    pos: int


@dataclass(slots=True)
class _Call:  # {{template "name" pipeline}}
    pos: int
    end: int
    name: str
    pipe: _Pipe | None


@dataclass(slots=True)
class _End:  # parser-internal: the {{end}} closing a list
    pos: int


@dataclass(slots=True)
class _Else:  # parser-internal: the {{else}} splitting a list
    pos: int
    left: int


class _Parser:
    def __init__(self, source: str) -> None:
        self.src = source
        self.tokens = _Lexer(source).run()
        self.i = 0
        self.vars = ["$"]
        self.range_depth = 0
        self.defines: dict[str, list[Any]] = {}
        self.define_pos: dict[str, int] = {}

    def fail(self, pos: int, reason: str) -> NoReturn:
        raise _error(self.src, pos, reason)

    # The token stream, with Go's look-ahead helpers.
    def next(self) -> _Token:
        token = self.tokens[min(self.i, len(self.tokens) - 1)]
        self.i += 1
        return token

    def peek(self) -> _Token:
        return self.tokens[min(self.i, len(self.tokens) - 1)]

    def next_non_space(self) -> _Token:
        token = self.next()
        while token.kind == _BLANK:
            token = self.next()
        return token

    def peek_non_space(self) -> _Token:
        token = self.next_non_space()
        self.i -= 1
        return token

    def last_end(self) -> int:
        return self.tokens[self.i - 1].end

    def unexpected(self, token: _Token, context: str) -> NoReturn:
        self.fail(token.pos, f"unexpected {token.describe()} in {context}")

    def expect(self, kind: str, context: str) -> _Token:
        token = self.next_non_space()
        if token.kind != kind:
            self.unexpected(token, context)
        return token

    # Lists of nodes.
    def parse(self) -> list[Any]:
        nodes: list[Any] = []
        while self.peek().kind != _EOF:
            if self.peek().kind == _LEFT:
                mark = self.i
                self.next()
                keyword = self.next_non_space()
                if keyword.kind == _KEYWORD and keyword.value == "define":
                    self.define(keyword)
                    continue
                self.i = mark
            node = self.text_or_action()
            if isinstance(node, _End):
                self.fail(node.pos, 'unexpected "end" (no open block)')
            if isinstance(node, _Else):
                self.fail(node.pos, 'unexpected "else" (no open if, with or range)')
            nodes.append(node)
        return nodes

    def item_list(self, opener: _Token) -> tuple[list[Any], _End | _Else]:
        nodes: list[Any] = []
        while self.peek_non_space().kind != _EOF:
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                return nodes, node
            nodes.append(node)
        line = self.src.count("\n", 0, opener.pos) + 1
        self.fail(opener.pos, f'unexpected EOF: "{opener.value}" opened at line {line} is never closed')

    def text_or_action(self) -> Any:
        token = self.next_non_space()
        if token.kind == _TEXT:
            return _Text(token.pos, token.value)
        if token.kind == _LEFT:
            return self.action(token)
        self.unexpected(token, "input")

    def action(self, left: _Token) -> Any:
        token = self.next_non_space()
        if token.kind == _KEYWORD:
            keyword = token.value
            if keyword in ("if", "with", "range"):
                return self.control(left.pos, token, keyword, token)
            if keyword in ("break", "continue"):
                after = self.next_non_space()
                if after.kind != _RIGHT:
                    self.unexpected(after, "{{" + keyword + "}}")
                if self.range_depth == 0:
                    self.fail(token.pos, f"{{{{{keyword}}}}} outside {{{{range}}}}")
                return _Break(token.pos) if keyword == "break" else _Continue(token.pos)
            if keyword == "else":
                # "else if" / "else with": leave the keyword for control() to chain on.
                follower = self.peek_non_space()
                if not (follower.kind == _KEYWORD and follower.value in ("if", "with")):
                    self.expect(_RIGHT, "else")
                return _Else(token.pos, left.pos)
            if keyword == "end":
                self.expect(_RIGHT, "end")
                return _End(token.pos)
            if keyword in ("template", "block"):
                return self.template_call(left.pos, token)
            self.fail(token.pos, 'unexpected "define": templates can only be defined at the top level')
        self.i -= 1
        pipe = self.pipeline("command", _RIGHT)
        return _Action(left.pos, self.last_end(), pipe)

    def control(self, left: int, keyword: _Token, context: str, opener: _Token) -> _Branch:
        # Variables declared in the pipeline or the branches live until the matching {{end}}.
        nvars = len(self.vars)
        pipe = self.pipeline(context, _RIGHT)
        end = self.last_end()
        if context == "range":
            self.range_depth += 1
        body, closer = self.item_list(opener)
        if context == "range":
            self.range_depth -= 1
        else_body = None
        if isinstance(closer, _Else):
            follower = self.peek()
            if follower.kind == _KEYWORD and follower.value in ("if", "with"):
                if follower.value != context:
                    self.fail(follower.pos, f'"else {follower.value}" is not allowed in a "{context}" block')
                self.next()
                # {{else if b}}...{{end}} is {{else}}{{if b}}...{{end}}{{end}}: one {{end}} closes both.
                else_body = [self.control(closer.left, follower, context, opener)]
            else:
                else_body, closer = self.item_list(opener)
                if isinstance(closer, _Else):
                    self.fail(closer.pos, f'unexpected second "else" in "{context}" (expected "end")')
        del self.vars[nvars:]
        return _Branch(context, left, end, pipe, body, else_body)

    def template_call(self, left: int, keyword: _Token) -> _Call:
        context = f"{keyword.value} clause"
        name_token = self.next_non_space()
        if name_token.kind not in (_STRING, _RAW_STRING):
            self.unexpected(name_token, context)
        name = self.string(name_token)
        if keyword.value == "block":
            pipe: _Pipe | None = self.pipeline(context, _RIGHT)
            end = self.last_end()
            self.register(name, self.definition(keyword), keyword.pos)
            return _Call(left, end, name, pipe)
        pipe = None
        if self.next_non_space().kind != _RIGHT:
            self.i -= 1
            pipe = self.pipeline(context, _RIGHT)
        return _Call(left, self.last_end(), name, pipe)

    def define(self, keyword: _Token) -> None:
        name_token = self.next_non_space()
        if name_token.kind not in (_STRING, _RAW_STRING):
            self.unexpected(name_token, "define clause")
        self.expect(_RIGHT, "define clause")
        self.register(self.string(name_token), self.definition(keyword), keyword.pos)

    def definition(self, opener: _Token) -> list[Any]:
        # A definition is a template of its own: only $ is in scope, and no range encloses it.
        saved = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        body, closer = self.item_list(opener)
        if isinstance(closer, _Else):
            self.fail(closer.pos, f'unexpected "else" in "{opener.value}"')
        self.vars, self.range_depth = saved
        return body

    def register(self, name: str, body: list[Any], pos: int) -> None:
        if self.defines.get(name) and _has_content(body):
            self.fail(pos, f"template {_go_quote(name)} is defined twice")
        if not self.defines.get(name) or _has_content(body):
            self.defines[name] = body
            self.define_pos[name] = pos

    # Pipelines and their operands.
    def pipeline(self, context: str, end_kind: str) -> _Pipe:
        start = self.peek_non_space()
        decls: list[str] = []
        is_assign = False
        while self.peek_non_space().kind == _VARIABLE:
            mark = self.i
            variable = self.next_non_space()
            after = self.peek_non_space()
            if after.kind in (_DECLARE, _ASSIGN):
                self.next_non_space()
                is_assign = after.kind == _ASSIGN
                decls.append(variable.value)
                self.vars.append(variable.value)
                break
            if after.kind == _CHAR and after.value == ",":
                self.next_non_space()
                decls.append(variable.value)
                self.vars.append(variable.value)
                if context == "range" and len(decls) < 2:
                    if self.peek_non_space().kind in (_VARIABLE, _RIGHT, _RPAREN):
                        continue
                    self.fail(after.pos, "range can only initialize variables")
                self.fail(after.pos, f"too many declarations in {context}")
            self.i = mark
            break
        cmds: list[_Command] = []
        while True:
            token = self.next_non_space()
            if token.kind == end_kind:
                if not cmds:
                    self.fail(token.pos, f"missing value for {context}")
                for stage, cmd in enumerate(cmds[1:], start=2):
                    if isinstance(cmd.args[0], (_Constant, _Dot, _Nil)):
                        self.fail(cmd.pos, f"non executable command in pipeline stage {stage}")
                return _Pipe(start.pos, cmds[-1].end, tuple(decls), is_assign, cmds)
            if token.kind not in _OPERAND_START:
                self.unexpected(token, context)
            self.i -= 1
            cmds.append(self.command())

    def command(self) -> _Command:
        start = self.peek_non_space()
        args: list[Any] = []
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                args.append(operand)
            token = self.next()
            if token.kind == _BLANK:
                continue
            if token.kind in (_RIGHT, _RPAREN):
                self.i -= 1
            elif token.kind != _PIPE:
                self.unexpected(token, "operand")
            break
        if not args:
            self.fail(start.pos, "empty command")
        return _Command(start.pos, args[-1].end, args)

    def operand(self) -> Any:
        node = self.term()
        if node is None or self.peek().kind != _FIELD:
            return node
        names: list[str] = []
        end = node.end
        while self.peek().kind == _FIELD:
            token = self.next()
            names.append(token.value[1:])
            end = token.end
        if isinstance(node, _Field):
            return _Field(node.pos, end, node.names + tuple(names))
        if isinstance(node, _Variable):
            return _Variable(node.pos, end, node.name, node.names + tuple(names))
        if isinstance(node, (_Constant, _Nil, _Dot)):
            self.fail(node.pos, f"unexpected . after term {_go_quote(self.src[node.pos : node.end])}")
        return _Chain(node.pos, end, node, tuple(names))

    def term(self) -> Any:
        token = self.next_non_space()
        kind, pos, end = token.kind, token.pos, token.end
        if kind == _IDENT:
            if token.value not in _FUNCTIONS:
                self.fail(pos, f"function {_go_quote(token.value)} not defined")
            return _Identifier(pos, end, token.value)
        if kind == _DOT:
            return _Dot(pos, end)
        if kind == _NIL:
            return _Nil(pos, end)
        if kind == _VARIABLE:
            if token.value not in self.vars:
                self.fail(pos, f"undefined variable {_go_quote(token.value)}")
            return _Variable(pos, end, token.value, ())
        if kind == _FIELD:
            return _Field(pos, end, (token.value[1:],))
        if kind == _BOOL:
            return _Constant(pos, end, token.value == "true")
        if kind in (_NUMBER, _CHAR_CONST):
            try:
                value = _char_value(token.value) if kind == _CHAR_CONST else _number_value(token.value)
            except ValueError as exc:
                self.fail(pos, str(exc))
            return _Constant(pos, end, value)
        if kind in (_STRING, _RAW_STRING):
            return _Constant(pos, end, self.string(token))
        if kind == _LPAREN:
            pipe = self.pipeline("parenthesized pipeline", _RPAREN)
            pipe.pos, pipe.end = pos, self.last_end()
            return pipe
        self.i -= 1
        return None

    def string(self, token: _Token) -> str:
        try:
            return _string_value(token.value)
        except ValueError as exc:
            self.fail(token.pos, str(exc))


def _has_content(body: list[Any]) -> bool:
    """Go lets an empty (blank-only) definition be replaced silently; only two real ones clash."""
    return any(not (isinstance(node, _Text) and not node.text.strip()) for node in body)


# --------------------------------------------------------------------------------------------
# Values: how Go sees and prints the Python data


class _NoValue:
    """Go's invalid reflect.Value: what a pipeline yields for nil. Prints "<no value>"; unlike a nil
    read straight from a map, asking it for a field gives "<no value>" again instead of failing."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE = _NoValue()
_NO_FINAL = object()  # a command that is first in its pipeline: no value is piped into it


def _go_type(value: Any) -> str:
    if value is None or value is _NO_VALUE:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    return type(value).__name__


def _truth(value: Any) -> bool:
    if value is None or value is _NO_VALUE:
        return False
    if isinstance(value, (bool, int, float)):
        return value != 0
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value) > 0
    return True


def _sorted_items(mapping: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """Go visits and prints maps in key order."""
    try:
        return sorted(mapping.items(), key=lambda item: item[0])
    except TypeError:
        return sorted(mapping.items(), key=lambda item: (type(item[0]).__name__, str(item[0])))


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest digits that round-trip (as Go and Python both choose) and the decimal point's place."""
    _, digits, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    return text.rstrip("0") or "0", len(digits) + exponent


def _plain_decimal(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _format_float(value: float) -> str:
    """Go's %v of a float64: the shortest digits, in exponent form below 1e-4 and from 1e6 on."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    digits, point = _shortest_digits(value)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:  # what Go's %v (strconv 'g', shortest) does
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return sign + _plain_decimal(digits, point)


def _format_value(value: Any) -> str:
    """fmt's %v of one value, as print, println and a nested element show it."""
    if value is None or value is _NO_VALUE:
        return "<nil>"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{_format_value(k)}:{_format_value(v)}" for k, v in _sorted_items(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_format_value(item) for item in value) + "]"
    return str(value)


def _print_action(value: Any) -> str:
    """What {{ pipeline }} writes: a nil is "<no value>" there, unlike inside print."""
    if value is None or value is _NO_VALUE:
        return "<no value>"
    if isinstance(value, str):
        return value
    return _format_value(value)


# --------------------------------------------------------------------------------------------
# printf: the fmt verbs templates use, with Go's flags and its in-band error notes


@dataclass(slots=True)
class _Spec:
    room: int  # the characters the rest of the printf result may have
    minus: bool = False
    plus: bool = False
    space: bool = False
    zero: bool = False
    sharp: bool = False
    width: int | None = None
    precision: int | None = None


_MAX_WIDTH = 1_000_000
"""fmt's tooLarge: a width or precision from an argument beyond a million is refused
(%!(BADWIDTH), %!(BADPREC)); one written in the format that grows past it ends the format."""


def _too_long(limit: int) -> _CallError:
    return _CallError(f"the result is longer than the {limit} characters left to this rendering")


def _format_number(template: str, i: int) -> tuple[int | None, int]:
    """fmt's parsenum: the width or precision written at ``i`` (None when there is none) and where it ends.

    Like Go it gives up on a number already past _MAX_WIDTH before another digit, consuming the rest
    of the format, which then ends in %!(NOVERB).
    """
    n, start, value = len(template), i, 0
    while i < n and "0" <= template[i] <= "9":
        if value > _MAX_WIDTH:
            return None, n
        value = value * 10 + ord(template[i]) - ord("0")
        i += 1
    return (value if i > start else None), i


def _sprintf(template: str, args: Sequence[Any], limit: int) -> str:
    """fmt.Sprintf, refusing (a _CallError) a result longer than ``limit`` characters."""
    out: list[str] = []
    n, i, argi, size = len(template), 0, 0, 0

    def put(text: str) -> None:
        nonlocal size
        size += len(text)
        if size > limit:
            raise _too_long(limit)
        out.append(text)

    def int_arg() -> int | None:
        """fmt's intFromArg: the next argument as a width or precision; None when it is no int or too large."""
        nonlocal argi
        if argi >= len(args):
            return None
        value = args[argi]
        argi += 1
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _MAX_WIDTH:
            return None
        return value

    while i < n:
        percent = template.find("%", i)
        if percent < 0:
            put(template[i:])
            break
        put(template[i:percent])
        i = percent + 1
        spec = _Spec(room=limit - size)
        while i < n and template[i] in "#0+- ":
            flag = template[i]
            if flag == "#":
                spec.sharp = True
            elif flag == "0":
                spec.zero = not spec.minus
            elif flag == "+":
                spec.plus = True
            elif flag == "-":
                spec.minus, spec.zero = True, False
            else:
                spec.space = True
            i += 1
        if i < n and template[i] == "*":
            i += 1
            spec.width = int_arg()
            if spec.width is None:
                put("%!(BADWIDTH)")
            elif spec.width < 0:
                spec.width, spec.minus, spec.zero = -spec.width, True, False
        else:
            spec.width, i = _format_number(template, i)
        if i + 1 < n and template[i] == ".":  # a "." ending the format is the verb (Go: "%." is %!.(int=3))
            i += 1
            if template[i] == "*":
                i += 1
                precision = int_arg()
                spec.precision = precision if precision is not None and precision >= 0 else None
                if spec.precision is None:
                    put("%!(BADPREC)")
            else:
                precision, i = _format_number(template, i)
                spec.precision = precision or 0  # "%.d" has precision 0
        if i >= n:
            put("%!(NOVERB)")
            break
        verb = template[i]
        i += 1
        if verb == "%":
            put("%")
        elif argi >= len(args):
            put(f"%!{verb}(MISSING)")
        else:
            put(_format_arg(args[argi], verb, spec, nested=False))
            argi += 1
    if argi < len(args):
        extras = ("<nil>" if a is None else f"{_go_type(a)}={_format_value(a)}" for a in args[argi:])
        put("%!(EXTRA " + ", ".join(extras) + ")")
    return "".join(out)


def _join_elements(parts: Iterable[str], spec: _Spec) -> str:
    """A list's or a map's formatted elements, space-separated, refused once longer than the room
    left: a width or precision applies to every element, so a long list multiplies it."""
    kept: list[str] = []
    size = 0
    for part in parts:
        size += len(part) + 1
        if size > spec.room:
            raise _too_long(spec.room)
        kept.append(part)
    return " ".join(kept)


def _pad(text: str, spec: _Spec, zero: bool = False) -> str:
    if spec.width is None or len(text) >= spec.width:
        return text
    fill = spec.width - len(text)
    if spec.minus:
        return text + " " * fill
    return ("0" if zero else " ") * fill + text


def _bad_verb(value: Any, verb: str, spec: _Spec) -> str:
    """Go's note for a verb that does not fit the value, e.g. %!d(string=hi); the flags still apply."""
    if value is None or value is _NO_VALUE:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({_go_type(value)}={_format_arg(value, 'v', spec, nested=False)})"


def _format_arg(value: Any, verb: str, spec: _Spec, nested: bool) -> str:
    if value is None or value is _NO_VALUE:
        return _pad("<nil>", spec) if nested or verb in "vT" else _bad_verb(value, verb, spec)
    if verb == "T":
        return _pad(_go_type(value), spec)
    if value is True or value is False:
        return _pad("true" if value else "false", spec) if verb in "tv" else _bad_verb(value, verb, spec)
    if isinstance(value, int):
        return _format_int(value, verb, spec)
    if isinstance(value, float):
        return _format_float_verb(value, verb, spec)
    if isinstance(value, str):
        return _format_str(value, verb, spec)
    if isinstance(value, Mapping):
        parts = (f"{_format_arg(k, verb, spec, True)}:{_format_arg(v, verb, spec, True)}" for k, v in _sorted_items(value))
        return "map[" + _join_elements(parts, spec) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + _join_elements((_format_arg(item, verb, spec, True) for item in value), spec) + "]"
    return _pad(str(value), spec) if verb in "vs" else _bad_verb(value, verb, spec)


def _format_str(value: str, verb: str, spec: _Spec) -> str:
    if spec.precision is not None:
        value = value[: spec.precision]
    if verb in "vs":
        return _pad(value, spec)
    if verb == "q":
        return _pad(_go_quote(value), spec)
    if verb in "xX":
        text = value.encode("utf-8", "replace").hex()
        return _pad(text.upper() if verb == "X" else text, spec)
    return _bad_verb(value, verb, spec)


def _rune_text(value: int) -> str:
    """The character of a code point as Go writes a rune: U+FFFD for a surrogate or a value out of range."""
    return chr(value) if 0 <= value <= 0x10FFFF and not 0xD800 <= value < 0xE000 else "\ufffd"


def _format_int(value: int, verb: str, spec: _Spec) -> str:
    if verb == "c":
        return _pad(_rune_text(value), spec)
    if verb == "q":
        return _pad(_go_quote(_rune_text(value), "'"), spec)
    if verb == "U":
        return _pad(f"U+{value & 0xFFFFFFFFFFFFFFFF:04X}", spec)  # Go formats the int as a uint64
    bases = {"v": ("d", ""), "d": ("d", ""), "b": ("b", "0b"), "o": ("o", "0"), "O": ("o", "0o"), "x": ("x", "0x"), "X": ("X", "0X")}
    if verb not in bases:
        return _bad_verb(value, verb, spec)
    code, prefix = bases[verb]
    digits = format(abs(value), code)
    if not spec.sharp and verb != "O":
        prefix = ""
    sign = "-" if value < 0 else "+" if spec.plus else " " if spec.space else ""
    if spec.precision is not None:
        digits = "" if spec.precision == 0 and value == 0 else digits.zfill(spec.precision)
    elif spec.zero and spec.width is not None and not spec.minus:
        digits = digits.zfill(spec.width - len(sign))
    return _pad(sign + prefix + digits, spec)


def _format_float_verb(value: float, verb: str, spec: _Spec) -> str:
    negative = math.copysign(1.0, value) < 0
    magnitude = abs(value)
    precision = spec.precision
    if math.isnan(value) or math.isinf(value):
        text = "NaN" if math.isnan(value) else "Inf"
        sign = "" if math.isnan(value) and not (spec.plus or spec.space) else "-" if negative else "+"
        if sign == "+" and spec.space and not spec.plus:
            sign = " "
        return _pad(sign + text, spec)
    if verb in "vgG":
        if precision is None:
            body = _format_float(magnitude)
        else:
            body = format(magnitude, f".{max(precision, 1)}g")
        if verb == "G":
            body = body.upper()
    elif verb in "eE":
        body = format(magnitude, f".{6 if precision is None else precision}{verb}")
    elif verb in "fF":
        body = format(magnitude, f".{6 if precision is None else precision}f")
    else:
        return _bad_verb(value, verb, spec)
    sign = "-" if negative else "+" if spec.plus else " " if spec.space else ""
    if spec.zero and not spec.minus and spec.width is not None:
        return sign + body.rjust(spec.width - len(sign), "0")
    return _pad(sign + body, spec)


def _sprint(args: Sequence[Any]) -> str:
    """fmt.Sprint: a space only between two operands when neither is a string."""
    out: list[str] = []
    previous_string = False
    for index, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if index and not is_string and not previous_string:
            out.append(" ")
        out.append(_format_value(arg))
        previous_string = is_string
    return "".join(out)


# --------------------------------------------------------------------------------------------
# The functions a template may call


class _CallError(Exception):
    """A function refused its arguments; reported as Go does, "error calling NAME: ..."."""


def _basic_kind(value: Any) -> str | None:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return None


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise _CallError("missing argument for comparison")
    first_kind = _basic_kind(first)
    for other in others:
        other_kind = _basic_kind(other)
        if first_kind != other_kind:
            if first is not None and other is not None:
                raise _CallError("incompatible types for comparison")
            equal = False
        elif first_kind is None:
            for side in (first, other):
                if isinstance(side, (list, tuple, Mapping)):
                    raise _CallError(f"non-comparable type {_format_value(side)}: {_go_type(side)}")
            equal = first == other
        else:
            equal = first_kind == "nil" or first == other
        if equal:
            return True
    return False


def _ne(first: Any, second: Any) -> bool:
    return not _eq(first, second)


def _lt(first: Any, second: Any) -> bool:
    first_kind, second_kind = _basic_kind(first), _basic_kind(second)
    if first_kind in (None, "nil") or second_kind in (None, "nil"):
        raise _CallError("invalid type for comparison")
    if first_kind != second_kind:
        raise _CallError("incompatible types for comparison")
    if first_kind == "bool":
        raise _CallError("invalid type for comparison")
    return bool(first < second)


def _le(first: Any, second: Any) -> bool:
    return _lt(first, second) or _eq(first, second)


def _gt(first: Any, second: Any) -> bool:
    return not _le(first, second)


def _ge(first: Any, second: Any) -> bool:
    return not _lt(first, second)


def _not(value: Any) -> bool:
    return not _truth(value)


def _len(value: Any) -> int:
    if value is None:
        raise _CallError("len of nil pointer")
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))  # Go counts bytes
    if isinstance(value, (list, tuple, Mapping)):
        return len(value)
    raise _CallError(f"len of type {_go_type(value)}")


def _index_arg(index: Any, limit: int) -> int:
    if index is None:
        raise _CallError("cannot index slice/array with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise _CallError(f"cannot index slice/array with type {_go_type(index)}")
    if index < 0 or index > limit:
        raise _CallError(f"index out of range: {index}")
    return index


def _index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise _CallError("index of untyped nil")
    for index in indexes:
        if item is None:
            raise _CallError("index of nil pointer")
        if isinstance(item, str):
            data = item.encode("utf-8", "surrogatepass")
            item = data[_index_arg(index, len(data) - 1)]  # a byte, as in Go
        elif isinstance(item, (list, tuple)):
            item = item[_index_arg(index, len(item) - 1)]
        elif isinstance(item, Mapping):
            if index is None:
                raise _CallError("value is nil; should be of type string")
            first_key = next(iter(item), "")
            if isinstance(first_key, str) and not isinstance(index, str):
                raise _CallError(f"value has type {_go_type(index)}; should be string")
            item = item.get(index)
        else:
            raise _CallError(f"can't index item of type {_go_type(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise _CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise _CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise _CallError("cannot 3-index slice a string")
        sequence: Any = item.encode("utf-8", "surrogatepass")
    elif isinstance(item, (list, tuple)):
        sequence = item
    else:
        raise _CallError(f"can't slice item of type {_go_type(item)}")
    bounds = [0, len(sequence)]
    for position, index in enumerate(indexes):
        value = _index_arg(index, len(sequence))
        if position < 2:
            bounds[position] = value
        elif bounds[1] > value:
            raise _CallError(f"invalid slice index: {bounds[1]} > {value}")
    if bounds[0] > bounds[1]:
        raise _CallError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    part = sequence[bounds[0] : bounds[1]]
    return part.decode("utf-8", "replace") if isinstance(part, bytes) else list(part)


def _join_args(args: Sequence[Any]) -> str:
    """How html, js and urlquery turn their arguments into one string (Go's evalArgs)."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return _sprint(["<no value>" if arg is None else arg for arg in args])


_SURROGATE = re.compile("[\ud800-\udfff]")
_HTML_ESCAPES = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_JS_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def _html(*args: Any) -> str:
    return "".join(_HTML_ESCAPES.get(ch, ch) for ch in _join_args(args))


def _js(*args: Any) -> str:
    out = []
    for ch in _join_args(args):
        if ch in _JS_ESCAPES:
            out.append(_JS_ESCAPES[ch])
        elif ch < " " or (ord(ch) >= 0x80 and not ch.isprintable()):
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    # A Python string can hold a lone surrogate (JSON's "\ud800"); Go's JSON decoding makes it U+FFFD.
    return urllib.parse.quote_plus(_SURROGATE.sub("\ufffd", _join_args(args)), safe="")


class _NotJSON(Exception):
    pass


_JSON_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _json_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_value(value: Any) -> str:
    if value is None or value is _NO_VALUE:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise _NotJSON
        sign = "-" if math.copysign(1.0, value) < 0 else ""
        if value == 0:
            return sign + "0"
        digits, point = _shortest_digits(value)
        if 1e-6 <= abs(value) < 1e21:
            return sign + _plain_decimal(digits, point)
        exponent = point - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent) if exponent < 0 else f'{exponent:02d}'}"
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_json_string(k)}:{_json_value(v)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json_value(item) for item in value) + "]"
    raise _NotJSON


def _json(value: Any) -> str:
    """Ollama's json: Go's json.Marshal (compact, sorted keys, <>& escaped); "" when it fails, as there."""
    try:
        return _json_value(value)
    except _NotJSON:
        return ""


def _current_date(*_layout: str) -> str:
    """Ollama's currentDate: today as 2006-01-02; Ollama ignores any argument."""
    return datetime.date.today().strftime("%Y-%m-%d")


def _unused(*_args: Any) -> Any:  # and/or are evaluated lazily by the executor
    raise AssertionError("unreachable")


_VALUE, _STR = "value", "string"


@dataclass(frozen=True, slots=True)
class _Function:
    impl: Callable[..., Any]
    fixed: tuple[str, ...] = ()  # the kinds of the fixed parameters
    variadic: str | None = None  # the kind of the remaining ones, None when there are none
    lazy: bool = False
    bounded: bool = False  # called with limit=: the characters its result may have (printf's widths multiply)


_FUNCTIONS: dict[str, _Function] = {
    "and": _Function(_unused, (_VALUE,), _VALUE, lazy=True),
    "or": _Function(_unused, (_VALUE,), _VALUE, lazy=True),
    "not": _Function(_not, (_VALUE,)),
    "eq": _Function(_eq, (_VALUE,), _VALUE),
    "ne": _Function(_ne, (_VALUE, _VALUE)),
    "lt": _Function(_lt, (_VALUE, _VALUE)),
    "le": _Function(_le, (_VALUE, _VALUE)),
    "gt": _Function(_gt, (_VALUE, _VALUE)),
    "ge": _Function(_ge, (_VALUE, _VALUE)),
    "len": _Function(_len, (_VALUE,)),
    "index": _Function(_index, (_VALUE,), _VALUE),
    "slice": _Function(_slice, (_VALUE,), _VALUE),
    "print": _Function(lambda *args: _sprint(args), (), _VALUE),
    "printf": _Function(lambda template, *args, limit: _sprintf(template, args, limit), (_STR,), _VALUE, bounded=True),
    "println": _Function(lambda *args: " ".join(map(_format_value, args)) + "\n", (), _VALUE),
    "html": _Function(_html, (), _VALUE),
    "js": _Function(_js, (), _VALUE),
    "urlquery": _Function(_urlquery, (), _VALUE),
    "json": _Function(_json, (_VALUE,)),
    "currentDate": _Function(_current_date, (), _STR),
}


# --------------------------------------------------------------------------------------------
# Executor: walks the tree with Go's variable stack and evaluation rules

_MAX_TEMPLATE_DEPTH = 100


class _BreakLoop(Exception):
    pass


class _ContinueLoop(Exception):
    pass


class _Executor:
    def __init__(self, template: Template, data: Any, budget: Budget) -> None:
        self.template = template
        self.strict = template.strict_fields
        self.budget = budget
        self.out: list[str] = []
        self.vars: list[list[Any]] = [["$", data]]
        self.depth = 0
        self.action: Any = None  # the {{ }} being executed
        self.node: Any = None  # the part of it being evaluated

    def fail(self, reason: str) -> NoReturn:
        source = self.template.source
        where = self.node if self.node is not None else self.action
        context = ""
        if self.action is not None:
            context = "executing " + _shorten(source[self.action.pos : self.action.end])
            if self.node is not None:
                context += f" at <{_shorten(source[self.node.pos : self.node.end])}>"
            context += ": "
        raise _error(source, where.pos if where is not None else 0, context + reason)

    # The budget.
    def step(self, count: int = 1) -> None:
        budget = self.budget
        budget.steps += count
        if budget.steps > budget.max_steps:
            self.fail(
                f"template rendering exceeded {budget.max_steps} steps, far more than any prompt takes: "
                "look for a range or {{template}} calls that repeat without end"
            )

    def spend(self, chars: int) -> None:
        budget = self.budget
        budget.chars += chars
        if budget.chars > budget.max_chars:
            self.fail(
                f"template rendering produced more than {budget.max_chars} characters (output and function "
                "results), far more than any prompt: look for a loop, repeated {{template}} calls or a "
                "huge printf width"
            )

    def emit(self, text: str) -> None:
        self.spend(len(text))
        self.out.append(text)

    def walk(self, dot: Any, nodes: list[Any]) -> None:
        for node in nodes:
            self.step()
            kind = type(node)
            if kind is _Text:
                self.emit(node.text)
            elif kind is _Action:
                self.action, self.node = node, None
                value = self.pipeline(dot, node.pipe)
                if not node.pipe.decls:  # an action that declares a variable prints nothing
                    self.emit(_print_action(value))
            elif kind is _Branch:
                if node.keyword == "range":
                    self.walk_range(dot, node)
                else:
                    self.walk_if_or_with(dot, node)
            elif kind is _Break:
                raise _BreakLoop
            elif kind is _Continue:
                raise _ContinueLoop
            else:
                self.call_template(dot, node)

    def walk_if_or_with(self, dot: Any, node: _Branch) -> None:
        mark = len(self.vars)
        self.action, self.node = node, None
        value = self.pipeline(dot, node.pipe)
        if _truth(value):
            self.walk(value if node.keyword == "with" else dot, node.body)
        elif node.else_body is not None:
            self.walk(dot, node.else_body)
        del self.vars[mark:]

    def walk_range(self, dot: Any, node: _Branch) -> None:
        mark = len(self.vars)
        self.action, self.node = node, None
        pipe = node.pipe
        value = self.pipeline(dot, pipe)
        body_mark = len(self.vars)
        ran = False
        for key, element in self.range_items(value, node):
            self.step()
            ran = True
            if pipe.is_assign:
                self.set_var(pipe.decls[0], key if len(pipe.decls) > 1 else element)
                if len(pipe.decls) > 1:
                    self.set_var(pipe.decls[1], element)
            elif pipe.decls:
                # The pipeline pushed its variables; the last is the element, the one before the key.
                self.vars[body_mark - 1][1] = element
                if len(pipe.decls) > 1:
                    self.vars[body_mark - 2][1] = key
            try:
                self.walk(element, node.body)
            except _ContinueLoop:
                pass
            except _BreakLoop:
                del self.vars[body_mark:]
                break
            del self.vars[body_mark:]
        if not ran and node.else_body is not None:
            self.walk(dot, node.else_body)
        del self.vars[mark:]

    def range_items(self, value: Any, node: _Branch) -> Iterable[tuple[Any, Any]]:
        if value is None or value is _NO_VALUE:
            return ()
        if isinstance(value, (list, tuple)):
            return enumerate(value)
        if isinstance(value, Mapping):
            return _sorted_items(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decls) > 1:
                self.node = node.pipe
                self.fail(f"can't use {value} to iterate over more than one variable")
            return ((i, i) for i in range(value))
        self.node = node.pipe
        self.fail(f"range can't iterate over {_format_value(value)}")

    def call_template(self, dot: Any, node: _Call) -> None:
        self.action, self.node = node, None
        body = self.template._defines.get(node.name)
        if body is None:
            self.fail(f"template {_go_quote(node.name)} not defined")
        value = self.pipeline(dot, node.pipe) if node.pipe is not None else _NO_VALUE
        if self.depth >= _MAX_TEMPLATE_DEPTH:
            self.fail(f"exceeded maximum template depth ({_MAX_TEMPLATE_DEPTH})")
        saved_vars, self.vars = self.vars, [["$", value]]
        self.depth += 1
        self.walk(value, body)
        self.depth -= 1
        self.vars = saved_vars

    # Variables.
    def var_value(self, name: str) -> Any:
        self.step(len(self.vars))  # the lookup scans them
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        self.fail(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        self.step(len(self.vars))
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        self.fail(f"undefined variable: {name}")

    # Pipelines, commands and operands.
    def pipeline(self, dot: Any, pipe: _Pipe) -> Any:
        value: Any = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)  # each result is the next command's last argument
            if value is None:
                value = _NO_VALUE
        for name in pipe.decls:
            if pipe.is_assign:
                self.set_var(name, value)
            else:
                self.vars.append([name, value])
        return value

    def command(self, dot: Any, cmd: _Command, final: Any) -> Any:
        first = cmd.args[0]
        kind = type(first)
        if kind is _Field:
            return self.field_chain(dot, first, first.names, cmd.args, final)
        if kind is _Variable:
            return self.variable(dot, first, cmd.args, final)
        if kind is _Identifier:
            return self.call(dot, first, cmd, cmd.args, final)
        if kind is _Chain:
            return self.chain(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if kind is _Pipe:
            return self.pipeline(dot, first)
        if kind is _Dot:
            return dot
        if kind is _Nil:
            self.fail("nil is not a command")
        return first.value

    def not_a_function(self, args: list[Any], final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            source = self.template.source
            self.fail(f"can't give argument to non-function {source[args[0].pos : args[0].end]}")

    def field_chain(self, receiver: Any, node: Any, names: tuple[str, ...], args: Sequence[Any], final: Any) -> Any:
        self.node = node
        for name in names[:-1]:
            receiver = self.field(name, (), _NO_FINAL, receiver)
        return self.field(names[-1], args, final, receiver)

    def field(self, name: str, args: Sequence[Any], final: Any, receiver: Any) -> Any:
        if receiver is _NO_VALUE:
            return _NO_VALUE
        if receiver is None:
            self.fail(f"nil pointer evaluating interface {{}}.{name}")
        has_args = len(args) > 1 or final is not _NO_FINAL
        if isinstance(receiver, Mapping):
            if has_args:
                self.fail(f"{name} is not a method but has arguments")
            try:
                return receiver[name]
            except KeyError:
                if self.strict:
                    self.fail(f"can't evaluate field {name}: {_describe_keys(name, receiver)}")
                return None
        if not isinstance(receiver, (str, bytes, int, float, list, tuple)) and not name.startswith("_"):
            value = getattr(receiver, name, _NO_FINAL)
            if value is not _NO_FINAL:
                if callable(value):
                    self.fail(f"{name} is a method of {_go_type(receiver)}; methods can't be called")
                if has_args:
                    self.fail(f"{name} is not a method but has arguments")
                return value
        self.fail(f"can't evaluate field {name} in type {_go_type(receiver)}")

    def variable(self, dot: Any, node: _Variable, args: Sequence[Any], final: Any) -> Any:
        self.node = node
        value = self.var_value(node.name)
        if not node.names:
            self.not_a_function(list(args), final)
            return value
        return self.field_chain(value, node, node.names, args, final)

    def chain(self, dot: Any, node: _Chain, args: Sequence[Any], final: Any) -> Any:
        self.node = node
        if type(node.node) is _Nil:
            self.fail(f"indirection through explicit nil in {self.template.source[node.pos : node.end]}")
        value = self.operand(dot, node.node)
        self.node = node
        return self.field_chain(value, node, node.names, args, final)

    def operand(self, dot: Any, node: Any) -> Any:
        """An argument's value, as Go's evalArg computes it before handing it to a function."""
        self.node = node
        kind = type(node)
        if kind is _Field:
            return self.field_chain(dot, node, node.names, (node,), _NO_FINAL)
        if kind is _Variable:
            return self.variable(dot, node, (node,), _NO_FINAL)
        if kind is _Pipe:
            return self.pipeline(dot, node)
        if kind is _Identifier:
            return self.call(dot, node, node, (node,), _NO_FINAL)
        if kind is _Chain:
            return self.chain(dot, node, (node,), _NO_FINAL)
        if kind is _Dot:
            return dot
        if kind is _Nil:
            return None
        return node.value

    def argument(self, dot: Any, node: Any, kind: str) -> Any:
        if kind == _STR and type(node) is _Nil:
            self.node = node
            self.fail("cannot assign nil to string")
        return self.check_kind(self.operand(dot, node), kind, node)

    def check_kind(self, value: Any, kind: str, node: Any) -> Any:
        if value is _NO_VALUE:
            value = None
        if kind == _STR and not isinstance(value, str):
            self.node = node
            self.fail(f"wrong type for value; expected string; got {_go_type(value)}")
        return value

    def call(self, dot: Any, ident: _Identifier, cmd: Any, args: Sequence[Any], final: Any) -> Any:
        name = ident.name
        function = _FUNCTIONS[name]
        self.node = cmd
        given = len(args) - 1 + (final is not _NO_FINAL)
        fixed = len(function.fixed)
        if function.variadic is None and given != fixed:
            self.fail(f"wrong number of args for {name}: want {fixed} got {given}")
        if given < fixed:
            self.fail(f"wrong number of args for {name}: want at least {fixed} got {given}")
        operands = args[1:]
        if function.lazy:
            # and/or stop at the first value that decides, and return that value itself.
            wanted = name == "or"
            value = None
            for operand in operands:
                value = self.operand(dot, operand)
                if _truth(value) == wanted:
                    return value
            return final if final is not _NO_FINAL else value
        values = []
        for position, operand in enumerate(operands):
            kind = function.fixed[position] if position < fixed else function.variadic
            values.append(self.argument(dot, operand, kind or _VALUE))
        if final is not _NO_FINAL:
            position = len(operands)
            kind = function.fixed[position] if position < fixed else function.variadic
            values.append(self.check_kind(final, kind or _VALUE, cmd))
        self.node = cmd
        self.spend(sum(len(value) for value in values if isinstance(value, str)))  # len, eq, slice... read them
        budget = self.budget
        try:
            if function.bounded:
                result = function.impl(*values, limit=budget.max_chars - budget.chars)
            else:
                result = function.impl(*values)
        except _CallError as exc:
            self.fail(f"error calling {name}: {exc}")
        if isinstance(result, (str, list)):
            self.spend(len(result))  # a list is slice's copy: an element counts as a character
        return result


def _shorten(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _describe_keys(name: str, mapping: Mapping[Any, Any]) -> str:
    keys = sorted(str(key) for key in mapping)
    if not keys:
        return f"no key {_go_quote(name)} in an empty mapping"
    shown = ", ".join(keys[:20]) + (", ..." if len(keys) > 20 else "")
    return f"no key {_go_quote(name)} in the mapping (its keys: {shown})"


# --------------------------------------------------------------------------------------------
# fields(): which top-level names a template reads


def _template_fields(nodes: list[Any], defines: dict[str, list[Any]]) -> set[str]:
    """The root fields read by ``nodes`` and the definitions they call.

    A definition reads the root's fields only when it is called with the root as its dot, so it is
    walked once for each of the two ways it can be entered, however often and however deeply it is
    called: linear in the template's size where following every call is exponential (definitions
    that each call the one before twice). A work list instead of recursion lets a chain of
    thousands of definitions be walked too.
    """
    found: set[str] = set()
    entered = {("", True)}  # the top level is the definition "" (see parse)
    pending: list[tuple[list[Any], bool]] = [(nodes, True)]
    while pending:
        body, is_root = pending.pop()
        calls: list[tuple[str, bool]] = []
        _collect_fields(body, is_root, is_root, found, calls)
        for call in calls:
            if call[0] in defines and call not in entered:
                entered.add(call)
                pending.append((defines[call[0]], call[1]))
    return found


def _collect_fields(nodes: list[Any], dot_is_root: bool, dollar_is_root: bool, found: set[str], calls: list[tuple[str, bool]]) -> None:
    """Add the root fields ``nodes`` read to ``found``, and the templates they call (with whether
    the root is passed) to ``calls``."""
    for node in nodes:
        kind = type(node)
        if kind is _Action:
            _collect_pipe(node.pipe, dot_is_root, dollar_is_root, found)
        elif kind is _Branch:
            _collect_pipe(node.pipe, dot_is_root, dollar_is_root, found)
            # if keeps the dot; with and range move it to another value (their else keeps it).
            _collect_fields(node.body, dot_is_root and node.keyword == "if", dollar_is_root, found, calls)
            if node.else_body is not None:
                _collect_fields(node.else_body, dot_is_root, dollar_is_root, found, calls)
        elif kind is _Call:
            passes_root = False
            if node.pipe is not None:
                _collect_pipe(node.pipe, dot_is_root, dollar_is_root, found)
                only = node.pipe.cmds[0].args if len(node.pipe.cmds) == 1 else []
                if len(only) == 1:
                    arg = only[0]
                    passes_root = (type(arg) is _Dot and dot_is_root) or (type(arg) is _Variable and arg.name == "$" and not arg.names and dollar_is_root)
            calls.append((node.name, passes_root))


def _collect_pipe(pipe: _Pipe, dot_is_root: bool, dollar_is_root: bool, found: set[str]) -> None:
    for cmd in pipe.cmds:
        for arg in cmd.args:
            _collect_operand(arg, dot_is_root, dollar_is_root, found)


def _collect_operand(node: Any, dot_is_root: bool, dollar_is_root: bool, found: set[str]) -> None:
    kind = type(node)
    if kind is _Field and dot_is_root:
        found.add(node.names[0])
    elif kind is _Variable and node.name == "$" and node.names and dollar_is_root:
        found.add(node.names[0])
    elif kind is _Chain:
        _collect_operand(node.node, dot_is_root, dollar_is_root, found)
    elif kind is _Pipe:
        _collect_pipe(node, dot_is_root, dollar_is_root, found)
