"""Which encoder settings the output folder is written with: libx264 presets for ``rollout.mp4`` and zlib levels for
the PNG frames, side by side on the same rollout (issue 36: the command line's time to its folder).

Encodes the labelled step views of the default rollout (``loop``, 8 steps, 256 px) at crf 20 with each preset, and
every memory's frames as PNG at each compression level, in memory; records each one's time (median of
``--repeats``) and bytes in ``runs/writer_settings.json``.

    python experiments/writer_settings.py [--steps 8] [--size 256] [--repeats 3] [--out runs/writer_settings.json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import av
from PIL import Image

from mirage_viz.backbone import load_embedded_backbone
from mirage_viz.image import to_uint8_image
from mirage_viz.rollout import RolloutConfig, run_rollout
from mirage_viz.viz.figures import rollout_pca
from mirage_viz.viz.step_view import step_view, step_view_image

PRESETS = ("medium", "fast", "veryfast", "ultrafast")
PNG_LEVELS = (6, 3, 1)  # 6: Pillow's default


def encode_mp4(pictures: list, preset: str) -> int:
    """Bytes of the H.264 MP4 of ``pictures`` (H, W, 3) uint8 at crf 20 and ``preset`` (as ``export_video`` writes)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=2)
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": preset}
        for picture in pictures:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getbuffer().nbytes


def encode_pngs(frames: list, level: int) -> int:
    total = 0
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG", compress_level=level)
        total += buffer.tell()
    return total


def timed(work, repeats: int) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 4), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/writer_settings.json"))
    args = parser.parse_args()
    rollout = run_rollout(RolloutConfig(trajectory="loop", steps=args.steps, size=args.size),
                          backbone=load_embedded_backbone())
    basis = rollout_pca(rollout)
    views = [step_view(rollout, step, basis) for step in range(len(rollout))]
    columns = max(max(len(view.frames), len(view.conditioning)) for view in views)
    pictures = [step_view_image(view, columns) for view in views]
    frames = [to_uint8_image(record.frame) for records in rollout.records.values() for record in records]
    result = {"steps": args.steps, "size": args.size, "video_frame": list(pictures[0].shape), "png_frames": len(frames),
              "mp4": {}, "png": {}}
    for preset in PRESETS:
        seconds, size = timed(lambda: encode_mp4(pictures, preset), args.repeats)
        result["mp4"][preset] = {"seconds": seconds, "bytes": size}
    for level in PNG_LEVELS:
        seconds, size = timed(lambda: encode_pngs(frames, level), args.repeats)
        result["png"][str(level)] = {"seconds": seconds, "bytes": size}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
