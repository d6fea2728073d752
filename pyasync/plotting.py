"""PNG plots for the report and the reproduction; matplotlib is optional
(the `bench` extra): without it the tables are still written."""
import os


def save_plot(out, name, draw, figsize=(6, 4)):
    """Calls draw(ax) on a fresh figure and saves it as out/name; returns
    the path, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=figsize)
    draw(ax)
    fig.tight_layout()
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
