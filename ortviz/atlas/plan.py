"""The atlas's plan: which pictures to make, as work units.

A work unit is one picture: its kind (``channel``, ``class``, ``dream``, ``inversion``, and
for a channel where asked ``negative`` and ``diversity``), the
technique that makes it (looked up by name among the installed plugins, run through the public
Python API, so the atlas does not care how it is built), that technique's full parameters
(defaults filled in, then ``--iterations`` and ``--set``), its objective or target, its seed and
where its image goes in the site. Everything is checked here, before any work: an unknown layer,
channel, class or parameter, or a missing technique, is one line.

Selections (the CLI's ``--channels`` and ``--classes``): ``all``; a single number ``N`` (channels:
the first N; classes: N classes spread evenly over the label space); or a comma list of numbers
and ranges ``0-7,12`` (classes may also be named: ``flamingo,goldfish``). ``0`` or ``none``: none.

What a channel's page shows besides its picture (``--negative``, ``--diversity K``; both off by
default, so the default atlas costs what it did): the negative picture (the channel descended),
and a diversity set of K pictures of it that differ (one run of feature visualization with
``diversity=K``, one unit per picture: ``variant`` 0..K-1).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from ortviz.bundle.embedded import models_dir
from ortviz.bundle.labels import LabelError, find_class, is_index
from ortviz.errors import UsageError
from ortviz.techniques.registry import techniques as installed_techniques
from ortviz.techniques.spec import ParamError

CHANNEL_TECHNIQUE = "feature-visualization"
KIND_TECHNIQUE = {"channel": CHANNEL_TECHNIQUE, "class": "class-visualization",
                  "dream": "deepdream", "inversion": "feature-inversion",
                  "negative": CHANNEL_TECHNIQUE, "diversity": CHANNEL_TECHNIQUE}
CHANNEL_KINDS = ("channel", "negative", "diversity")   # a channel's pictures
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_CLASSES = "50"


@dataclass
class Unit:
    kind: str
    technique: str
    params: dict
    seed: int
    layer: str | None = None
    index: int | None = None         # channel number or class index
    objective: str | None = None     # channels: "LAYER:N"
    photo: str | None = None         # dream and inversion: the photo's file name
    path: str = ""                   # the image, relative to the site directory
    key: str = ""                    # see ortviz.atlas.keys
    variant: int | None = None       # diversity: the picture's place in its set

    @property
    def id(self) -> str:
        if self.kind in ("channel", "negative"):
            return f"{self.kind} {self.objective}"
        if self.kind == "diversity":
            return f"diversity {self.objective} #{self.variant}"
        if self.kind == "class":
            return f"class {self.index}"
        return f"{self.kind} {self.layer} {self.photo}"


@dataclass
class Spec:
    """What the user asked for (the CLI's options)."""

    layers: list[str] | None = None          # None: the bundle's layer table
    channels: str = "all"
    classes: str = DEFAULT_CLASSES
    photos: list[Path] = field(default_factory=list)
    dreams: bool = True
    inversions: bool = True
    iterations: int | None = None
    sets: list[str] = field(default_factory=list)  # "NAME=VALUE" or "TECHNIQUE.NAME=VALUE"
    seed: int = 0
    negative: bool = False                   # each channel's negative picture too
    diversity: int = 0                       # K > 1: each channel's diversity set of K pictures


def slug(name: str) -> str:
    """A file-name-safe form of a layer name (kept readable: ``_blocks.5`` stays as it is)."""
    s = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "layer"
    return s


def _numbers(text: str, what: str, limit: int) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"([0-9]+)\s*-\s*([0-9]+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if a > b:
                raise UsageError(f"{what} range {part!r} runs backwards")
            out += range(a, b + 1)
        elif is_index(part):
            out.append(int(part))
        else:
            raise UsageError(f"{what} {part!r} is not a number or a range like 0-7")
    bad = [n for n in out if n >= limit]
    if bad:
        raise UsageError(f"{what} {bad[0]} does not exist (there are {limit}: 0-{limit - 1})")
    return sorted(set(out))


def select_channels(text: str, count: int) -> list[int]:
    t = text.strip().lower()
    if t == "all":
        return list(range(count))
    if t in ("none", "0"):
        return []
    if is_index(t):
        return list(range(min(int(t), count)))
    return _numbers(t, "channel", count)


def select_classes(text: str, labels: list[str]) -> list[int]:
    t, n = text.strip(), len(labels)
    if t.lower() == "all":
        return list(range(n))
    if t.lower() in ("none", "0"):
        return []
    if is_index(t):  # a spread: the middle of each of k equal stretches of the label space
        k = min(int(t), n)
        return sorted({(2 * i + 1) * n // (2 * k) for i in range(k)})
    out = []
    for part in t.split(","):
        part = part.strip()
        if re.fullmatch(r"[0-9]+\s*-\s*[0-9]+", part):
            out += _numbers(part, "class", n)
            continue
        try:
            out.append(find_class(labels, part))
        except LabelError as exc:
            raise UsageError(str(exc)) from None
    return sorted(set(out))


def photo_files(folder: Path | None) -> list[Path]:
    """The photos of a folder (its image files, sorted by name); default: the bundled samples."""
    folder = Path(folder) if folder is not None else models_dir() / "samples"
    if not folder.is_dir():
        raise UsageError(f"--photos {folder} is not a directory")
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if not found:
        raise UsageError(f"--photos {folder} holds no images ({', '.join(PHOTO_SUFFIXES)})")
    stems = [p.stem for p in found]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise UsageError(f"--photos {folder}: two photos are named {twice[0]} (another suffix); "
                         "rename one")
    return found


def _convert(value: str, kind: type, what: str):
    try:
        if kind is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return kind(value)
    except ValueError:
        raise UsageError(f"--set {what}: {value!r} is not a {kind.__name__}") from None


def technique_params(tech, spec: Spec) -> dict:
    """The technique's full parameters: defaults, then --iterations, then --set."""
    names = {p.name: p for p in tech.params}
    values = tech.defaults()
    if spec.iterations is not None and "iterations" in names:
        values["iterations"] = spec.iterations
    for item in spec.sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r} must be NAME=VALUE or TECHNIQUE.NAME=VALUE")
        owner, dot, name = key.strip().rpartition(".")
        name = name.replace("-", "_")
        if dot and owner != tech.name:
            continue
        if name in names:
            values[name] = _convert(raw.strip(), names[name].type, key)
    try:
        return {n: names[n].validate(v) for n, v in values.items()}
    except ParamError as exc:
        raise UsageError(f"{tech.name}: {exc}") from None


def _check_sets(spec: Spec, used: dict) -> None:
    """Every --set must name a parameter of at least one technique the atlas runs."""
    for item in spec.sets:
        key = item.partition("=")[0].strip()
        owner, dot, name = key.rpartition(".")
        name = name.replace("-", "_")
        pool = [t for t in used.values() if not dot or t.name == owner]
        if dot and not pool:
            raise UsageError(f"--set {key}: the atlas runs no technique {owner!r} "
                             f"(it runs {', '.join(sorted(used))})")
        if not any(name in {p.name for p in t.params} for t in pool):
            raise UsageError(f"--set {key}: no technique of this atlas has a parameter {name!r}")


def _channel_extras(spec: Spec, params: dict, layer: str, s: str, n: int) -> list[Unit]:
    """A channel's negative picture and diversity set, where asked."""
    out, objective = [], f"{layer}:{n}"
    if spec.negative:
        out.append(Unit("negative", CHANNEL_TECHNIQUE, dict(params, objective=objective, negative=True),
                        spec.seed, layer=layer, index=n, objective=objective,
                        path=f"img/negative/{s}/{n}.png"))
    for k in range(spec.diversity if spec.diversity > 1 else 0):
        out.append(Unit("diversity", CHANNEL_TECHNIQUE,
                        dict(params, objective=objective, diversity=spec.diversity), spec.seed,
                        layer=layer, index=n, objective=objective,
                        path=f"img/diversity/{s}/{n}-{k}.png", variant=k))
    return out


def make_plan(bundle, spec: Spec) -> list[Unit]:
    """Every unit of the atlas, in page order; keys are filled in by ortviz.atlas.keys."""
    table = {l["name"]: l for l in bundle.layers}
    names = spec.layers if spec.layers is not None else list(table)
    for name in names:
        if name not in table:
            near = difflib.get_close_matches(name, list(table), n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(near)}?" if near else f"layers: {', '.join(table)}"
            raise UsageError(f"unknown layer {name!r}; {hint}")
    slugs = [slug(n) for n in names]
    if len(set(slugs)) != len(slugs):
        raise UsageError("two layers map to the same file name; choose them with --layers")
    channels = {n: select_channels(spec.channels, int(table[n]["shape"][1])) for n in names}
    classes = select_classes(spec.classes, bundle.labels)
    photos = spec.photos if (spec.dreams or spec.inversions) and names else []

    if spec.diversity == 1 or not 0 <= spec.diversity <= 16:
        raise UsageError(f"--diversity {spec.diversity}: give 2 to 16 pictures per channel, or 0 for none")
    wanted = {"channel": any(channels.values()), "class": bool(classes),
              "dream": spec.dreams and bool(photos), "inversion": spec.inversions and bool(photos)}
    have = installed_techniques()
    used = {}
    for kind, on in wanted.items():
        if not on:
            continue
        name = KIND_TECHNIQUE[kind]
        if name not in have:
            if kind == "channel":
                raise UsageError(f"this atlas needs the {name} technique, which is not installed "
                                 "(`ortviz plugins` lists what is); --channels 0 leaves channels out")
            raise UsageError(f"this atlas needs the {name} technique, which is not installed")
        used[kind] = have[name]
    if "channel" in used and "objective" not in {p.name for p in used["channel"].params}:
        raise UsageError(f"the installed {CHANNEL_TECHNIQUE} technique takes no objective parameter")
    for flag, name, on in (("--negative", "negative", spec.negative),
                           ("--diversity", "diversity", spec.diversity > 1)):
        if on and "channel" in used and name not in {p.name for p in used["channel"].params}:
            raise UsageError(f"{flag}: the installed {CHANNEL_TECHNIQUE} technique has no "
                             f"{name} parameter")
    _check_sets(spec, {t.name: t for t in used.values()})
    params = {kind: technique_params(tech, spec) for kind, tech in used.items()}

    units: list[Unit] = []
    for name, s in zip(names, slugs):
        for n in channels[name]:
            units.append(Unit("channel", CHANNEL_TECHNIQUE,
                              dict(params["channel"], objective=f"{name}:{n}"), spec.seed,
                              layer=name, index=n, objective=f"{name}:{n}",
                              path=f"img/channels/{s}/{n}.png"))
            units += _channel_extras(spec, params["channel"], name, s, n)
    for c in classes:
        units.append(Unit("class", KIND_TECHNIQUE["class"], params["class"], spec.seed, index=c,
                          path=f"img/classes/{c}.png"))
    for kind in ("dream", "inversion"):
        if kind not in used:
            continue
        for name, s in zip(names, slugs):
            at_layer = used[kind].resolved(params[kind], name, bundle.layers)  # as the run will
            for p in photos:
                units.append(Unit(kind, KIND_TECHNIQUE[kind], at_layer, spec.seed, layer=name,
                                  photo=p.name, path=f"img/{kind}/{s}/{p.stem}.png"))
    return units
