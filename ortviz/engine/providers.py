"""Execution providers: short names, what is available here, and what ``auto`` picks.

Two kinds reach a session:

- **built in**: the providers compiled into the installed onnxruntime package
  (``onnxruntime.get_available_providers()``: CPU in stock onnxruntime, CUDA in onnxruntime-gpu,
  OpenVINO in onnxruntime-openvino, ...), passed to the session by name;
- **plugin EP packages** loaded into stock onnxruntime (onnxruntime >= 1.22): an installed module
  ``onnxruntime_ep_<name>`` (e.g. the ``onnxruntime-ep-openvino`` package) with
  ``get_library_path()`` and ``get_ep_names()``, registered with
  ``onnxruntime.register_execution_provider_library`` the first time providers are looked up.
  A plugin counts only where it offers a device on this machine (``onnxruntime.get_ep_devices``):
  the OpenVINO plugin 1.8.1, for instance, registers on an AMD CPU but offers no device there.
  ``ORTVIZ_EP_PLUGINS`` limits which are loaded: a comma-separated list of module names, or
  ``none``.

``auto`` takes the first of ``AUTO_ORDER`` that is available, built in before plugin. Why this
order: a GPU provider is faster than any CPU one for these graphs; on the CPU, OpenVINO ran the
gradient graphs (every iteration's cost) in 0.73-0.90x the CPU provider's time at two threads
and 0.54-0.64x at one (``bench/providers.py``, docs/benchmarks.md), while the forward graph
(once per picture) is slower there. TensorRT is never picked implicitly (its engine build takes
minutes per graph). ``ortviz providers`` shows what is here and what ``auto`` picks.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field

import onnxruntime as ort

from ortviz.errors import ProviderError  # noqa: F401 (defined in errors: the CLI needs no onnxruntime)

NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "qnn": "QNNExecutionProvider",
}
# Options a provider gets by default: gradients need full float32 (OpenVINO may otherwise run in
# bf16 on CPUs that have it).
OPTIONS = {"openvino": {"precision": "FP32"}}
# The option that carries ``--threads`` to a provider with its own thread pool.
THREAD_OPTION = {"openvino": "num_of_threads"}
AUTO_ORDER = ["cuda", "rocm", "migraphx", "directml", "coreml", "openvino", "cpu"]
PLUGIN_PREFIX = "onnxruntime_ep_"


@dataclass
class Plugin:
    """An installed plugin EP package and what it offers here."""

    module: str
    ep_names: list = field(default_factory=list)
    devices: list = field(default_factory=list)       # OrtEpDevice, for this process
    error: str | None = None                          # why it could not be registered


_PLUGINS: dict[str, Plugin] | None = None


def _allowed(module: str) -> bool:
    allow = os.environ.get("ORTVIZ_EP_PLUGINS")
    if allow is None:
        return True
    names = {n.strip() for n in allow.split(",") if n.strip()}
    return "none" not in names and module in names


def _plugin_modules() -> list[str]:
    """Top-level modules on ``sys.path`` named ``onnxruntime_ep_*`` (a package folder or a
    ``.py`` file): one directory listing per path entry, where ``pkgutil.iter_modules`` cost
    about 25 ms of every run's start-up."""
    found = set()
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                for e in it:
                    if not e.name.startswith(PLUGIN_PREFIX) or "." in e.name.removesuffix(".py"):
                        continue
                    name = e.name.removesuffix(".py")
                    if (e.name.endswith(".py") and e.is_file()) or \
                            (e.is_dir() and os.path.exists(os.path.join(e.path, "__init__.py"))):
                        found.add(name)
        except OSError:  # a missing folder or a zip file on the path
            continue
    return sorted(found)


