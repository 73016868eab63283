"""The built-in techniques. Each registers through the ``ortviz.techniques`` entry-point group,
the same way a third party's plugin does."""
