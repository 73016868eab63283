"""Objectives as run-time values, from a string or a value to the inputs of a bundle's graphs.

- :mod:`~ortviz.objective.algebra`: the values (channels, neurons, directions, classes, ...) and their sums;
- :mod:`~ortviz.objective.text`: objective strings (the CLI's ``--objective``) parsed to values;
- :mod:`~ortviz.objective.plugins`: third-party objectives (the ``ortviz.objectives`` entry points);
- :mod:`~ortviz.objective.bind`: a value bound to one bundle, ``f(x) -> (loss, grad)``;
- :mod:`~ortviz.objective.positions`: what runs when the user names nothing (a layer by position, a class by rule);
- :mod:`~ortviz.objective.preactivation`: each layer's pre-activation and an objective's warm-up on it;
- :mod:`~ortviz.objective.diversity`: Lucid's diversity term over K pictures.
"""
