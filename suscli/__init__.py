"""suscli: audit trained image classifiers for memorized label noise, with unlabeled images only.

The public API (docs/api.md): `score`, `rank` and `track` do what the commands do and return a `Report`; `Settings`
(with `SusceptibilityConfig`) decides the numbers and `Inputs` how images and checkpoints are read;
`measure_susceptibility` is the measurement on a model in memory; `save` writes a checkpoint that names its
architecture; `load_results` reads reports and results files as a DataFrame; `SusceptibilityTracker` and its
callbacks for Lightning (`SusceptibilityCallback`) and the Hugging Face Trainer (`SusceptibilityTrainerCallback`)
measure during training.
"""

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Each public name and the module that defines it: imported on first use, so that importing suscli stays free of
# torch (and pandas), and the command line's entry point (suscli.__main__) can catch a Ctrl-C while torch loads.
_API = {
    "score": "suscli.run.score",
    "rank": "suscli.run.rank",
    "track": "suscli.run.track",
    "Report": "suscli.run.report",
    "Settings": "suscli.run.settings",
    "Inputs": "suscli.run.inputs",
    "SusceptibilityConfig": "suscli.measure.susceptibility",
    "measure_susceptibility": "suscli.measure.susceptibility",
    "save": "suscli.load.checkpoints",
    "load_results": "suscli.views.frames",
    "SusceptibilityTracker": "suscli.training.tracker",
    "SusceptibilityCallback": "suscli.training.lightning",
    "SusceptibilityTrainerCallback": "suscli.training.huggingface",
}
__all__ = [*_API, "__version__"]

if TYPE_CHECKING:  # what a type checker sees of the names above: mypy typed each one `object`, and every call an error
    from suscli.load.checkpoints import save as save
    from suscli.measure.susceptibility import SusceptibilityConfig as SusceptibilityConfig
    from suscli.measure.susceptibility import measure_susceptibility as measure_susceptibility
    from suscli.run.inputs import Inputs as Inputs
    from suscli.run.settings import Settings as Settings
    from suscli.run.rank import rank as rank
    from suscli.run.report import Report as Report
    from suscli.run.score import score as score
    from suscli.run.track import track as track
    from suscli.training.huggingface import SusceptibilityTrainerCallback as SusceptibilityTrainerCallback
    from suscli.training.lightning import SusceptibilityCallback as SusceptibilityCallback
    from suscli.training.tracker import SusceptibilityTracker as SusceptibilityTracker
    from suscli.views.frames import load_results as load_results


def __getattr__(name: str) -> object:
    if name not in _API:
        raise AttributeError(f"module 'suscli' has no attribute {name!r}")
    module = import_module(_API[name])
    if not hasattr(module, name):  # the callbacks need their training library
        raise AttributeError(f"suscli.{name} needs its training library: {module.__doc__.splitlines()[0] if module.__doc__ else ''}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
