"""A griffe extension for the documentation site's API reference (mkdocs.yml): the docstrings
use Sphinx roles (:func:`make`, :mod:`ortviz.render.loop`), which Markdown would show as written;
each becomes a code span."""

import re

import griffe

ROLE = re.compile(r":(?:func|mod|class|meth|attr|data|exc|obj):`~?([^`]+)`")


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)
