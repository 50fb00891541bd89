"""The Kaggle side: the submission notebook, a mock competition, scoring and submitting.

Two rooms. :mod:`unlearnkit.kaggle.runtime` holds what the notebook runs (inlined into
it); the modules here are the host tools (``notebook`` builds it, ``mock``, ``local``,
``score``, ``submit``, ``commands``) and are never inlined. This ``__init__`` imports
nothing so that importing the runtime never pulls in the host tools' dependencies.
"""
