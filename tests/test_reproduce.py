"""The paper's results as `pyasync reproduce` tabulates them."""
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
