"""A live viewer for the example: subscribes to the ZmqPublisher and prints frames.

python examples/improv_demo/view.py [tcp://127.0.0.1:5557]
"""

from __future__ import annotations

import json
import sys

import numpy as np
import zmq


def main(address: str = "tcp://127.0.0.1:5557") -> None:
    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.connect(address)
    socket.setsockopt(zmq.SUBSCRIBE, b"frames")
    print(f"listening on {address}; Ctrl-C to quit")
    while True:
        _, header, data = socket.recv_multipart()
        meta = json.loads(header)
        image = np.frombuffer(data, dtype=meta["dtype"]).reshape(meta["shape"])
        y, x = np.unravel_index(int(np.argmax(image)), image.shape)
        print(f"frame {meta['frame_id']}: brightest pixel at ({y}, {x}), max {image.max()}")


if __name__ == "__main__":
    main(*sys.argv[1:])
