"""Susceptibility in a Hugging Face `Trainer` run: measured at the start of training and at the end of every
`every_n_epochs`-th epoch (or of every `every_n_steps`-th optimizer step, and of the last one), put into the Trainer's log history through `trainer.log`, so that every `report_to`
integration (TensorBoard, W&B, MLflow) receives r, zeta and the seconds beside the training loss, and the
tracker's JSONL that `suscli track --log` reads.

    trainer = Trainer(model=model, args=args, train_dataset=train)
    trainer.add_callback(SusceptibilityTrainerCallback(trainer, SusceptibilityTracker(unlabeled, log="run.jsonl")))
    trainer.train()

The callback holds the Trainer because a TrainerCallback cannot log by itself: only `trainer.log` reaches both
`state.log_history` and the reporting callbacks. transformers is imported only by this module.
"""

from __future__ import annotations

import math

from transformers import Trainer, TrainerCallback

from suscli.errors import require_type
from suscli.training.tracker import SusceptibilityTracker, callback_measure, measure_every, scalars


def epochs_begun(epoch: float) -> int:
    """The epoch a Trainer's fractional `state.epoch` ends: a run cut short by `max_steps` (2.5 epochs) ends its
    third, as Lightning counts it. Rounded, its final model was logged as epoch 2 and replaced the record of the
    model that ended epoch 2."""
    whole = round(epoch)
    return whole if math.isclose(epoch, whole, abs_tol=1e-6) else math.ceil(epoch)


class SusceptibilityTrainerCallback(TrainerCallback):
    """Measure `trainer.model` with the tracker; epoch = epochs trained so far (0 = the model training starts
    from). With `every_n_steps`, at the end of every optimizer step that is a multiple of it and of the last step;
    the records carry the global step. With `with_optimizer`, the step is the Trainer's optimizer's own. Only the
    main process measures."""

    def __init__(
        self,
        trainer: Trainer,
        tracker: SusceptibilityTracker,
        *,
        every_n_epochs: int | None = None,
        every_n_steps: int | None = None,
        with_optimizer: bool = False,
    ):
        # now: given the tracker's inputs instead, the run failed as it started ("'Tensor' object has no attribute 'history'")
        require_type("SusceptibilityTrainerCallback tracker", tracker, SusceptibilityTracker)
        self.every_n_epochs, self.every_n_steps = measure_every(every_n_epochs, every_n_steps)
        self.trainer = trainer
        self.tracker = tracker
        self.with_optimizer = with_optimizer

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201 (transformers' signature)
        self._measure(state)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        # called after each optimizer step (not between accumulated batches), with state.global_step already counted
        if self.every_n_steps is not None and (state.global_step % self.every_n_steps == 0 or state.global_step >= state.max_steps):
            should_log = control.should_log  # trainer.log clears it: the Trainer's own log of this step (the loss) must still happen
            self._measure(state)
            control.should_log = should_log
        return control

    def on_epoch_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        # the last epoch by the step count: under max_steps, num_train_epochs says nothing of when training ends
        if self.every_n_epochs is not None and (
            epochs_begun(state.epoch) % self.every_n_epochs == 0 or state.global_step >= state.max_steps
        ):
            self._measure(state)

    def _measure(self, state) -> None:  # noqa: ANN001
        if not state.is_world_process_zero:
            return
        optimizer = self.trainer.optimizer if self.with_optimizer else None
        by_step = self.every_n_steps is not None
        # mid-epoch, state.epoch is fractional: measured by steps, the record's epoch is the epochs completed so far
        epoch = math.floor(state.epoch or 0) if by_step else epochs_begun(state.epoch or 0)
        record = callback_measure(
            self.tracker,
            lambda: self.tracker.measure(
                self.trainer.model, epoch, optimizer=optimizer, step=state.global_step, global_step=state.global_step if by_step else None
            ),
            f"step {state.global_step}",
        )
        if record is not None:
            self.trainer.log(scalars(record))
