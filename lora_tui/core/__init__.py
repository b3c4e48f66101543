"""The advisor as a library.

Nothing in this package imports textual, torch, transformers, peft, datasets, trl or accelerate at module
level: a test imports every module here in a fresh interpreter and checks `sys.modules`.
"""
