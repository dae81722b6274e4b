"""Authentication.

The core modules -- :mod:`~sdrest.auth.passwords`, :mod:`~sdrest.auth.store`,
:mod:`~sdrest.auth.audit`, :mod:`~sdrest.auth.throttle`, :mod:`~sdrest.auth.system` and
:mod:`~sdrest.auth.commands` -- are plain Python with no Flask dependency, so the CLI
(``sdrest users``, ``sdrest keys``) and the HTTP layer share one implementation; the Flask
wiring lives beside them.
"""
