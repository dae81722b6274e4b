"""The worker's preview sender: frames are encoded and sent off the sampling thread; while one is
being sent only the latest frame waits, and flush() returns once every kept frame is out.
(tests/api/test_events.py sees previews of a real generation arrive over the event stream.)"""

from __future__ import annotations

import io
import threading
from typing import Any

from PIL import Image

from sdrest.worker.runner import PreviewSender


def test_a_slow_send_keeps_only_the_latest_frame_and_flush_waits_for_it() -> None:
    sent: list[dict[str, Any]] = []
    first_taken, go_on = threading.Event(), threading.Event()

    def send(message: dict[str, Any]) -> None:
        if not sent:
            first_taken.set()
            go_on.wait(30)  # the first preview is slow to go out
        sent.append(message)

    previews = PreviewSender(send)
    previews.offer("job", 1, Image.new("RGB", (8, 8), (255, 0, 0)))
    assert first_taken.wait(30)
    for step, colour in ((2, (0, 255, 0)), (3, (0, 0, 255))):  # both arrive while step 1 is sent
        previews.offer("job", step, Image.new("RGB", (8, 8), colour))
    go_on.set()
    previews.flush()
    assert [(m["type"], m["job_id"], m["step"]) for m in sent] == [("preview", "job", 1), ("preview", "job", 3)]
    assert Image.open(io.BytesIO(sent[1]["png"])).getpixel((0, 0)) == (0, 0, 255)  # a real PNG of frame 3
