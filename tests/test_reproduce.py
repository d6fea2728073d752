"""The paper's results as `pyasync reproduce` tabulates them."""
import pytest

from pyasync import reproduce
from pyasync.reproduce import mlp_best_momentum_table


def test_mlp_best_momentum_falls_with_asynchrony_and_auto_follows():
    """Item 4: for the small MLP the best explicit momentum falls from one
    worker to 64, and momentum="auto" (probed before the first epoch) falls
    with it."""
    (m1, best1, loss1, zero1, auto1, auto_loss1), (m64, best64, _, _, auto64, _) = \
        mlp_best_momentum_table(workers=(1, 64), seeds=1)
    assert (m1, m64) == (1, 64)
    assert best64 < best1
    assert auto64 < auto1
    assert loss1 <= zero1  # the best of the grid includes momentum 0
    assert auto_loss1 <= zero1  # one worker: auto's heavy momentum beats none


def test_figures_are_linked_from_the_tables(tmp_path, monkeypatch):
    """reproduce.md shows each plot it wrote, and none it could not."""
    pytest.importorskip("matplotlib")
    lines = reproduce.figure(str(tmp_path), "a.png", lambda ax: ax.plot([0, 1]), "a plot")
    assert lines == ["", "![a plot](a.png)"] and (tmp_path / "a.png").exists()
    monkeypatch.setattr(reproduce, "save_plot", lambda *args: None)  # no matplotlib
    assert reproduce.figure(str(tmp_path), "b.png", None, "b") == []
