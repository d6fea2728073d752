"""A progress bar on stderr for the long commands (report, profile): what
runs now and how far the run is. On a terminal it redraws one line; in a
log it prints one line per step."""
import sys
import time


class Progress:
    def __init__(self, total, stream=None, width=28):
        self.total = max(int(total), 1)
        self.done = 0
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.start = time.perf_counter()
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def step(self, label):
        """Announces the task about to run."""
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        line = f"[{bar}] {self.done}/{self.total} {elapsed:5.0f}s {label}"
        if self.tty:
            self.stream.write("\r\033[K" + line[:150])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.done += 1

    def close(self):
        elapsed = time.perf_counter() - self.start
        end = f"[{'#' * self.width}] {self.total}/{self.total} {elapsed:5.0f}s done"
        self.stream.write(("\r\033[K" if self.tty else "") + end + "\n")
        self.stream.flush()
