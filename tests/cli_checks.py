"""What a refusal through the real CLI must look like, shared by the bad-input tests."""

from __future__ import annotations

import time

from unlearnkit.cli import main


def refused(capsys, argv: list[str], *words: str, within: float | None = None) -> str:
    """Run the CLI expecting exit 2 and one ``error:`` line holding ``words`` (no
    traceback); ``within``: seconds it may take (a check must come before any work)."""
    start = time.perf_counter()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    if within is not None:
        assert time.perf_counter() - start < within
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err
