"""Code that runs inside execution environments (the zygote and its forks).

Everything here uses the standard library only and stays importable on Python 3.9, because an
environment may run on any local interpreter a `python3.X` runtime is mapped to. The front launches
it as the top-level package `_fogbank_runtime` (see `zygote.launch_command`).
"""
