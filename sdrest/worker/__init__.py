"""The generation worker: a supervised child process that owns the native library.

A native abort (ggml assertion, segfault, out-of-memory kill) ends only the child; the
:class:`~sdrest.worker.supervisor.Supervisor` in the server process marks the running job
failed, starts a new child and carries on with the queue.
"""
