"""Tools around the library (not stages of the pipeline): benchmarks, soak test, measurements, calibration.

Each runs as ``python -m jasr_video.tools.NAME --help``: ``bench`` (end to end against a baseline; also
``python -m jasr_video.bench``), ``soak`` (long-run memory and file handles; also ``jasr_video.soak``),
``tinybench`` (tiny-face recall; also ``jasr_video.tinybench``), ``framebench`` (faces placed in frames, cut
and enhanced along the pipeline's own path), ``jitter`` (landmark jitter and lag of the
smoothing stage), ``calibrate`` (crop geometry from MTCNN boxes), ``profile_detect`` (where MTCNN spends its
time), ``best_face`` (best faces against picks made by eye), ``cluster_bench`` (streams on Ray against one
process), ``verifybench`` (face verification of enhanced tiny faces, the paper's Table 3). The figures they
print are recorded in docs/benchmarks.md and docs/pipeline.md with their commands. The library never imports this package.
"""
