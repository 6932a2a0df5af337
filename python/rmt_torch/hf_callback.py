"""rmt_torch's SpectralMonitor as a Hugging Face ``transformers.TrainerCallback`` (imported only
with transformers)."""
from transformers import TrainerCallback

from . import SpectralMonitor


class TrainerSpectralCallback(TrainerCallback):
    """Every ``every``-th optimizer step, analyses the model's weights (a
    :class:`rmt_torch.SpectralMonitor`), appends the records to ``jsonl`` and adds the summary
    (``rmt/alpha``, ``rmt/alpha_weighted``, ``rmt/spikes_tw``, ``rmt/layers``, and
    ``rmt/sharpness`` with ``sharpness=(inputs, targets)``) to the
    Trainer's logs. Options as :class:`rmt_torch.SpectralMonitor`.

    Example::

        >>> trainer = transformers.Trainer(model, args, train_dataset=data,  # doctest: +SKIP
        ...     callbacks=[rmt_torch.TrainerSpectralCallback(every=100, jsonl="spectra.jsonl")])
    """

    def __init__(self, every=100, jsonl=None, background=False, **options):
        self.every, self.jsonl, self.background, self.options = every, jsonl, background, options
        self.monitor = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.monitor = SpectralMonitor(
            model, every=self.every, jsonl=self.jsonl, background=self.background, **self.options
        )

    def on_step_end(self, args, state, control, **kwargs):
        self.monitor.observe(state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None:
            logs.update(self.monitor.latest_metrics())

    def on_train_end(self, args, state, control, **kwargs):
        self.monitor.finish()
        metrics = self.monitor.latest_metrics()
        if metrics:
            state.log_history.append({**metrics, "step": state.global_step})
