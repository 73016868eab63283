"""A run: from a request (CLI or Python) to images on disk.

- :mod:`~ortviz.run.runner`: validate, run, write, summarize;
- :mod:`~ortviz.run.options`: a run's common options, checked before any work;
- :mod:`~ortviz.run.guard`: a technique's run, guarded: it ends with a status and an image;
- :mod:`~ortviz.run.progress`: progress wherever it is watched;
- :mod:`~ortviz.run.imagefiles`: reading photos, writing images;
- :mod:`~ortviz.run.outputset` and :mod:`~ortviz.run.write`: the files one run writes, replaced whole.
"""
