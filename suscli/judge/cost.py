"""Whether fitting the labels a pool's consensus contradicts costs a model anything on new images.

The consensus contradicts two kinds of training label: wrong ones, and right ones that the voters get wrong. It
cannot tell them apart, and with weak voters the second kind is most of what it finds: on CIFAR-10's clean labels a
pool's consensus contradicts 11-25% of them (docs/validation.md). What tells them apart is what fitting them does.
Memorizing wrong labels costs a model on new images (the premise of the method); fitting right labels the voters
miss does not. Agreement with the consensus on the unlabeled images stands in for accuracy on new images, so a pool
where a model fits most contradicted labels and agrees not clearly less than the best model that does not has
shown no noise to memorize: its contradicted labels are not evidence of wrong labels, and the pool's noise estimate
and "likely memorized noise" say nothing there (suscli.judge.verdict).
"""

from __future__ import annotations

from dataclasses import dataclass

from suscli.judge.verdict import MEMORIZED_FITS_CONTRADICTED
from suscli.measure.predictions import difference_is_clear
from suscli.results import Result


# "Costs nothing": the fitter's agreement is not clearly below the best non-fitter's, by the test that makes near-ties
# of agreement (suscli.measure.predictions.difference_is_clear: two binomial standard errors on the unlabeled images).
# No constant was tuned: measured (docs/validation.md, "Does fitting the contradicted labels cost anything?"), the
# fitter agrees 0.58 and 0.65 times as often as the best non-fitter in the two pools on 40% human noise and 0.87 in
# `suscli demo`'s pool (40% random labels), all clearly below; 0.96 and 1.08 times in the two pools on clean labels,
# not clearly below. A ratio cut between them (0.8, tried first) let the demo's memorizers go unflagged.
@dataclass(frozen=True)
class FitCost:
    """The pool's best-agreeing model among those that fit the contradicted labels, beside the best among the rest."""

    fitter: str  # the model that fits >= MEMORIZED_FITS_CONTRADICTED of the contradicted labels and agrees most
    fits: float  # its fit on them
    agreement: float  # its agreement with the consensus on the unlabeled images
    best: str  # the model that agrees most among those that fit fewer
    best_agreement: float
    images: int  # the unlabeled images the agreements are measured on

    @property
    def ratio(self) -> float:
        return self.agreement / self.best_agreement if self.best_agreement > 0 else float("inf")

    @property
    def free(self) -> bool:
        """Whether fitting the contradicted labels cost the fitter no agreement that the unlabeled images can show."""
        return not difference_is_clear(self.best_agreement, self.agreement, self.images)

    def why(self) -> str:
        return (
            f"{self.fitter} fits {100 * self.fits:.0f}% of the labels the consensus contradicts and agrees with it on the "
            f"unlabeled images {100 * self.agreement:.1f}% of the time, {self.ratio:.2f} times the best model that fits "
            f"fewer ({self.best}, {100 * self.best_agreement:.1f}%; not clearly below it on {self.images:,} images): fitting "
            "them costs nothing that new images show, so they may be right labels that the voters get wrong rather than noise"
        )

    def as_dict(self) -> dict:
        return {
            "fitter": self.fitter,
            "fits_contradicted": self.fits,
            "agreement": self.agreement,
            "best_other": self.best,
            "best_other_agreement": self.best_agreement,
            "ratio": self.ratio,
            "images": self.images,
            "free": self.free,
        }


def fit_cost(rows: list[Result], images: int) -> FitCost | None:
    """FitCost over the rows with both agreement (on `images` unlabeled images) and a fit on the contradicted labels;
    None unless some fit MEMORIZED_FITS_CONTRADICTED of them and some fit fewer (nothing to compare)."""
    known = [r for r in rows if r.agreement is not None and r.fits_contradicted is not None]
    fitters = [r for r in known if r.fits_contradicted >= MEMORIZED_FITS_CONTRADICTED]  # type: ignore[operator]
    others = [r for r in known if r.fits_contradicted < MEMORIZED_FITS_CONTRADICTED]  # type: ignore[operator]
    if not fitters or not others:
        return None
    f = max(fitters, key=lambda r: r.agreement)  # type: ignore[arg-type,return-value]
    b = max(others, key=lambda r: r.agreement)  # type: ignore[arg-type,return-value]
    return FitCost(f.name, f.fits_contradicted, f.agreement, b.name, b.agreement, images)  # type: ignore[arg-type]
