"""rmt_torch's SpectralMonitor as a PyTorch Lightning callback (imported only with Lightning)."""
try:
    from lightning.pytorch import Callback
except ImportError:  # the standalone package name
    from pytorch_lightning import Callback

from . import SpectralMonitor, TempBalance


class LightningSpectralCallback(Callback):
    """Every ``every``-th optimizer step, analyses the module's weights (a
    :class:`rmt_torch.SpectralMonitor`), appends the records to ``jsonl`` and logs the summary
    (``rmt/alpha``, ``rmt/alpha_weighted``, ``rmt/spikes_tw``, ``rmt/layers``, and
    ``rmt/sharpness`` with ``sharpness=(inputs, targets)``) to the
    trainer's logger. Options as :class:`rmt_torch.SpectralMonitor`.

    Example::

        >>> trainer = lightning.Trainer(  # doctest: +SKIP
        ...     callbacks=[rmt_torch.LightningSpectralCallback(every=100, jsonl="spectra.jsonl")])
    """

    def __init__(self, every=100, jsonl=None, background=False, **options):
        super().__init__()
        self.every, self.jsonl, self.background, self.options = every, jsonl, background, options
        self.monitor = None

    def on_fit_start(self, trainer, pl_module):
        self.monitor = SpectralMonitor(
            pl_module, every=self.every, jsonl=self.jsonl, background=self.background, **self.options
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step % self.every != 0 or step == getattr(self, "_last_step", None):
            return
        self._last_step = step
        self.monitor.observe(step)
        metrics = self.monitor.latest_metrics()
        if metrics:
            pl_module.log_dict(metrics, on_step=True, on_epoch=False)

    def on_fit_end(self, trainer, pl_module):
        self.monitor.finish()


class LightningTempBalance(Callback):
    """TempBalance as a PyTorch Lightning callback: at the end of every ``every``-th training
    epoch the module's layers get their learning rates (:class:`rmt_torch.TempBalance` on the
    trainer's first optimizer, which ``configure_optimizers`` builds from
    ``rmt_torch.param_groups(self)``), and ``rmt/lr/<layer>`` is logged. Options as
    :class:`rmt_torch.TempBalance`.

    Example::

        >>> trainer = lightning.Trainer(callbacks=[rmt_torch.LightningTempBalance(0.05)])  # doctest: +SKIP
    """

    def __init__(self, base_lr, every=1, map="linear", jsonl=None, **options):
        super().__init__()
        self.base_lr, self.every, self.map, self.jsonl, self.options = base_lr, every, map, jsonl, options
        self.balance = None

    def on_fit_start(self, trainer, pl_module):
        self.balance = TempBalance(
            trainer.optimizers[0], pl_module, self.base_lr, every=self.every, map=self.map, jsonl=self.jsonl,
            **self.options,
        )

    def on_train_epoch_end(self, trainer, pl_module):
        allocation = self.balance.step(trainer.current_epoch)
        if allocation is not None:
            pl_module.log_dict({f"rmt/lr/{name}": value for name, value in allocation["values"].items()})

    def on_fit_end(self, trainer, pl_module):
        self.balance.finish()
