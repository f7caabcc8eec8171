"""An input form generated from pydantic models: one widget per field, validated as you type."""

from __future__ import annotations

import enum
import html
import json
import types
import typing
from typing import Any

import ipywidgets as widgets
from pydantic import BaseModel, ValidationError
from traitlets import Bool

from germinate_nb.core.schema import type_name

__all__ = ["InputForm"]


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


_TEXT_KINDS: dict[Any, tuple[str, str]] = {
    int: ("int", "an integer"),
    float: ("float", "a number"),
    str: ("str", ""),
}


class _Field:
    """One form row: the widget, how to read it, and where its error goes."""

    def __init__(self, name: str, annotation: Any, default: Any, required: bool) -> None:
        self.name = name
        self.annotation = annotation
        base, self.optional = _unwrap_optional(annotation)
        self.kind = "json"
        has_default = not required
        desc = f"{name}{'' if has_default else ' *'}"
        common = {"description": desc, "style": {"description_width": "140px"}}
        layout = widgets.Layout(width="420px")
        value = default if has_default and default is not None else None
        if base is bool:
            self.kind = "bool"
            self.widget: widgets.Widget = widgets.Checkbox(value=bool(value), indent=True, **common)
        elif base in _TEXT_KINDS:
            self.kind, placeholder = _TEXT_KINDS[base]
            self.widget = widgets.Text(
                value="" if value is None else str(value),
                layout=layout,
                placeholder=placeholder,
                **common,
            )
        elif typing.get_origin(base) is typing.Literal or (
            isinstance(base, type) and issubclass(base, enum.Enum)
        ):
            self.kind = "choice"
            if typing.get_origin(base) is typing.Literal:
                options = [(str(v), v) for v in typing.get_args(base)]
            else:
                options = [(str(m.value), m) for m in base]
            if self.optional or not required:
                options = [("(none)" if self.optional else "(default)", _UNSET), *options]
            self.widget = widgets.Dropdown(options=options, layout=layout, **common)
            if value is not None:
                self.widget.value = value
        else:
            text = "" if value is None else json.dumps(_jsonable(value))
            self.widget = widgets.Textarea(
                value=text,
                layout=widgets.Layout(width="420px", height="60px"),
                placeholder=f"JSON: {type_name(base)}",
                **common,
            )
        self.error = widgets.HTML(value="")
        self.error.add_class("germinate-field-error")
        self.row = widgets.HBox([self.widget, self.error])

    def read(self) -> tuple[Any, str | None]:
        """(value or _UNSET, parse error) from the widget."""
        value = self.widget.value
        if self.kind == "bool":
            return value, None
        if self.kind == "choice":
            return value, None
        text = str(value).strip()
        if text == "":
            return _UNSET, None
        if self.kind == "int":
            try:
                return int(text), None
            except ValueError:
                return _UNSET, f"'{text}' is not an integer"
        if self.kind == "float":
            try:
                return float(text), None
            except ValueError:
                return _UNSET, f"'{text}' is not a number"
        if self.kind == "str":
            return value, None
        try:
            return json.loads(text), None
        except json.JSONDecodeError as err:
            return _UNSET, f"invalid JSON: {err.msg} (column {err.colno})"


class _Unset:
    def __repr__(self) -> str:
        return "(unset)"


_UNSET: Any = _Unset()


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


class InputForm(widgets.VBox):
    """Fields of the root tasks' input models; ``value`` is the run input, ``valid`` its state."""

    valid = Bool(True, help="Do the current values validate into every root input model?").tag(
        sync=True
    )

    def __init__(self, models: list[type[BaseModel]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("germinate-input-form")
        self.models = [m for i, m in enumerate(models) if m not in models[:i]]
        self.fields: dict[str, _Field] = {}
        for model in self.models:
            for name, info in model.model_fields.items():
                if name in self.fields:
                    continue
                self.fields[name] = _Field(name, info.annotation, info.default, info.is_required())
        self.message = widgets.HTML(value="")
        for f in self.fields.values():
            f.widget.observe(self._on_value_change, names="value")
        title = ", ".join(m.__name__ for m in self.models)
        header = widgets.HTML(
            f"<b>Run input</b> <span style='color:#57606a'>({html.escape(title)})</span>"
            if self.fields
            else "<b>Run input</b> <span style='color:#57606a'>(the root tasks take none)</span>"
        )
        self.children = [header, *(f.row for f in self.fields.values()), self.message]
        self.validate()

    def set(self, **values: Any) -> None:
        """Fill fields from Python values (as a user typing them would)."""
        for name, value in values.items():
            field = self.fields[name]
            if field.kind in ("bool", "choice"):
                field.widget.value = value
            elif field.kind in ("str",):
                field.widget.value = str(value)
            elif field.kind in ("int", "float"):
                field.widget.value = str(value)
            else:
                field.widget.value = json.dumps(_jsonable(value))

    @property
    def value(self) -> dict[str, Any]:
        """The run input as a dict (fields left empty are omitted, so defaults apply)."""
        data = {}
        for name, field in self.fields.items():
            value, _ = field.read()
            if value is not _UNSET:
                data[name] = value
        return data

    def _on_value_change(self, change: dict[str, Any]) -> None:
        self.validate()

    def validate(self) -> bool:
        """Validate the current values; show pydantic's message beside each bad field."""
        errors: dict[str, str] = {}
        data: dict[str, Any] = {}
        for name, field in self.fields.items():
            value, problem = field.read()
            if problem:
                errors[name] = problem
            elif value is not _UNSET:
                data[name] = value
        other: list[str] = []
        for model in self.models:
            try:
                model.model_validate(data)
            except ValidationError as err:
                for e in err.errors():
                    loc = e.get("loc") or ()
                    key = str(loc[0]) if loc else ""
                    if key in self.fields and key not in errors:
                        errors[key] = e.get("msg", "invalid")
                    elif key not in self.fields:
                        other.append(f"{model.__name__}: {e.get('msg', 'invalid')}")
        for name, field in self.fields.items():
            field.error.value = (
                f"<span style='color:#cf222e'>{html.escape(errors[name])}</span>"
                if name in errors
                else ""
            )
        self.message.value = (
            "<span style='color:#cf222e'>" + html.escape("; ".join(other)) + "</span>"
            if other
            else ""
        )
        self.valid = not errors and not other
        return self.valid
