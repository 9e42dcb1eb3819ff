"""The Lightning callback: suscli.training.tracker's measurement at the start of every N-th training epoch (or every
N steps), logged to every logger of the trainer. It exists when lightning (or pytorch_lightning) is installed."""

from __future__ import annotations

import importlib
import warnings

from suscli.errors import UsageError, require_type
from suscli.training.tracker import SusceptibilityTracker, callback_measure, measure_every, scalars, training_accuracy


def _lightning() -> type | None:
    """Lightning's Callback base class, when lightning (or the older pytorch_lightning) is installed."""
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            return importlib.import_module(name).Callback
        except ImportError:
            continue
    return None


_Callback = _lightning()
if _Callback is not None:

    class SusceptibilityCallback(_Callback):  # type: ignore[misc, valid-type]
        """Lightning: measure at the start of every `every_n_epochs`-th training epoch (trainer.current_epoch =
        epochs trained so far) and once more at the end of training, with the first optimizer's step when
        `with_optimizer`. With `every_n_steps` instead: at the start of training (step 0), at the end of every train
        batch whose global step is a multiple of it, and at the end of training. r, zeta and the seconds go to every
        logger of the trainer (at its global step, beside the training loss) and to the tracker's JSONL. `acc_metric`
        names a logged training accuracy (0-1) whose latest value goes into the log: the knee rule of `suscli track`
        needs it. Only the global-zero process measures under distributed training."""

        def __init__(
            self,
            tracker: SusceptibilityTracker,
            with_optimizer: bool = False,
            acc_metric: str | None = None,
            every_n_epochs: int | None = None,
            every_n_steps: int | None = None,
        ):
            # now: given the tracker's inputs instead, the run failed as it started ("'Tensor' object has no attribute 'history'")
            require_type("SusceptibilityCallback tracker", tracker, SusceptibilityTracker)
            self.every_n_epochs, self.every_n_steps = measure_every(every_n_epochs, every_n_steps)
            self.tracker = tracker
            self.with_optimizer = with_optimizer
            self.acc_metric = acc_metric
            self.restored_acc: float | None = None  # the accuracy a checkpoint saved, for a resumed run's first epoch
            self._trainer = None  # set by setup: state_dict, called as a checkpoint is saved, gets no trainer
            self._named_unlogged = False  # warned that acc_metric names no metric the module logs
            self._named_unfit = False  # warned that it reads no fraction from 0 to 1 (a percentage)

        @property
        def state_key(self) -> str:
            """One per callback in the checkpoint: Lightning refuses two stateful callbacks under one key."""
            return self._generate_state_key(
                log=str(self.tracker.log), acc_metric=self.acc_metric, every_n_epochs=self.every_n_epochs, every_n_steps=self.every_n_steps
            )

        def state_dict(self) -> dict:
            """The latest training accuracy, saved in the checkpoint: a run resumed from it has logged none yet when
            its first epoch is measured, and that epoch's record would lose the accuracy the keep rules need."""
            return {"train_acc": self._acc(self._trainer)}

        def load_state_dict(self, state_dict: dict) -> None:
            self.restored_acc = state_dict.get("train_acc")

        def setup(self, trainer, pl_module, stage: str) -> None:  # noqa: ANN001 (Lightning's types)
            self._trainer = trainer

        def on_train_epoch_start(self, trainer, pl_module) -> None:  # noqa: ANN001
            if self.every_n_steps is not None:
                if trainer.global_step == 0 and self._last_step() != 0:  # the initialization
                    self._measure(trainer, pl_module)
            elif trainer.current_epoch % self.every_n_epochs == 0:
                self._measure(trainer, pl_module)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
            # under gradient accumulation the global step stays for several batches: measure it once, right after it was taken
            step = trainer.global_step
            if self.every_n_steps is not None and step % self.every_n_steps == 0 and self._last_step() != step:
                # after an epoch's last batch that epoch is trained (the log counts epochs completed, as the Hugging Face
                # callback does), but current_epoch counts it only once the epoch ends: the run's final model read one short
                self._measure(trainer, pl_module, epoch=trainer.current_epoch + int(trainer.is_last_batch))

        def on_train_end(self, trainer, pl_module) -> None:  # noqa: ANN001
            if self.every_n_steps is not None:
                if self._last_step() != trainer.global_step:  # the trained model, unless its step was just measured
                    self._measure(trainer, pl_module)
                return
            last = self.tracker.history[-1].epoch if self.tracker.history else None
            if last != trainer.current_epoch:  # the trained model; not twice when training stopped at a measured epoch
                self._measure(trainer, pl_module)

        def _acc(self, trainer) -> float | None:  # noqa: ANN001
            """The latest value of `acc_metric`, else the one the checkpoint this run resumed from saved."""
            acc = trainer.callback_metrics.get(self.acc_metric) if self.acc_metric and trainer is not None else None
            if acc is None and self.acc_metric and trainer is not None and trainer.callback_metrics and not self._named_unlogged:
                # the module logs metrics, none of them this one: a misspelt name, which would leave every record without
                # the training accuracy the keep rules need, found only when `suscli track` reads the log
                self._named_unlogged = True
                logged = ", ".join(sorted(trainer.callback_metrics))
                warnings.warn(
                    f"acc_metric {self.acc_metric!r} is not a metric the module logs ({logged}): the records get no training accuracy",
                    stacklevel=2,
                )
            if acc is None:
                return self.restored_acc
            try:
                return training_accuracy(acc)
            except UsageError as e:  # raised here, it would end the user's training run at the next measurement
                if not self._named_unfit:
                    self._named_unfit = True
                    warnings.warn(f"acc_metric {self.acc_metric!r}: {e.message}: the records get no training accuracy", stacklevel=2)
                return None

        def _last_step(self) -> int | None:
            return self.tracker.history[-1].global_step if self.tracker.history else None

        def _measure(self, trainer, pl_module, epoch: int | None = None) -> None:  # noqa: ANN001
            """Measure now, as `epoch` (epochs trained so far; default trainer.current_epoch)."""
            if not trainer.is_global_zero:
                return
            epoch = trainer.current_epoch if epoch is None else epoch
            optimizer = trainer.optimizers[0] if self.with_optimizer else None
            record = callback_measure(
                self.tracker,
                lambda: self.tracker.measure(
                    pl_module,
                    epoch,
                    optimizer=optimizer,
                    train_acc=self._acc(trainer),
                    step=trainer.global_step,
                    global_step=trainer.global_step if self.every_n_steps is not None else None,
                ),
                f"epoch {epoch}, step {trainer.global_step}",
            )
            if record is None:
                return
            for logger in trainer.loggers:
                logger.log_metrics(scalars(record), step=trainer.global_step)
