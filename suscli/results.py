"""The result record: one flat row per model, which every report (table, JSON, CSV, Markdown) is a view of."""

from __future__ import annotations

import json
import math
import types
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Union, get_args, get_origin, get_type_hints


# A details key: the row was taken from a results file, not measured in this run (suscli.run.audit.cached_row).
REUSED = "reused"
# A details key: the note of a row measured again because a source file of its architecture changed since the stored
# result (suscli.run.audit.cached_row), a fact of this run that the results file does not keep, as REUSED.
AGAIN = "measured_again"


@dataclass
class Result:
    name: str
    path: str
    status: str = "ok"  # "ok", or "error" when the model could not be loaded or run
    error: str | None = None  # the one-line reason when status is "error"
    arch: str | None = None
    epoch: int | None = None
    susceptibility: float | None = None  # mean r over the random-label batches
    susceptibility_sem: float | None = None
    zeta: float | None = None  # running mean of susceptibility over a run's epochs up to this one (suscli track)
    train_acc: float | None = None
    train_acc_low: float | None = None  # 95% interval when estimated on a sample
    train_acc_high: float | None = None
    train_n: int | None = None
    val_acc: float | None = None  # accuracy on the held-out images (--val-data) with their given, maybe noisy, labels
    val_acc_low: float | None = None  # its 95% Wilson interval: the held-out images are a sample of what the model will see
    val_acc_high: float | None = None
    val_n: int | None = None
    gap: float | None = None  # train_acc - val_acc: how much better it fits its training labels than labels it never saw
    gap_low: float | None = None  # 95% interval of the gap (Newcombe's hybrid score interval, suscli.measure.accuracy.gap)
    gap_high: float | None = None
    agreement: float | None = None  # share of unlabeled images on which it predicts the pool's consensus (suscli.judge.rules)
    fits_contradicted: float | None = None  # share of the training labels the consensus contradicts that it fits (suscli.judge.noise)
    clean_fit: float | None = None  # share of the training labels the consensus confirms that it fits
    region: int | None = None  # 1-4 (docs/rank.md), set when ranked in a pool
    verdict: str | None = None  # suscli.judge.verdict: likely memorized noise, fits, resists noise, unclear, underfit...
    verdict_why: str | None = None  # the numbers behind the verdict
    keep: bool | None = None  # suscli track: True on the epoch to keep (the --keep rule)
    held_out_best: bool | None = None  # suscli track --val-data: True on the epoch with the highest held-out accuracy
    sha256: str | None = None  # the checkpoint file's: what keys its stored results
    # the weights' own, as loaded: the same for every file of one model's weights (suscli.judge.regions.first_of); none
    # in a row stored by an earlier release, whose file's sha256 then tells its copies alone
    weights_sha256: str | None = None
    seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # per-batch values, preprocessing used: JSON only

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def reused(self) -> bool:
        """Taken from a results file, so measured in an earlier run (or for an earlier entry of the same checkpoint)."""
        return bool(self.details.get(REUSED))

    def flat(self) -> dict[str, Any]:
        """The row without nested fields, for CSV and tables (notes joined with '; ')."""
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("details", "notes")}
        row["notes"] = "; ".join(self.notes)
        return row

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def nulled(value: Any, found: list[list[Any]] | None = None, at: tuple[Any, ...] = ()) -> Any:
    """`value` with every number that is not finite as null: JSON has no NaN or Infinity, and strict readers
    (JavaScript's JSON.parse, Go's encoding/json) refuse them. Each one's place (keys and list positions down to it, a key as json
    writes it: 1 as "1") and its word ("NaN", "Infinity", "-Infinity") are added to `found`, for a reader that must
    put it back (the results file, suscli.run.store)."""
    if isinstance(value, float) and not math.isfinite(value):
        if found is not None:
            found.append([list(at), json.dumps(value)])
        return None
    if isinstance(value, dict):
        return {k: nulled(v, found, (*at, k if isinstance(k, str) else json.dumps(k))) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nulled(v, found, (*at, i)) for i, v in enumerate(value)]
    return value


STATUSES = ("ok", "error")


def wrong_field(data: dict[str, Any]) -> str | None:
    """What is wrong with a stored row (a results file edited by hand), as "susceptibility is 'abc'", or None when
    every field has the type suscli writes: a row taken as it was failed far from the file, in whatever compared or
    added its value ("internal error: TypeError"). Fields suscli does not know (a newer release's) are left alone."""
    hints = get_type_hints(Result)
    for f in fields(Result):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                return f"{f.name} is missing"
        elif not _fits(data[f.name], hints[f.name]):
            return f"{f.name} is {data[f.name]!r}"
    if data.get("status", "ok") not in STATUSES:
        return f"status is {data['status']!r}, neither 'ok' nor 'error'"
    return None


def _fits(value: Any, hint: Any) -> bool:
    """Whether a value read from JSON has the type `hint` names: a whole number passes as a float, and a float that is
    whole as a whole number (an earlier release wrote epoch 3 as 3.0); a bool passes as neither."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, h) for h in get_args(hint))
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, (int, float))
    if hint is int:
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if origin is list:
        return isinstance(value, list) and all(_fits(v, get_args(hint)[0]) for v in value)
    return isinstance(value, origin or hint)


FLAT_COLUMNS = [f.name for f in fields(Result) if f.name != "details"]
# The whole-number columns (epoch, counts, region): a table of rows keeps them whole where some row has none.
INT_COLUMNS = [name for name, hint in get_type_hints(Result).items() if hint is int or int in get_args(hint)]
# The number and yes/no columns: a table keeps them so where no row has a value (no --train-data: no train_acc anywhere).
FLOAT_COLUMNS = [name for name, hint in get_type_hints(Result).items() if hint is float or float in get_args(hint)]
BOOL_COLUMNS = [name for name, hint in get_type_hints(Result).items() if hint is bool or bool in get_args(hint)]
