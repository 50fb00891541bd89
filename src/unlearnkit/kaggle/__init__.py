"""The Kaggle side: the submission notebook, a mock competition, scoring and submitting.

Only the light modules (``settings``, ``dataset``, ``checkpoints``, ``guard``) are
inlined into the notebook; this ``__init__`` imports nothing so that importing one of
them never pulls in the builder's or the CLI's dependencies.
"""
