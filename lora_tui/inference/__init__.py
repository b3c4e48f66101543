"""Using trained adapters: load a base once, attach adapters, generate side by side, merge for deployment.

`session` (base + adapters in memory, generation) and `merge` import torch, transformers and peft at module
level: import them lazily (inside a function or a worker). `merge_plan` is light and can be imported anywhere.
"""
