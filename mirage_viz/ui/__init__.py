"""Layer 7, the user interfaces: the Gradio app and its sessions, the notebook inspector. They arrange what the
layers under them return; nothing in the package imports them.
"""
