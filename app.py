"""Hugging Face Spaces entry point: ``python app.py`` serves the mirage_viz demo."""

from mirage_viz.app import build_demo

demo = build_demo()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=2).launch()
