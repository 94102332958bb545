"""A stand-in for the template's SaltSchedule rule: the salt rotation (aggregator/salts.py) at start, so the
first click already has a salt, then at the rule's rate, as EventBridge would run it."""
import time

from aggregator import salts
from local_stack.periodic import Periodic
from local_stack.template import schedule_seconds

RULE = "SaltSchedule"


class SaltSchedule(Periodic):
    """Rotates the salts of `table_name` now and every interval until stopped; a failed run is not fatal."""

    def __init__(self, client, table_name, interval=None, out=None, clock=time.time):
        super().__init__(schedule_seconds(RULE) if interval is None else interval, name="salt-schedule")
        self._client, self._table_name, self._out, self._clock = client, table_name, out, clock

    def start(self):
        self.step()
        return super().start()

    def step(self, final=False):
        if final:
            return  # EventBridge does not fire on a shutdown
        try:
            salts.rotate(self._client, self._table_name, self._clock(), out=self._out)
        except salts.RotationError:
            pass  # as in Lambda: its summary line says why, and the next run tries again
