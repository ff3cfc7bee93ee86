"""improv's minimal demo generator, in improv's own shape; only the import line differs.

(improv: ``from improv.actor import Actor``.) It fills a matrix in setup,
puts one row a step in the store and sends the key down ``q_out``, then
keeps adding rows; ``stop`` saves the matrix to the working directory.
"""

import logging

import numpy as np

from rigd.compat.improv import Actor

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


class Generator(Actor):
    """Makes rows of integers for the processor."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data = None
        self.name = "Generator"
        self.frame_num = 0

    def __str__(self):
        return f"Name: {self.name}, Data: {self.data}"

    def setup(self):
        logger.info("Beginning setup for Generator")
        self.data = np.asmatrix(np.random.randint(100, size=(100, 5)))
        self.improv_logger.info("Completed setup for Generator")

    def stop(self):
        logger.info("Generator stopping")
        np.save("sample_generator_data.npy", self.data)
        return 0

    def runStep(self):
        if self.frame_num < np.shape(self.data)[0]:
            if self.store_loc:
                data_id = self.client.put(self.data[self.frame_num], f"Gen_raw: {self.frame_num}")
            else:
                data_id = self.client.put(self.data[self.frame_num])
            try:
                if self.store_loc:
                    self.q_out.put([[data_id, str(self.frame_num)]])
                else:
                    self.q_out.put(data_id)
                self.frame_num += 1
            except Exception as e:
                logger.error(f"Generator Exception: {e}")
        else:
            self.data = np.concatenate(
                (self.data, np.asmatrix(np.random.randint(10, size=(1, 5)))), axis=0
            )
