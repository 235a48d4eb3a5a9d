"""The compatibility matrix: real frameworks on real servers through asgibridge.

Run it with ``python -m compat_matrix`` (see :mod:`compat_matrix.cli` for
the options). The pieces:

* :mod:`compat_matrix.apps`: one scenario app per framework, and the bridge
  and prefix mount each cell puts around it;
* :mod:`compat_matrix.servers`: how each server is started and stopped;
* :mod:`compat_matrix.scenarios`: the client side of every scenario;
* :mod:`compat_matrix.known`: why a scenario does not apply, or fails, where
  the reason is known;
* :mod:`compat_matrix.envs`: one virtual environment per Python version;
* :mod:`compat_matrix.report`: ``RESULTS.md``, ``results.json`` and
  ``docs/compat.md``.
"""
