"""Where tests start child interpreters: outside the checkout, so that
`import pyasync` in the child finds the installed package (with its compiled
modules) and not the bare source directory."""
import tempfile

CHILD_CWD = tempfile.gettempdir()
