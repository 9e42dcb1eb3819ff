"""Whether fitting the labels a pool's consensus contradicts costs a model anything on new images.

The consensus contradicts two kinds of training label: wrong ones, and right ones that the voters get wrong. It
cannot tell them apart, and with weak voters the second kind is most of what it finds: on CIFAR-10's clean labels a
pool's consensus contradicts 11-25% of them (docs/validation.md). What tells them apart is what fitting them does.
Memorizing wrong labels costs a model on new images (the premise of the method); fitting right labels the voters
miss does not. Agreement with the consensus on the unlabeled images stands in for accuracy on new images, so a pool
where a model fits most contradicted labels and agrees not clearly less than the best other model has shown no
noise to memorize: its contradicted labels are not evidence of wrong labels, and the pool's noise estimate
and "likely memorized noise" say nothing there (suscli.judge.verdict).
"""

from __future__ import annotations

from dataclasses import dataclass

from suscli.measure.predictions import difference_is_clear
from suscli.results import Result


# A fitter fits more than this share of the contradicted labels: most of them. The claim tested is that they are
# mostly wrong labels, and a model that fits most of them at no cost refutes it; one that fits fewer may be fitting
# only the right ones among them (on human-random1, 17% noise, a model fitting 42% agreed best of all).
MOST = 0.5


# "Costs nothing": the fitter's agreement is not clearly below the best other model's, by the test that makes
# near-ties of agreement (suscli.measure.predictions.difference_is_clear: two binomial standard errors on the
# unlabeled images). Measured (docs/validation.md, "Does fitting the contradicted labels cost anything?"): clearly
# below in the pools on 40% human noise (0.58 and 0.65 times the best), on 17% human noise (0.92 and 0.78) and in
# `suscli demo`'s pool (0.87, 40% random labels); not clearly below on clean labels (0.96 and 1.01).
@dataclass(frozen=True)
class FitCost:
    """The pool's best-agreeing model among those that fit the contradicted labels, beside the best among the rest."""

    fitter: str  # the model that agrees most among those that fit most (> MOST) of the contradicted labels
    fits: float  # its fit on them
    agreement: float  # its agreement with the consensus on the unlabeled images
    best: str  # the model that agrees most among the others
    best_agreement: float
    images: int  # the unlabeled images the agreements are measured on
    # Only the two of them have an agreement: each one's consensus is the other's predictions, so the two agreements
    # are one number and cannot show a cost either way
    pair: bool = False

    @property
    def ratio(self) -> float:
        return self.agreement / self.best_agreement if self.best_agreement > 0 else float("inf")

    @property
    def free(self) -> bool:
        """Whether fitting the contradicted labels cost the fitter no agreement that the unlabeled images can show."""
        return not self.pair and not difference_is_clear(self.best_agreement, self.agreement, self.images)

    def why(self) -> str:
        if self.pair:
            return (
                f"{self.fitter} fits {100 * self.fits:.0f}% of the labels the consensus contradicts, and in a pool of two each "
                f"model's consensus on the unlabeled images is the other's predictions, so both agree with it "
                f"{100 * self.agreement:.1f}% of the time and nothing shows what fitting those labels costs"
            )
        return (
            f"{self.fitter} fits {100 * self.fits:.0f}% of the labels the consensus contradicts and agrees with it on the "
            f"unlabeled images {100 * self.agreement:.1f}% of the time, {self.ratio:.2f} times the best other model "
            f"({self.best}, {100 * self.best_agreement:.1f}%; not clearly below it on {self.images:,} images): fitting "
            "them costs nothing that the unlabeled images show, so they may be right labels that the voters get wrong rather than noise"
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
            "pair": self.pair,
        }


def fit_cost(rows: list[Result], images: int) -> FitCost | None:
    """FitCost over the rows with both agreement (on `images` unlabeled images) and a fit on the contradicted labels;
    None unless some fit most of them and some do not (nothing to compare)."""
    known = [r for r in rows if r.agreement is not None and r.fits_contradicted is not None]
    fitters = [r for r in known if r.fits_contradicted > MOST]  # type: ignore[operator]
    if not fitters or len(fitters) == len(known):
        return None
    f = max(fitters, key=lambda r: r.agreement)  # type: ignore[arg-type,return-value]
    b = max((r for r in known if r is not f), key=lambda r: r.agreement)  # type: ignore[arg-type,return-value]
    return FitCost(f.name, f.fits_contradicted, f.agreement, b.name, b.agreement, images, len(known) == 2)  # type: ignore[arg-type]
