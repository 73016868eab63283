"""``ortviz serve``: a page that runs DeepDream and feature visualization in the browser on
onnxruntime-web, with the bundle's own gradient graphs (docs/browser.md).

- :mod:`.describe`: what the page is told about a bundle (layers, labels, graphs, the render
  recipe) and the step graphs it runs (:mod:`ortviz.render.stepgraph`'s ``param``, ``pre``, ``post``);
- :mod:`.feeds`: an objective string, parsed by the CLI's parser, as the arrays the page feeds
  to the gradient graphs (the same ones the engine feeds);
- :mod:`.server`: the HTTP server (standard library only) and what it refuses;
- ``static/``: the page (``index.html``, ES modules) and the vendored onnxruntime-web.
"""

from ortviz.serve.server import Site, make_server

__all__ = ["Site", "make_server"]
