"""Objective strings (the CLI's ``--objective``), Lucid/Lucent style, parsed to objective values.

    _blocks.9:61                    channel 61 of layer _blocks.9 (mean over positions)
    _blocks.9:61@3,4                the neuron of channel 61 at row 3, column 4
    _blocks.9:61@c                  the neuron at the centre
    _blocks.10                      a whole layer's energy (DeepDream)
    class:flamingo  class:130       a class's log-probability (class:"tiger shark" for spaces)
    score:130                       a class's raw score (logit)
    energy(_blocks.10, 5)  channel(L, n)  neuron(L, n, y, x)  class_score(c)  class_log_prob(c)
    NAME(arg, ...)                  an objective from an ``ortviz.objectives`` plugin
    _blocks.9:61 + 0.5*_blocks.12:150 - class:flamingo      sums, differences, numbers, ( )

With a bundle, every term is checked against it while parsing: a bad string is one line naming
the bad token and where it is, with the bundle's layers or the layer's channel count.
"""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

from ortviz.bundle.labels import is_index
from ortviz.objective import algebra
from ortviz.objective.algebra import ObjectiveError
from ortviz.objective.bind import Bound
from ortviz.objective.plugins import BUILT_IN, objective_plugins
from ortviz.objective.positions import POSITIONS, resolve_layer

_NAME = re.compile(r"[^\s:+\-*/()@,\"]+")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT = re.compile(r"\d+")
_IDENT = re.compile(r"[A-Za-z_][\w.-]*(?=\s*\()")


class _Parser:
    def __init__(self, text: str, bundle):
        self.text, self.pos, self.bundle = text, 0, bundle
        self.probe = (SimpleNamespace(bundle=bundle, image_shape=tuple(bundle.input["shape"]))
                      if bundle is not None else None)
        self._plugins = None

    # -- errors point at the token
    def fail(self, msg: str, start: int | None = None):
        start = self.pos if start is None else start
        token = self.text[start:].strip().split()[0] if self.text[start:].strip() else ""
        where = f"at {token[:40]!r} (character {start + 1})" if token else "at the end"
        raise ObjectiveError(f"objective {self.text[:80]!r}: {where}: {msg}")

    def ws(self):
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.ws()
        return self.text[self.pos:self.pos + 1]

    def take(self, pattern: re.Pattern, what: str) -> str:
        self.ws()
        m = pattern.match(self.text, self.pos)
        if not m:
            self.fail(f"expected {what}")
        self.pos = m.end()
        return m.group(0)

    def expect(self, ch: str):
        if self.peek() != ch:
            self.fail(f"expected {ch!r}")
        self.pos += 1

    # -- grammar
    def expr(self) -> algebra.Objective:
        total = None
        sign = 1.0
        if self.peek() in ("+", "-"):
            sign = -1.0 if self.peek() == "-" else 1.0
            self.pos += 1
        while True:
            term = self.term() * sign
            total = term if total is None else total + term
            c = self.peek()
            if c in ("", ")"):
                return total
            if c not in ("+", "-"):
                self.fail("expected + or - between terms")
            sign = -1.0 if c == "-" else 1.0
            self.pos += 1

    def term(self) -> algebra.Objective:
        coef = 1.0
        self.ws()
        m = _NUMBER.match(self.text, self.pos)
        at = self.pos
        if m:
            rest = self.text[m.end():].lstrip()
            if rest.startswith("*"):
                coef = self.number(m.group(0), at)
                self.pos = m.end()
                self.expect("*")
        value = self.scale(self.atom(), coef, at)
        while self.peek() in ("*", "/"):
            op = self.peek()
            self.pos += 1
            self.ws()
            start = self.pos
            k = self.number(self.take(_NUMBER, "a number"), start)
            if op == "/" and k == 0:
                self.fail("division by zero", start)
            value = self.scale(value, k if op == "*" else 1.0 / k, start)
        return value

    def number(self, text: str, start: int) -> float:
        """A weight: finite (``1e400`` is inf as a float, and no objective scales by it)."""
        k = float(text)
        if not math.isfinite(k):
            self.fail(f"the number {text} is too large (it is {k} as a float)", start)
        return k

    def scale(self, value: algebra.Objective, k: float, start: int) -> algebra.Objective:
        """``value * k``; a weight past float32's range (the graphs' weights) fails here."""
        try:
            return value * k
        except (TypeError, OverflowError) as exc:
            self.fail(str(exc), start)

    def atom(self) -> algebra.Objective:
        self.ws()
        start = self.pos
        if self.peek() == "(":
            self.pos += 1
            inner = self.expr()
            self.expect(")")
            return inner
        if self.peek() == "-":
            self.pos += 1
            return -self.atom()
        for prefix, make in (("class:", algebra.class_log_prob), ("score:", algebra.class_score)):
            if self.text.startswith(prefix, self.pos):
                self.pos += len(prefix)
                return self.check(make(self.class_name()), start)
        m = _IDENT.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            return self.call(m.group(0), start)
        layer = self.take(_NAME, "a layer name, class:NAME or a function such as energy(LAYER)")
        if layer in POSITIONS and self.probe is not None:  # early, middle, late of the table
            layer = resolve_layer(self.probe.bundle.layers, layer)
        if self.peek() != ":":
            return self.check(algebra.energy(layer), start)
        self.pos += 1
        n = int(self.take(_INT, "a channel number after ':'"))
        if self.peek() != "@":
            return self.check(algebra.channel(layer, n), start)
        self.pos += 1
        if self.peek() == "c":
            self.pos += 1
            return self.check(algebra.neuron(layer, n), start)
        y = int(self.take(_INT, "a row after '@' (or c for the centre)"))
        x = None
        if self.peek() == ",":
            self.pos += 1
            x = int(self.take(_INT, "a column after ','"))
        return self.check(algebra.neuron(layer, n, y, x), start)

    def class_name(self) -> str:
        self.ws()
        if self.peek() == '"':
            end = self.text.find('"', self.pos + 1)
            if end < 0:
                self.fail("unterminated quoted class name")
            name, self.pos = self.text[self.pos + 1:end], end + 1
        else:  # up to the next operator: '+', '*', '/', ')' or a '-' after a space
            m = re.compile(r"(?:[^+*/()\s-]|-(?!\s)|\s(?![+\-*/)]|\s*$))+").match(self.text, self.pos)
            name = m.group(0).strip() if m else ""
            self.pos = m.end() if m else self.pos
        if not name:
            self.fail("expected a class name or index after 'class:'")
        return name

    def args(self) -> list[str]:
        self.expect("(")
        out = []
        while self.peek() != ")":
            if out:
                self.expect(",")
            self.ws()
            if self.peek() == '"':
                end = self.text.find('"', self.pos + 1)
                if end < 0:
                    self.fail("unterminated quoted argument")
                out.append(self.text[self.pos + 1:end])
                self.pos = end + 1
            else:
                m = re.compile(r"[^,()]+").match(self.text, self.pos)
                if not m or not m.group(0).strip():
                    self.fail("expected an argument")
                out.append(m.group(0).strip())
                self.pos = m.end()
        self.pos += 1
        return out

    def call(self, name: str, start: int) -> algebra.Objective:
        args = self.args()
        try:
            if name in BUILT_IN:
                value = _built_in(name, args)
            else:
                plugin = self.plugins().get(name)
                if plugin is None:
                    known = sorted(BUILT_IN | set(self.plugins()))
                    self.fail(f"unknown objective function {name!r}; known: {', '.join(known)}", start)
                value = plugin.make(*args)
                if not isinstance(value, algebra.Objective):
                    self.fail(f"objective plugin {name} returned {type(value).__name__}, "
                              "not an objective", start)
        except (TypeError, ValueError) as exc:
            self.fail(f"{name}(...): {exc}", start)
        return self.check(value, start)

    def plugins(self) -> dict:
        if self._plugins is None:
            self._plugins = objective_plugins()
        return self._plugins

    def check(self, value: algebra.Objective, start: int) -> algebra.Objective:
        """The term against the bundle now, so the error can point at it."""
        if self.probe is not None:
            try:
                Bound(self.probe, [value])
            except ObjectiveError as exc:
                self.fail(str(exc), start)
        return value


