"""The harness: what every command runs to get models and score them.

Each command (local-eval, leaderboard, tune, score-submission, a held-out re-score) is
the same three steps: make sure the models exist, hand named sets of their outputs to the
scoring core, render what comes back. The rooms, in the order data flows through them:

- :mod:`.context`: a benchmark made concrete (data, split, cache folder), kept per process;
- :mod:`.cache`: one model's outputs as a ``.npz`` entry, written atomically under a lock;
- :mod:`.jobs`: one unit of work (train models, or run a method) that writes its entries;
- :mod:`.executor`, :mod:`.ray_executor`: run jobs inline, in a pool of worker processes,
  or on Ray;
- :mod:`.scoring_core`: named sets of outputs against the references -> every score, its
  interval, the oracle comparisons and the time rule;
- :mod:`.pipeline`: the orchestrator (``local_eval``, ``evaluate_states``);
- :mod:`.leaderboard`, :mod:`.tune` (its search space in :mod:`.tune_space`): every method
  ranked at one N; a method's settings searched.

The harness sits above the lower rooms (``data/``, models and training, ``methods/``,
``metrics/``, ``report/``), which never import it. Nothing is imported here: import the
room you need.
"""
