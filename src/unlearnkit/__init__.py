"""unlearnkit: develop, score and submit machine-unlearning methods.

Built around the NeurIPS 2023 Machine Unlearning competition (Kaggle): the same
method code runs in the local harness, which reproduces the competition's metric,
and in the submission notebook.
"""

__version__ = "0.1.0"