def _built_in(name: str, args: list[str]) -> algebra.Objective:
    def ints(values):
        try:
            return [int(v) for v in values]
        except ValueError:
            raise ValueError(f"expected integers, got {', '.join(values)}") from None

    if name in ("class_score", "class_log_prob"):
        if len(args) != 1:
            raise TypeError("takes one class (name or index)")
        c = int(args[0]) if is_index(args[0]) else args[0]
        return algebra.class_score(c) if name == "class_score" else algebra.class_log_prob(c)
    if not args:
        raise TypeError("needs a layer name first")
    layer, rest = args[0], ints(args[1:])
    limits = {"channel": (1, 1), "neuron": (1, 3), "energy": (0, 1)}[name]
    if not limits[0] <= len(rest) <= limits[1]:
        raise TypeError(f"takes a layer and {limits[0]}..{limits[1]} integers")
    return {"channel": algebra.channel, "neuron": algebra.neuron,
            "energy": algebra.energy}[name](layer, *rest)


def parse(text: str, bundle=None) -> algebra.Objective:
    """An objective string to an objective value, checked against ``bundle`` when given."""
    if not isinstance(text, str) or not text.strip():
        raise ObjectiveError("objective is empty; e.g. _blocks.10:5 or class:flamingo")
    p = _Parser(text, bundle)
    value = p.expr()
    if p.peek() == ")":
        p.fail("unbalanced ')'")
    return value


def parse_slots(text: str, bundle=None) -> list[algebra.Objective]:
    """``A; B; C``: one objective per batch slot."""
    parts = [t for t in text.split(";")]
    if any(not t.strip() for t in parts):
        raise ObjectiveError(f"objective {text[:80]!r}: an empty objective between ';'")
    return [parse(t.strip(), bundle) for t in parts]
