"""suscli: audit trained image classifiers for memorized label noise, with unlabeled images only."""

from suscli.checkpoints import save

__version__ = "0.1.0"
__all__ = ["save", "__version__"]
