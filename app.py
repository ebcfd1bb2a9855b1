"""Hugging Face Spaces entry point: ``python app.py`` serves the mirage_viz demo."""

from mirage_viz.ui.app import build_demo, launch

demo = build_demo()  # its queue is bounded; launch() also caps uploads

if __name__ == "__main__":
    launch(demo)
