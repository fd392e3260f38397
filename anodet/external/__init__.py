"""External detectors: scores made elsewhere (no code runs), compared with anodet's on a dataset's test split.

:mod:`~anodet.external.matching` reads a score file and matches each score to a record by its record id;
:mod:`~anodet.external.kept` keeps the result beside the dataset (``data/external/<dataset>/<NAME>/``);
:mod:`~anodet.external.view` is the one place they join a store for pages and ``evaluate``.
"""
