"""The notebook side: what the submission notebook runs on Kaggle.

These modules (``settings``, ``dataset``, ``checkpoints``, ``guard``) are inlined into
the notebook with the ``unlearnkit`` modules they import; they import only what
Kaggle's image has (torch, torchvision, numpy, pandas, PIL, tqdm). The host tools that
build, rehearse, score and submit the notebook live one level up, in
:mod:`unlearnkit.kaggle`, and are never inlined.
"""
