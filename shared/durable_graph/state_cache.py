"""The state model of recent states, so a step's model is derived from the previous one in
O(change) instead of validating the whole state again (`StateSchema.to_model`)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from durable_graph.model_copies import copied

MODEL_CACHE = 128  # models kept for states of recent steps (see `ModelCache.to_model`)
CHECKED_CACHE = 256  # node updates validated by `check`, kept until folded (`CheckedUpdates`)


class ModelCache:
    """The validated model of each recent state (JSON values), keyed by the state's identity.

    Models here are never handed out (`handout` gives copies), which is what lets `derive`
    grow a superseded model's lists and dicts in place."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self._models: OrderedDict[int, tuple[dict[str, Any], BaseModel]] = OrderedDict()
        self._lock = threading.Lock()

    def to_model(self, values: Mapping[str, Any]) -> BaseModel:
        """The state as the user's model. A state derived in this process from another one by
        `fold` reuses that one's model with only the touched fields replaced (O(change));
        otherwise it is validated whole once."""
        with self._lock:
            entry = self._models.get(id(values))
        if entry is not None and entry[0] is values:
            return handout(entry[1])
        model = self.model.model_validate(dict(values))
        if isinstance(values, dict):
            self.keep(values, model)
        return handout(model)

    def derive(
        self,
        current: Mapping[str, Any],
        merged: dict[str, Any],
        python: dict[str, Any],
        appended: dict[str, list[Any]],
        patched: dict[str, dict[str, Any]],
    ) -> None:
        """Keep the model of `merged` derived from the one of `current` in O(change).

        The entry of `current` is taken out of the cache: its model was never handed out
        (`handout` gives copies), so its appended lists are grown in place and move to the
        new model instead of being copied (a copy of a 10,000-message history per step, and
        128 superseded states kept alive for the garbage collector to walk, were what made a
        step's cost grow with the thread). A later `to_model(current)` validates it again."""
        with self._lock:
            entry = self._models.get(id(current))
            if entry is None or entry[0] is not current:
                return
            del self._models[id(current)]
        base = entry[1]
        update = dict(python)
        for key, items in appended.items():
            grown = getattr(base, key)
            if type(grown) is list:
                grown.extend(items)
            else:
                grown = [*grown, *items]
            update[key] = grown
        for key, typed in patched.items():  # dicts written in a few keys: the same, by key
            held = getattr(base, key)
            if type(held) is dict:
                held.update(typed)
            elif isinstance(held, dict):
                held = {**held, **typed}
            else:
                return
            update[key] = held
        self.keep(merged, copied(base, update))

    def keep(self, values: dict[str, Any], model: BaseModel) -> None:
        with self._lock:
            self._models[id(values)] = (values, model)
            while len(self._models) > MODEL_CACHE:
                self._models.popitem(last=False)

    def field(self, values: Mapping[str, Any], key: str) -> Any:
        """Field `key` of the state model of `values` a node was handed (None: none kept)."""
        with self._lock:
            entry = self._models.get(id(values))
        if entry is None or entry[0] is not values:
            return None
        return getattr(entry[1], key, None)


def handout(model: BaseModel) -> BaseModel:
    """A copy of a kept model for one caller, with its top-level lists and dicts copied: the
    kept model is what the next step's model is derived from, so a node that appends to
    `state.messages` in place (instead of returning the item) must not change it. O(fields +
    their lengths) pointer copies; items inside are shared."""
    copies = {
        name: type(value)(value)
        for name, value in model.__dict__.items()
        if type(value) in (list, dict)
    }
    return copied(model, copies) if copies else model


__all__ = ["MODEL_CACHE", "ModelCache", "handout"]


class CheckedUpdates:
    """The fields of node updates `StateSchema.check` validated whole, (JSON, python) each, by
    update, until `StateSchema.fold` takes the update into its step: a node's output is
    validated once per step, not again when it is folded. Keyed by the update's identity (the
    dict `check` returned, kept alive here, so its id is not reused meanwhile); an update this
    process did not check (a fan-out result read back from the store) is validated in `fold`."""

    def __init__(self) -> None:
        self._kept: OrderedDict[int, tuple[Mapping[str, Any], dict[str, tuple[Any, Any]]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def keep(self, update: Mapping[str, Any], fields: dict[str, tuple[Any, Any]]) -> None:
        with self._lock:
            self._kept[id(update)] = (update, fields)
            while len(self._kept) > CHECKED_CACHE:
                self._kept.popitem(last=False)

    def take(self, update: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        """The validated fields of `update`, or nothing; taken, not read: a python value goes
        into one derived model only, which may grow it in place (`ModelCache.derive`)."""
        with self._lock:
            entry = self._kept.pop(id(update), None)
        if entry is None or entry[0] is not update:
            return {}
        return entry[1]
