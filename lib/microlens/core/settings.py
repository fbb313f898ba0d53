"""Settings dataclasses from JSON dicts and from command lines.

* :func:`from_known_fields`: ``cls(**data)`` where an unknown key is answered by the valid ones.
* :func:`add_dataclass_options` / :func:`dataclass_overrides`: one ``--option`` per field of a
  settings dataclass, typed by the field's annotation (``bool`` as ``--x / --no-x``, so that
  ``--x False`` cannot silently mean True), and the options given back as a dict.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import fields


def from_known_fields(cls, data: dict, what: str):
    """``cls(**data)``; a key that is not a field of ``cls`` is a ValueError naming the valid keys.

    ``what`` names the settings in the message, e.g. ``"ModelConfig settings"``.
    """
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; valid: {sorted(valid)}")
    return cls(**data)


SUPPORTED_TYPES = "bool, int, float, str, tuple[int | float | str, ...] and their Optional forms"
"""Field annotations that :func:`add_dataclass_options` turns into options."""

_SCALARS = (bool, int, float, str)


def _strip_optional(annotation):
    """``X | None`` -> ``(X, True)``; anything else -> ``(annotation, False)``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1 and len(typing.get_args(annotation)) == 2:
            return members[0], True
    return annotation, False


def _option_kwargs(cls, field: dataclasses.Field, annotation) -> dict:
    """``parser.add_argument`` keyword arguments for one field (default None: 'not given')."""
    annotation, optional = _strip_optional(annotation)
    default = (field.default if field.default is not dataclasses.MISSING
               else "required" if field.default_factory is dataclasses.MISSING
               else "computed")
    help_text = f"(default: {default})"
    if annotation is bool:
        return dict(action=argparse.BooleanOptionalAction, default=None, help=help_text)
    if annotation in _SCALARS:
        return dict(type=annotation, default=None, help=help_text,
                    metavar=annotation.__name__.upper())
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if args and args[-1] is Ellipsis:
            item, nargs = args[0], "+"
        else:
            item, nargs = (args[0] if args else None), len(args)
        if args and all(a is item or a is Ellipsis for a in args) and item in _SCALARS \
                and item is not bool:
            return dict(type=item, nargs=nargs, default=None, help=help_text,
                        metavar=item.__name__.upper())
    raise TypeError(f"{cls.__name__}.{field.name} has type {annotation!r}"
                    f"{' (optional)' if optional else ''}, which has no command-line form; "
                    f"supported: {SUPPORTED_TYPES} (or pass it in skip=)")


def add_dataclass_options(parser: argparse.ArgumentParser, cls, *, skip: Iterable[str] = (),
                          choices: Mapping[str, Iterable] | None = None) -> None:
    """Add one ``--field-name`` option per field of the dataclass ``cls``.

    Every option defaults to None ("not given"), so :func:`dataclass_overrides` can tell the
    options a user gave from the dataclass's own defaults (which the help text shows).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    cls : dataclass type
        Its fields' annotations (strings under ``from __future__ import annotations`` are
        resolved) choose the option's form: ``bool`` becomes ``--x / --no-x``; ``int``,
        ``float`` and ``str`` take one value of that type; ``tuple[float, float]`` takes two,
        ``tuple[int, ...]`` one or more.
    skip : iterable of str
        Fields without an option (e.g. a nested settings dataclass).
    choices : mapping, optional
        Valid values of some fields, e.g. ``{"device": DEVICES}``; argparse then rejects
        anything else with a message naming them.

    Raises
    ------
    TypeError
        For a field whose type has no command-line form (the message names the field, its type
        and the supported types).
    """
    skip, choices = set(skip), dict(choices or {})
    unknown = sorted((skip | set(choices)) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}; valid: "
                         f"{sorted(f.name for f in fields(cls))}")
    hints = typing.get_type_hints(cls)
    for field in fields(cls):
        if field.name in skip:
            continue
        kwargs = _option_kwargs(cls, field, hints[field.name])
        if field.name in choices:
            kwargs["choices"] = list(choices[field.name])
            kwargs.pop("metavar", None)
        parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, **kwargs)


def dataclass_overrides(args: argparse.Namespace, cls, *, skip: Iterable[str] = ()) -> dict:
    """The fields of ``cls`` given on the command line, as ``{name: value}``.

    Tuple fields come back as tuples, ready for ``dataclasses.replace`` or ``cls(**...)``.
    """
    skip = set(skip)
    out = {}
    for field in fields(cls):
        value = getattr(args, field.name, None)
        if field.name in skip or value is None:
            continue
        out[field.name] = tuple(value) if isinstance(value, list) else value
    return out


__all__ = ["SUPPORTED_TYPES", "add_dataclass_options", "dataclass_overrides",
           "from_known_fields"]


@dataclasses.dataclass(frozen=True)
class DeclaredField:
    """A dataclass field as its source declares it: ``name: annotation = default  # help``."""

    name: str
    annotation: str            # as written, e.g. ``"str | None"``
    default: typing.Any        # the literal default; :data:`NOT_LITERAL` when it is computed
    help: str                  # the trailing comment (with its continuation lines); "" if none


NOT_LITERAL = object()
""":attr:`DeclaredField.default` of a field whose default is not a plain literal."""


def declared_fields(module: str, class_name: str) -> dict[str, DeclaredField]:
    """The fields of a settings dataclass, read from its source without importing its module.

    Each field's help text is its trailing comment; comment-only lines right below it whose
    text starts with more than one space (``#   more``) continue it. Fields of base classes
    (defined in the same module or imported into it by name) come first, as in the dataclass.
    Reading the source keeps a registry built from the help texts (e.g. the notebooks') free of
    the heavy imports of the modules that declare the settings (torch).

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"microlens.simulation.simulate"``.
    class_name : str
        A class defined at the top level of that module.

    Raises
    ------
    LookupError
        When the module has no such class.
    """
    import ast
    import importlib.util
    import io
    import tokenize
    from pathlib import Path

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise LookupError(f"no module {module!r}")
    source = Path(spec.origin).read_text(encoding="utf-8")
    tree = ast.parse(source)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    if class_name not in classes:
        raise LookupError(f"{module} has no class {class_name!r}; its classes: "
                          f"{', '.join(classes) or 'none'}")
    comments: dict[int, tuple[bool, str]] = {}  # line -> (comment-only line, text after '#')
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            alone = not token.line[:token.start[1]].strip()
            comments[token.start[0]] = (alone, token.string[1:])

    out: dict[str, DeclaredField] = {}
    for base in classes[class_name].bases:
        if not isinstance(base, ast.Name):
            continue
        if base.id in classes:
            out.update(declared_fields(module, base.id))
            continue
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and any(a.name == base.id and a.asname is None
                                                        for a in node.names):
                package = module.rpartition(".")[0] if node.level else ""
                for _ in range(max(node.level - 1, 0)):
                    package = package.rpartition(".")[0]
                origin = ".".join(p for p in (package, node.module or "") if p)
                out.update(declared_fields(origin, base.id))
    for node in classes[class_name].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        alone, text = comments.get(node.end_lineno, (True, ""))
        parts = [] if alone else [text.strip()]
        line = node.end_lineno + 1
        while parts and line in comments and comments[line][0] \
                and comments[line][1].startswith("  "):
            parts.append(comments[line][1].strip())
            line += 1
        try:
            default = ast.literal_eval(node.value) if node.value is not None else NOT_LITERAL
        except ValueError:
            default = NOT_LITERAL
        out[node.target.id] = DeclaredField(node.target.id, ast.unparse(node.annotation),
                                            default, " ".join(parts))
    return out