def plugins() -> dict[str, Plugin]:
    """The plugin EP packages installed and allowed, registered once per process; keyed by
    short name (``openvino`` for ``onnxruntime_ep_openvino``)."""
    global _PLUGINS
    if _PLUGINS is not None:
        return _PLUGINS
    found: dict[str, Plugin] = {}
    modules = _plugin_modules()
    register = getattr(ort, "register_execution_provider_library", None)
    for module in modules:
        if not _allowed(module):
            continue
        plugin = found[module[len(PLUGIN_PREFIX):]] = Plugin(module)
        if register is None:
            plugin.error = f"onnxruntime {ort.__version__} cannot load plugin execution providers"
            continue
        try:
            mod = importlib.import_module(module)
            plugin.ep_names = list(mod.get_ep_names())
            register(plugin.ep_names[0], mod.get_library_path())
        except Exception as exc:  # a broken plugin package is named, never fatal
            plugin.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if any(p.ep_names and not p.error for p in found.values()):
        devices = ort.get_ep_devices()
        for p in found.values():
            p.devices = [d for d in devices if d.ep_name in p.ep_names]
    _PLUGINS = found
    return found


def builtin() -> list[str]:
    have = set(ort.get_available_providers())
    return [short for short, full in NAMES.items() if full in have]


def available() -> list[str]:
    """Short names usable here: built in, then plugins that offer a device."""
    out = builtin()
    return out + [s for s, p in plugins().items() if p.devices and s not in out]


@dataclass
class Choice:
    """The provider a session gets: ``short`` name, and how to put it on a session."""

    short: str
    kind: str = "builtin"                              # "builtin" or "plugin"
    options: dict = field(default_factory=dict)
    devices: list = field(default_factory=list)        # plugin: the OrtEpDevices to use

    def providers(self, so: ort.SessionOptions, threads: int | None = None):
        """Configure ``so`` and return the ``providers=`` argument of InferenceSession (CPU
        always the fallback)."""
        opts = dict(self.options)
        if threads and self.short in THREAD_OPTION:
            opts[THREAD_OPTION[self.short]] = str(threads)
        if self.kind == "plugin":
            so.add_provider_for_devices(self.devices, opts)
            return None
        first = (NAMES[self.short], opts) if opts else NAMES[self.short]
        return [first] + ([NAMES["cpu"]] if self.short != "cpu" else [])


def _choice(short: str) -> Choice:
    if short in builtin():
        return Choice(short, "builtin", dict(OPTIONS.get(short, {})))
    p = plugins()[short]
    return Choice(short, "plugin", dict(OPTIONS.get(short, {})), list(p.devices))


def resolve(choice: str) -> Choice:
    """The :class:`Choice` for a user's ``--provider`` (``auto``, a short name, or the full
    ``...ExecutionProvider`` name); raises ProviderError in one line."""
    choice = choice.lower().strip()
    if choice == "auto":
        have = available()
        return _choice(next(s for s in AUTO_ORDER if s in have or s == "cpu"))
    short = next((s for s, f in NAMES.items() if choice in (s, f.lower())), None)
    if short is None:
        short = next((s for s, p in plugins().items()
                      if choice in (s, *(n.lower() for n in p.ep_names))), None)
    if short is None:
        raise ProviderError(f"unknown execution provider {choice!r}; choose auto or one of: "
                            f"{', '.join(NAMES)} (available here: {', '.join(available())})")
    if short not in available():
        p = plugins().get(short)
        why = (f"its plugin package {p.module} could not be loaded ({p.error})" if p and p.error
               else f"its plugin package {p.module} offers no device on this machine" if p
               else "it is not in this onnxruntime build and no plugin package provides it")
        raise ProviderError(f"execution provider {choice!r} is not available: {why}; "
                            f"available here: {', '.join(available())}")
    return _choice(short)


def describe() -> list[dict]:
    """Every provider known here, for ``ortviz providers``: name, kind, devices, usable, and
    whether ``auto`` picks it."""
    picked = resolve("auto").short
    rows = [{"name": s, "provider": NAMES[s], "kind": "built in", "devices": [], "usable": True,
             "auto": s == picked} for s in builtin()]
    for s, p in plugins().items():
        rows.append({"name": s, "provider": ", ".join(p.ep_names) or "?",
                     "kind": f"plugin package {p.module}",
                     "devices": [f"{d.device.type.name.lower()} ({d.device.vendor})" for d in p.devices],
                     "usable": bool(p.devices) and s not in builtin(),
                     "auto": s == picked and s not in builtin(), "error": p.error})
    return rows
