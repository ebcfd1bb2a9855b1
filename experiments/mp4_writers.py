"""Why rollout.mp4 is written with PyAV: the two maintained H.264 writers side by side, on the same frames.

Encodes the labelled step views of the default rollout (``loop``, 12 steps, 256 px) with the same libx264 settings
(crf 20, preset medium, yuv420p, faststart) through PyAV (in process) and, when it is installed, imageio-ffmpeg
(frames piped to its bundled ffmpeg executable), and records each one's installed size, encode time (median of
``--repeats``) and file size in ``runs/mp4_writers.json``. imageio-ffmpeg is not a dependency of mirage_viz:
``pip install imageio-ffmpeg`` to include it.

    python experiments/mp4_writers.py [--steps 12] [--size 256] [--repeats 3] [--out runs/mp4_writers.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np


def installed_mb(distribution: str) -> float | None:
    """The size on disk of an installed distribution's files, in MB (None when it is not installed)."""
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        return None
    return round(sum(Path(f.locate()).stat().st_size for f in files if Path(f.locate()).is_file()) / 1e6, 1)


def with_pyav(frames: list[np.ndarray], path: Path, fps: int) -> None:
    import av

    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "20", "preset": "medium"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def with_imageio_ffmpeg(frames: list[np.ndarray], path: Path, fps: int) -> None:
    import imageio_ffmpeg

    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         quality=None, macro_block_size=2,
                                         output_params=["-crf", "20", "-preset", "medium", "-movflags", "+faststart"])
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/mp4_writers.json"))
    args = parser.parse_args(argv)

    from mirage_viz.rollout import RolloutConfig, run_rollout
    from mirage_viz.outputs.exports import VIDEO_FPS
    from mirage_viz.viz.figures import rollout_pca
    from mirage_viz.viz.step_view import step_view, step_view_image

    rollout = run_rollout(RolloutConfig(steps=args.steps, size=args.size))
    basis = rollout_pca(rollout)
    frames = [step_view_image(step_view(rollout, step, basis), columns=4) for step in range(len(rollout))]
    writers = {"pyav": (with_pyav, "av"), "imageio-ffmpeg": (with_imageio_ffmpeg, "imageio-ffmpeg")}
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (write, distribution) in writers.items():
            size = installed_mb(distribution)
            if size is None:
                results[name] = {"installed": False}
                continue
            path, times = Path(folder) / f"{name}.mp4", []
            for _ in range(args.repeats):
                start = time.perf_counter()
                write(frames, path, VIDEO_FPS)
                times.append(time.perf_counter() - start)
            results[name] = {"installed": True, "installed_mb": size, "encode_s_median": round(statistics.median(times), 3),
                             "encode_s": [round(t, 3) for t in times], "file_kb": round(path.stat().st_size / 1e3, 1)}
    report = {"frames": len(frames), "frame_size": list(frames[0].shape[:2]), "fps": VIDEO_FPS,
              "settings": "libx264 crf 20 preset medium yuv420p faststart", "writers": results}
    if results["pyav"].get("installed") and results["imageio-ffmpeg"].get("installed"):
        report["imageio_ffmpeg_over_pyav"] = {
            "installed_size": round(results["imageio-ffmpeg"]["installed_mb"] / results["pyav"]["installed_mb"], 2),
            "encode_time": round(results["imageio-ffmpeg"]["encode_s_median"] / results["pyav"]["encode_s_median"], 2)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
