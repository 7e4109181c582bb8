"""Hydra callbacks, configured under `hydra.callbacks` in conf/config.yaml."""

import logging
import sys

from hydra.experimental.callback import Callback

from alexnet_mnist.reporting import sweep_summary

log = logging.getLogger("alexnet_mnist")


class SweepSummary(Callback):
    """After a multirun, summary.csv and summary.md in the sweep directory: one row per job."""

    def on_multirun_end(self, config, **kwargs):
        sweep_dir = config.hydra.sweep.dir
        rows = sweep_summary.collect(sweep_dir)
        csv_path, md_path = sweep_summary.write(rows, sweep_dir)
        log.info("sweep summary: %s and %s", csv_path, md_path)
        failed = [row["job_dir"] for row in rows if row["status"] == "failed"]
        if failed:
            log.error("%d of %d jobs failed (see their logs): %s", len(failed), len(rows), ", ".join(failed))
            # Hydra only warns about exceptions in callbacks; the exit status is how scripts notice.
            sys.exit(1)
