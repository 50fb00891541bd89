"""Every number the kit reports about unlearned models, from their outputs.

- :mod:`.competition`: the competition's forget quality and final score (numpy only);
- :mod:`.secondary`: the numbers papers report beside it (simple MIA, ZRF, losses), on
  arrays of one model's outputs;
- :mod:`.model_sets`: a set of N cached model outputs scored against the references, and
  the secondary metrics of such a set.
- :mod:`.shift_model`: why a set scores the F it does (per-example shifts split into a
  common and a per-example part) and what fixing each would be worth (a Gaussian model).

Nothing is imported here, so ``import unlearnkit.metrics.competition`` stays torch-free.
"""
