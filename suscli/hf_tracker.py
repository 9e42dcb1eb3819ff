"""Susceptibility in a Hugging Face `Trainer` run: measured at the start of training and at the end of every
`every_n_epochs`-th epoch, put into the Trainer's log history through `trainer.log`, so that every `report_to`
integration (TensorBoard, W&B, MLflow) receives r, zeta and the seconds beside the training loss, and the
tracker's JSONL that `suscli track --log` reads.

    trainer = Trainer(model=model, args=args, train_dataset=train)
    trainer.add_callback(SusceptibilityTrainerCallback(trainer, SusceptibilityTracker(unlabeled, log="run.jsonl")))
    trainer.train()

The callback holds the Trainer because a TrainerCallback cannot log by itself: only `trainer.log` reaches both
`state.log_history` and the reporting callbacks. transformers is imported only by this module.
"""

from __future__ import annotations

from transformers import Trainer, TrainerCallback

from suscli.tracker import SusceptibilityTracker, scalars


class SusceptibilityTrainerCallback(TrainerCallback):
    """Measure `trainer.model` with the tracker; epoch = epochs trained so far (0 = the model training starts
    from). With `with_optimizer`, the step is the Trainer's optimizer's own. Only the main process measures."""

    def __init__(self, trainer: Trainer, tracker: SusceptibilityTracker, *, every_n_epochs: int = 1, with_optimizer: bool = False):
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.trainer = trainer
        self.tracker = tracker
        self.every_n_epochs = every_n_epochs
        self.with_optimizer = with_optimizer

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201 (transformers' signature)
        self._measure(state)

    def on_epoch_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        if round(state.epoch) % self.every_n_epochs == 0 or round(state.epoch) >= args.num_train_epochs:
            self._measure(state)

    def _measure(self, state) -> None:  # noqa: ANN001
        if not state.is_world_process_zero:
            return
        optimizer = self.trainer.optimizer if self.with_optimizer else None
        record = self.tracker.measure(self.trainer.model, round(state.epoch or 0), optimizer=optimizer, step=state.global_step)
        self.trainer.log(scalars(record))
