"""A simulated Bambu Lab printer: a paho client that publishes real-shaped
``device/{serial}/report`` messages and answers ``pushall`` on ``device/{serial}/request``.

``model="X1"`` publishes the full print object every time (as X1-series printers do);
``model="P1"`` publishes only the fields that changed, and the full object only in answer
to ``pushall`` (as P1/A1-series printers do). Field names and shapes as in the public
protocol notes (OpenBambuAPI ``mqtt.md``): ``mc_remaining_time`` in minutes, ``print_error``
an int, ``mc_print_error_code`` a string.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt

IDLE_FIELDS: dict[str, Any] = {
    "gcode_state": "IDLE", "mc_percent": 0, "mc_remaining_time": 0, "layer_num": 0,
    "total_layer_num": 0, "subtask_name": "", "gcode_file": "", "subtask_id": "0",
    "task_id": "0", "print_error": 0, "mc_print_error_code": "0",
    "nozzle_temper": 24.5, "bed_temper": 23.9, "wifi_signal": "-47dBm",
    "spd_lvl": 2, "print_type": "idle", "home_flag": 0,
}


class SimPrinter:
    def __init__(self, serial: str, port: int, *, host: str = "127.0.0.1",
                 model: str = "X1", username: str | None = None, password: str | None = None,
                 ca_file: str | None = None) -> None:
        self.serial, self.model = serial, model
        self.fields: dict[str, Any] = dict(IDLE_FIELDS)
        self.pushalls = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"sim-{serial}-{uuid.uuid4().hex[:6]}")
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            context = ssl.create_default_context(cafile=ca_file)
            self.client.tls_set_context(context)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.host, self.port = host, port

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> SimPrinter:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("the simulated printer could not subscribe")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(f"device/{self.serial}/request", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: Any) -> None:
        try:
            data = json.loads(message.payload)
        except ValueError:
            return
        if data.get("pushing", {}).get("command") == "pushall":
            with self._lock:
                self.pushalls += 1
            self.publish_full(wait=False)  # on paho's thread: waiting would block it

    # -- reports ----------------------------------------------------------------------

    def _envelope(self, fields: dict[str, Any], msg: int) -> bytes:
        with self._lock:
            self._seq += 1
            body = {"command": "push_status", "msg": msg, "sequence_id": str(self._seq),
                    **fields}
        return json.dumps({"print": body}).encode()

    def publish_raw(self, payload: bytes | str, wait: bool = True) -> None:
        info = self.client.publish(f"device/{self.serial}/report", payload, qos=1)
        if wait:
            info.wait_for_publish(5)

    def publish_full(self, wait: bool = True) -> None:
        self.publish_raw(self._envelope(dict(self.fields), 0), wait)

    def set(self, **changes: Any) -> None:
        """Change fields and publish as this model does (full, or only what changed)."""
        changed = {k: v for k, v in changes.items() if self.fields.get(k) != v}
        self.fields.update(changes)
        if self.model == "X1":
            self.publish_full()
        elif changed:
            self.publish_raw(self._envelope(changed, 1))

    def start_print(self, name: str = "benchy", task: str = "101", layers: int = 120,
                    minutes: int = 42) -> None:
        """PREPARE, then RUNNING on layer 1 (two reports)."""
        self.set(gcode_state="PREPARE", subtask_name=name, gcode_file=f"/sdcard/{name}.3mf",
                 subtask_id=task, task_id=str(int(task) + 1000) if task.isdigit() and task != "0" else task,
                 total_layer_num=layers, mc_remaining_time=minutes, mc_percent=0,
                 layer_num=0, print_type="local")
        self.set(gcode_state="RUNNING", layer_num=1, mc_percent=1)

    def info_message(self) -> None:
        """A non-print message (the ``info`` module list), as printers also send."""
        self.publish_raw(json.dumps({"info": {"command": "get_version", "sequence_id": "0",
                                              "module": [{"name": "ota", "sw_ver": "01.07"}]}}))


def wait_until(test: Any, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or test}")
        time.sleep(0.05)
