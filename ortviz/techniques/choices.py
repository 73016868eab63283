"""The options the recipes share, as declared parameters: ``--param`` and ``--transforms`` (what
:mod:`.recipes` builds from them), ``--lr 0`` (each parameterization's own step size), and
which options apply to which ``--param``/``--transforms`` (one refused, not ignored)."""

from __future__ import annotations

from ortviz.render import param as parameterizations, transforms as tf
from ortviz.techniques.spec import Param, ParamError

# step rule and size when --lr is 0 ("auto"), per parameterization
AUTO_LR = {"pixel": 0.1, "fft": 0.05, "maco": 0.05, "natural": 0.05}


def param_choice(default: str, note: str = "") -> Param:
    """The ``--param`` option; ``note`` is appended to its help (how the technique uses it)."""
    return Param("param", str, default,
                 "Image parameterization: pixel (model-space pixels), fft (1/f spectrum, "
                 "decorrelated colour, sigmoid), natural (the same with a 1/f^1.5 falloff above the lowest "
                 "frequency: photographs' spectrum) or maco (phase only under natural-image magnitudes)."
                 + (f" {note}" if note else ""),
                 lambda v: None if v in parameterizations.NAMES
                 else f"must be one of {', '.join(parameterizations.NAMES)}")


def transforms_choice(default: str, note: str = "") -> Param:
    """The ``--transforms`` option; ``note`` is appended to its help."""
    return Param("transforms", str, default,
                 "Random transforms each step: none, light (jitter, zoom), standard (Lucid: pad 12, "
                 "crop 8, scale 0.9-1.1, rotate +-10 deg, crop 4) or wide (the same with scale "
                 "0.8-1.2)." + (f" {note}" if note else ""),
                 lambda v: None if v in tf.PRESETS else f"must be one of {', '.join(tf.PRESETS)}")


def resolve_lr(params: dict, layer=None) -> dict:
    """``params`` with an ``lr`` of 0 ("auto") replaced by its parameterization's own
    (:data:`AUTO_LR`): what the run uses, for the sidecar (a ``Technique.resolve``)."""
    return params | {"lr": params["lr"] or AUTO_LR[params["param"]]}


# options that only one --param or --transforms reads: (the option it depends on, its value)
ONLY_FOR = {"l2": ("param", "pixel"), "blur_every": ("param", "pixel"),
            "blur_sigma": ("param", "pixel"), "octave_scale": ("param", "pixel"),
            "decay": ("param", "fft"), "jitter": ("transforms", "light"),
            "zoom": ("transforms", "light")}


def check_applies(tech, params: dict, given=None) -> None:
    """An option given (``given``: the names the user set; None: those that differ from their
    default) that this run's ``--param``/``--transforms`` does not read is refused in one
    line, not silently ignored (``Technique.only_for``)."""
    for p in tech.params:
        on, wanted = tech.only_for.get(p.name, (None, None))
        if on is None or params.get(on) == wanted:
            continue
        if (p.name in given) if given is not None else params[p.name] != p.default:
            flag = "--" + p.name.replace("_", "-")
            raise ParamError(f"{flag} applies to --{on} {wanted} only; this run's --{on} is "
                             f"{params[on]} (add --{on} {wanted}, or leave {flag} out)")


def check_octaves(name: str, octaves: int) -> None:
    if octaves > 1 and name != "pixel":
        raise ParamError(f"--octaves {octaves} needs --param pixel (the spectra work at one size)")
