"""Every number the kit reports about unlearned models, from their outputs.

- :mod:`.competition`: the competition's forget quality and final score (numpy only);
- :mod:`.secondary`: the numbers papers report beside it (simple MIA, ZRF, losses), on
  arrays of one model's outputs;
- :mod:`.model_sets`: a set of N cached model outputs scored against the references, and
  the secondary metrics of such a set.

Nothing is imported here, so ``import unlearnkit.metrics.competition`` stays torch-free.
"""
