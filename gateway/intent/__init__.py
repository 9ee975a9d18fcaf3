"""Intent routing inside the gateway: settings section (``config``), stored routers (``models``, ``store``), one
replica's routers kept in step over the config bus (``runtime``), the request step (``step``) and stock answers
(``replies``). Import the submodules: ``interlock.settings`` imports ``config`` alone and must stay light.

The decisions themselves live in the ``router.intent`` library; this package wires it to the database, the
config bus, the pipeline and the admin API.
"""
