"""The slicer opener, ``printcore-open``: a separate program on staff computers that
handles ``print3d://`` links, checks them and opens the job's file in a slicer
(``cli``: the command; ``token``: the signed link, shared with the server; ``paths``,
``config``, ``register``).

Import budget: the standard library and platformdirs only, so it starts fast and freezes
small. Nothing in this package may import printcore, adapters or the rest of
entrypoints (others, such as ``entrypoints.web``, may import it)."""
