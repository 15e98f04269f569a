"""Tools around the library (not stages of the pipeline): benchmarks, soak test, measurements, calibration.

Each is run as ``python -m jasr_video.tools.NAME --help``: ``bench`` (end to end against a baseline),
``soak`` (long-run memory and file handles), ``tinybench`` (tiny-face recall), ``jitter`` (landmark jitter
and lag of the smoothing stage), ``calibrate`` (crop geometry from MTCNN boxes), ``profile_detect``
(MTCNN's parts). The figures they print are recorded in docs/benchmarks.md and docs/pipeline.md.
"""
