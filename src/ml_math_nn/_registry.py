"""One style for every registry of the library: a class registers itself by defining ``name``.

A family of components (optimisers, schedules, activations, losses, layers) has a base
class that holds a :class:`Registry` and registers its subclasses in
``__init_subclass__``::

    class Optimizer:
        name: ClassVar[str] = ""
        registry: ClassVar[Registry[type[Optimizer]]] = Registry("optimizer")

        def __init_subclass__(cls, **kwargs: Any) -> None:
            super().__init_subclass__(**kwargs)
            cls.registry.add(cls)

A subclass that sets ``name`` in its own body (``name = "adam"``) is registered under
it; one that does not (an abstract base, a test's helper) is not.  Adding a component is
then one class in its module: nothing else to list, and a registered name always builds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T", bound=type)


class Registry(Mapping[str, T], Generic[T]):
    """Classes by the name that selects them in options, in the order they were defined.

    Parameters
    ----------
    what : str
        What the classes are, for messages: ``"optimizer"`` gives
        ``unknown optimizer 'x'; choose one of: sgd, adam, ...``.
    key : callable, optional
        The name a class is registered under (``None`` or ``""``: not registered).  By
        default the ``name`` defined in the class's own body; the layer types of model
        files use the class name (``lambda cls: cls.__name__``).
    """

    def __init__(self, what: str, key: Callable[[T], str | None] | None = None) -> None:
        self.what = what
        self._key = key
        self._classes: dict[str, T] = {}

    def add(self, cls: T) -> None:
        """Register ``cls`` under its key: the ``name`` defined in its own body (if any) by default."""
        name = cls.__dict__.get("name") if self._key is None else self._key(cls)
        if not name:
            return
        if not isinstance(name, str):
            raise TypeError(f"{cls.__qualname__}.name must be a string, got {name!r}")
        previous = self._classes.get(name)
        if previous is not None and previous.__qualname__ != cls.__qualname__:
            raise ValueError(f"{self.what} name {name!r} is taken by {previous.__qualname__}")
        self._classes[name] = cls  # a class defined again (a reloaded module) replaces itself

    def lookup(self, name: str) -> T:
        """The class registered as ``name``; ``ValueError`` listing the choices otherwise."""
        cls = self._classes.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(f"unknown {self.what} {name!r}; choose one of: {', '.join(self._classes)}")
        return cls

    def __getitem__(self, name: str) -> T:
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._classes)})"
