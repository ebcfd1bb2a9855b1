"""Layer 6, the benchmark (``mirage-viz bench``): the paper's claims measured side by side on this machine.

Speed and bytes of the latent against the RGB memory (:mod:`.speed`, :mod:`.peak`), consistency and
read fidelity (:mod:`.fidelity`), cache variants (fusion, float16), and the read against the
machine's copy rate (:mod:`.bandwidth`); :func:`run_bench` runs them all, :mod:`.report` writes them.
"""

from mirage_viz.bench.report import bench_figure, bench_markdown, load_bench, write_bench
from mirage_viz.bench.run import BENCH_FORMAT, HALF_PRECISION_TOLERANCE, MATCH_DB, BenchConfig, run_bench

__all__ = ["BENCH_FORMAT", "HALF_PRECISION_TOLERANCE", "MATCH_DB", "BenchConfig", "run_bench", "bench_figure",
           "bench_markdown", "load_bench", "write_bench"]
