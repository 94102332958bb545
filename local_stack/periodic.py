"""A background thread that does one step of work every interval, and a last one when stopped."""
import threading


class Periodic:
    """Subclasses implement step(final); start() runs it every `interval` seconds until stop()."""

    def __init__(self, interval, name):
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def step(self, final=False):
        raise NotImplementedError

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        """Stop the thread, then do a last step with what is still waiting."""
        self._stopped.set()
        self._thread.join(timeout=10)
        self.step(final=True)

    def _run(self):
        while not self._stopped.wait(self._interval):
            self.step()
