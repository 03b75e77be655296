"""YAML as users write it: ``6e-4`` is a number, and a key given twice is an error.

PyYAML follows YAML 1.1, whose floats need a dot: ``6e-4`` and ``1e30`` would be read as
strings and then refused as "not a number". YAML 1.2 (and every user) reads them as numbers. A
mapping that names a key twice would silently keep the last value; it is refused instead, and so is
a key that is a list or a mapping (``{[a]: 1}``), which no Python mapping can hold.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import yaml

_EXPONENT_FLOAT = re.compile(r'^[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+$')


class _UsersLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):  # a list or a mapping: SafeLoader's construct_mapping refuses it
                break
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f'duplicate key {key!r}', key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_UsersLoader.add_implicit_resolver('tag:yaml.org,2002:float', _EXPONENT_FLOAT, list('-+0123456789'))


def load_yaml(text: str) -> Any:
    """``text`` read as YAML 1.1 with YAML 1.2's exponent floats, refusing duplicate keys.

    Raises
    ------
    yaml.YAMLError
        For malformed YAML, a key given twice in one mapping and a key that is a list or a mapping.
    """
    return yaml.load(text, Loader=_UsersLoader)  # noqa: S506 (a SafeLoader)
