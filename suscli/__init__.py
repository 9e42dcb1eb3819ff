"""suscli: audit trained image classifiers for memorized label noise, with unlabeled images only."""

__version__ = "0.1.0"
__all__ = ["save", "__version__"]


def __getattr__(name: str):
    """`suscli.save`, imported on first use: importing the package stays free of torch, so that the command line's
    entry point (suscli.__main__) can catch a Ctrl-C while torch loads."""
    if name == "save":
        from suscli.checkpoints import save

        return save
    raise AttributeError(f"module 'suscli' has no attribute {name!r}")
