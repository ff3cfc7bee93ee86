"""improv's minimal demo processor, in improv's own shape; only the import line differs.

It takes a key from ``q_in``, gets the row from the store, and logs the
row's average and the running average.
"""

import logging

import numpy as np

from rigd.compat.improv import Actor

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


class Processor(Actor):
    """Averages the rows the generator sends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

    def setup(self):
        self.name = "Processor"
        self.frame = None
        self.avg_list = []
        self.frame_num = 1
        logger.info("Completed setup for Processor")

    def stop(self):
        logger.info("Processor stopping")

    def runStep(self):
        frame = None
        try:
            frame = self.q_in.get(timeout=0.05)
        except Exception:
            pass

        if frame is not None and self.frame_num is not None:
            self.done = False
            if self.store_loc:
                self.frame = self.client.getID(frame[0][0])
            else:
                self.frame = self.client.get(frame)
            avg = np.mean(self.frame[0])
            logger.info(f"Average: {avg}")
            self.avg_list.append(avg)
            logger.info(f"Overall Average: {np.mean(self.avg_list)}")
            logger.info(f"Frame number: {self.frame_num}")
            self.frame_num += 1
