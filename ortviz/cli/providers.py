"""``ortviz providers``: the execution providers here (built in or plugin EP packages), their
devices, and which one ``--provider auto`` picks."""

from __future__ import annotations

from typing import Annotated

import typer

from ortviz.cli.common import friendly, print_json


@friendly
def providers(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False):
    """List execution providers: built into onnxruntime or loaded from plugin EP packages."""
    import onnxruntime as ort  # here only: info, layers and labels work without it

    from ortviz.engine.providers import describe  # (ditto: it imports onnxruntime)
    rows = describe()
    if as_json:
        print_json(rows)
        return
    for r in rows:
        state = "auto" if r["auto"] else "" if r["usable"] else \
            f"not usable: {r['error']}" if r.get("error") else \
            "not usable: no device here" if not r["devices"] else "not usable: also built in"
        devices = f" [{', '.join(r['devices'])}]" if r["devices"] else ""
        typer.echo(f"{r['name']:<10} {r['kind']:<40} {r['provider']}{devices}  {state}".rstrip())
    typer.echo(f"(onnxruntime {ort.__version__}; --provider auto takes the first usable of "
               "cuda, rocm, migraphx, directml, coreml, openvino, cpu; ORTVIZ_EP_PLUGINS "
               "restricts which plugin packages load)", err=True)
