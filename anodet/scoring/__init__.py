"""Scoring: the one routine that scores rows, and what is built on it.

* :mod:`anodet.scoring.core`: stored detectors' scores for raw rows (``score_rows``, ``score_frame``), the
  streaming ``Scorer`` that scores each distinct row once, and how a store reads its inputs
  (``input_schema``). Streams and the dashboard need only this module.
* :mod:`anodet.scoring.files`: an input file or upload, chunk by chunk, into results tables (``score_source``).
* :mod:`anodet.scoring.output`: results tables written to CSV or Parquet files, or standard output.
* :mod:`anodet.scoring.batch`: several inputs into a folder of parts, here or on Dask.
* :mod:`anodet.scoring.uploads`: the dashboard's uploads, in bounded memory.
* :mod:`anodet.scoring.cache`: the dashboard's scores on the splits, kept on disk.

Nothing is imported here, so ``import anodet.scoring.core`` costs only what that module needs.
"""
