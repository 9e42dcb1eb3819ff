"""suscli: audit trained image classifiers for memorized label noise, with unlabeled images only."""

__version__ = "0.1.0"
__all__ = ["load_results", "save", "__version__"]


def __getattr__(name: str):
    """`suscli.save` and `suscli.load_results`, imported on first use: importing the package stays free of torch (and
    pandas), so that the command line's entry point (suscli.__main__) can catch a Ctrl-C while torch loads."""
    if name == "save":
        from suscli.load.checkpoints import save

        return save
    if name == "load_results":
        from suscli.views.frames import load_results

        return load_results
    raise AttributeError(f"module 'suscli' has no attribute {name!r}")
