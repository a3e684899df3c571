"""One lazy item model over core's node tree: rows are created only when a view asks for them."""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping
from typing import Any, overload

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor, QFont

from inspector.core.formatting import escape_text, format_bytes, format_count, format_params, format_shape
from inspector.core.model import MODULE_ATTRIBUTES, Node, NodeKind, PathPart
from inspector.gui.i18n import QT_TRANSLATE_NOOP

AnyIndex = QModelIndex | QPersistentModelIndex

_MAX_VALUE_CHARS = 200
_MIXED = "mixed"


class Column(enum.IntEnum):
    NAME = 0
    SHAPE = 1
    DTYPE = 2
    SAVED_ON = 3
    LOADED_ON = 4
    PARAMS = 5
    SIZE = 6
    NONFINITE = 7  # filled once statistics are computed; hidden by the view until then
    NORM = 8
    SHARD = 9  # the shard file of a shard set (HF shards, DCP data files); hidden for single files


#: English titles, translated in ``headerData`` (context "CheckpointTreeModel").
COLUMN_TITLES = {
    Column.NAME: QT_TRANSLATE_NOOP("CheckpointTreeModel", "Name"),
    Column.SHAPE: QT_TRANSLATE_NOOP("CheckpointTreeModel", "Shape"),
    Column.DTYPE: QT_TRANSLATE_NOOP("CheckpointTreeModel", "DType"),
    Column.SAVED_ON: QT_TRANSLATE_NOOP("CheckpointTreeModel", "Saved on"),
    Column.LOADED_ON: QT_TRANSLATE_NOOP("CheckpointTreeModel", "Loaded on"),
    Column.PARAMS: QT_TRANSLATE_NOOP("CheckpointTreeModel", "Params"),
    Column.SIZE: QT_TRANSLATE_NOOP("CheckpointTreeModel", "Size"),
    Column.NONFINITE: QT_TRANSLATE_NOOP("CheckpointTreeModel", "NaN/Inf"),
    Column.NORM: QT_TRANSLATE_NOOP("CheckpointTreeModel", "L2 norm"),
    Column.SHARD: QT_TRANSLATE_NOOP("CheckpointTreeModel", "Shard"),
}

#: Columns right-aligned because they hold numbers.
_NUMERIC = (Column.PARAMS, Column.SIZE, Column.NORM)

_CONTAINERS = (NodeKind.DICT, NodeKind.LIST, NodeKind.GROUP, NodeKind.OBJECT)

#: Columns by number and Qt's roles as plain ints: ``data()`` runs for every painted cell, and
#: constructing enums there costs more than the rest of it.
_COLUMNS = tuple(Column)
_COLUMN_COUNT = len(_COLUMNS)
_DISPLAY = int(Qt.ItemDataRole.DisplayRole.value)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole.value)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole.value)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole.value)
_FONT = int(Qt.ItemDataRole.FontRole.value)
_RIGHT = int((Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value)
_SELECTABLE = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_LEAF_FLAGS = _SELECTABLE | Qt.ItemFlag.ItemNeverHasChildren
_NO_FLAGS = Qt.ItemFlag.NoItemFlags


class ItemRole(enum.IntEnum):
    """Roles beyond Qt's own, numbered from ``Qt.UserRole`` (as napari does)."""

    SortRole = Qt.ItemDataRole.UserRole
    KeyRole = enum.auto()
    NodeRole = enum.auto()


_SORT, _KEY, _NODE = int(ItemRole.SortRole), int(ItemRole.KeyRole), int(ItemRole.NodeRole)


def _about(node: Node) -> str:
    """What the Name column adds to a name: an object's class (its last component; the tooltip has
    it all), a sparse, nested or quantized tensor's layout."""
    tensor = node.tensor
    if tensor is not None:
        if tensor.layout == "strided":
            return ""
        info = tensor.layout_info
        return escape_text(info.describe(tensor.layout) if info is not None else tensor.layout)
    if node.kind is NodeKind.OBJECT and node.value:
        return escape_text(node.value.rsplit(".", 1)[-1])
    return ""


def _short(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def _summarize(devices: set[str]) -> str:
    if not devices:
        return ""
    if len(devices) == 1:
        return next(iter(devices))
    return _MIXED


def _device_summary(root: Node, device_of: Callable[[Node], str | None] | None = None) -> dict[int, str]:
    """For every container, the one device of all tensors below it, or "mixed" (no recursion; one
    visit per row). ``device_of`` gives a tensor row's device; without it, the device it was saved
    on, read without a call per tensor."""
    order: list[tuple[Node, list[Node]]] = []  # each container with the containers among its children
    stack = [root]
    tensor = NodeKind.TENSOR
    while stack:
        node = stack.pop()
        inner = [c for c in node.children if c.children and c.kind is not tensor]
        order.append((node, inner))
        stack.extend(inner)
    below: dict[int, set[str]] = {}
    for node, inner in reversed(order):  # children before their parents
        children = node.children
        if device_of is None:
            found = {c.tensor.saved_device for c in children if c.kind is tensor and c.tensor is not None}
            found.discard("")
        else:
            found = {d for d in map(device_of, [c for c in children if c.kind is tensor]) if d}
        for child in inner:
            found |= below[id(child)]
        below[id(node)] = found
    return {key: _summarize(found) for key, found in below.items()} if root.children else {}


def _holds_tensor(container: Node, paths: Mapping[tuple[PathPart, ...], str] | None = None) -> bool:
    """Whether any tensor row lies below ``container`` (with ``paths``: any whose path is in it),
    depth first: it stops at the first one."""
    stack = [container]
    tensor = NodeKind.TENSOR
    while stack:
        children = stack.pop().children
        for child in children:
            if child.kind is tensor and (paths is None or tuple(child.path) in paths):
                return True
        stack.extend(reversed([c for c in children if c.kind is not tensor]))
    return False


def _the_one(devices: Collection[str]) -> str | None:
    """The device, where all of ``devices`` are one; None for none or several."""
    return next(iter(devices)) if len(devices) == 1 else None


def _found_below(
    summary: dict[int, str], one: str | None, container: Node,
    paths: Mapping[tuple[PathPart, ...], str] | None = None,
) -> str:  # fmt: skip
    """A container's device from ``summary``; where every tensor is on ``one`` device, found (and
    kept in ``summary``) when first asked: that device if a tensor lies below it, else ""."""
    found = summary.get(id(container))
    if found is None:
        if one is None:  # (every container is summarized at once; one without rows holds none)
            return ""
        found = summary[id(container)] = one if _holds_tensor(container, paths) else ""
    return found


class CheckpointTreeModel(QAbstractItemModel):
    """Rows are core ``Node`` objects (``internalPointer`` holds the node, nothing else).

    Parents show the params and bytes of everything below them; "Loaded on" is filled by
    ``set_loaded_devices`` once the engine has loaded the file.
    """

    def __init__(
        self, root: Node, parent: QObject | None = None, saved_devices: Collection[str] | None = None
    ) -> None:
        """``saved_devices``: the devices the tensors were saved on, where the read counted them; when
        there is one, a container's "Saved on" is found when it is first shown, not for all at once."""
        super().__init__(parent)
        self._root = root
        self._one_saved = _the_one(saved_devices) if saved_devices is not None else None
        self._saved_summary = _device_summary(root) if self._one_saved is None else {}
        self._loaded: dict[int, str] = {}
        self._loaded_summary: dict[int, str] = {}
        self._devices: Mapping[tuple[PathPart, ...], str] = {}  # the engine's answer
        self._one_loaded: str | None = None  # the one device every loaded tensor is on
        self._italic = QFont()
        self._italic.setItalic(True)
        self._stats: dict[int, dict[str, Any]] = {}  # id(tensor node) → the engine's statistics
        self._flagged_below: dict[int, int] = {}  # id(container) → tensors with NaN/Inf below it
        self._by_path: dict[tuple[PathPart, ...], Node] | None = None
        self._name_notes: dict[int, str] = {}  # id(node) → text shown after the name
        self._tooltip_notes: dict[int, str] = {}

    @property
    def root(self) -> Node:
        return self._root

    # -- structure ---------------------------------------------------------------------------

    def node(self, index: AnyIndex) -> Node:
        """The node behind ``index``; the root for an invalid index."""
        if index.isValid():
            return index.internalPointer()  # type: ignore[no-any-return]
        return self._root

    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        """``hasIndex``'s checks (a row and a column inside, a parent in the first column), without
        its two calls back into Python: a view asks this for every row it lays out."""
        if row < 0 or not 0 <= column < _COLUMN_COUNT or parent.column() > 0:  # (-1: the invalid index)
            return QModelIndex()
        children = self.node(parent).children
        if row >= len(children):
            return QModelIndex()
        return self.createIndex(row, column, children[row])

    @overload
    def parent(self) -> QObject: ...
    @overload
    def parent(self, child: AnyIndex) -> QModelIndex: ...
    def parent(self, child: AnyIndex | None = None) -> QObject | QModelIndex:
        if child is None:
            owner = super().parent()
            assert owner is not None
            return owner
        if not child.isValid():
            return QModelIndex()
        up = self.node(child).parent
        if up is None or up is self._root:
            return QModelIndex()
        return self.createIndex(up.row, 0, up)

    def index_of(self, node: Node) -> QModelIndex:
        """The model index of ``node`` (invalid for the root)."""
        if node is self._root or node.parent is None:
            return QModelIndex()
        return self.createIndex(node.row, 0, node)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.column() > 0:
            return 0
        return len(self.node(parent).children)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return _COLUMN_COUNT

    def hasChildren(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008
        return self.rowCount(parent) > 0

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return _NO_FLAGS
        return _SELECTABLE if self.node(index).children else _LEAF_FLAGS

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(Column):
            return None
        column = Column(section)
        if role == Qt.ItemDataRole.DisplayRole:
            return self.tr(COLUMN_TITLES[column])
        if role == Qt.ItemDataRole.TextAlignmentRole and column in _NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    # -- data --------------------------------------------------------------------------------

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        node: Node = index.internalPointer()
        column = _COLUMNS[index.column()]
        role = int(role)
        if role == _DISPLAY:
            return self._display(node, column)
        if role == _SORT:
            return self._sort_value(node, column)
        if role == _KEY:
            return node.key
        if role == _NODE:
            return node
        if role == _TOOLTIP:
            return self._tooltip(node, column)
        if role == _ALIGNMENT and column in _NUMERIC:
            return _RIGHT
        if role == _FOREGROUND and column is Column.NONFINITE and self._is_flagged(node):
            return QColor("#c62828")
        if role == _FONT and node.kind is NodeKind.REF:
            return self._italic
        return None

    def display_text(self, node: Node, column: Column) -> str:
        """What ``data`` shows for ``node`` in ``column``, without a model index (for sizing columns)."""
        return self._display(node, column)

    def _display(self, node: Node, column: Column) -> str:
        kind = node.kind
        tensor = node.tensor
        if column is Column.NAME:
            name = escape_text(node.name)
            if kind is NodeKind.VALUE:
                return f"{name} = {_short(escape_text(node.value or ''))}"
            if kind is NodeKind.REF:
                target = escape_text(node.value or "?")
                return self.tr("{name} → same as {target}").format(name=name, target=target)
            about = _about(node)
            if about:
                name += f"  ({about})"
            note = self._name_notes.get(id(node))
            return f"{name}  ({note})" if note else name
        if column is Column.SHAPE:
            if tensor is not None:
                return format_shape(tensor.shown_shape)
            if kind in (NodeKind.DICT, NodeKind.LIST):
                n = node.entries
                return (self.tr("{n} item") if n == 1 else self.tr("{n} items")).format(n=format_count(n))
            return ""
        if column is Column.DTYPE:
            return tensor.dtype if tensor is not None else ""
        if column is Column.SAVED_ON:
            if tensor is not None:
                return tensor.saved_device
            return self._saved_below(node) if kind in _CONTAINERS else ""
        if column is Column.LOADED_ON:
            if tensor is not None:
                return self.loaded_device(node) or ""
            return self._loaded_below(node) if kind in _CONTAINERS else ""
        if column is Column.PARAMS:
            if tensor is not None:
                return format_params(tensor.numel)
            return format_params(node.params) if kind in _CONTAINERS and node.params else ""
        if column is Column.SIZE:
            if tensor is not None:
                return format_bytes(tensor.nbytes)
            return format_bytes(node.nbytes) if kind in _CONTAINERS and node.nbytes else ""
        if column is Column.NONFINITE:
            return self._nonfinite_text(node)
        if column is Column.NORM:
            norm = self._stats.get(id(node), {}).get("l2_norm")
            return f"{norm:.4g}" if isinstance(norm, (int, float)) else str(norm or "")
        if column is Column.SHARD:
            return tensor.shard if tensor is not None else ""
        return ""

    def _nonfinite_text(self, node: Node) -> str:
        stats = self._stats.get(id(node))
        if stats is not None:
            parts = [f"{label} ×{stats.get(name) or 0:,}" for name, label in
                     (("nan", "NaN"), ("posinf", "+Inf"), ("neginf", "−Inf")) if stats.get(name)]  # fmt: skip
            return ", ".join(parts) or self.tr("none")
        flagged = self._flagged_below.get(id(node), 0)
        if flagged:
            text = self.tr("{n} tensor") if flagged == 1 else self.tr("{n} tensors")
            return text.format(n=format_count(flagged))
        return ""

    def _is_flagged(self, node: Node) -> bool:
        stats = self._stats.get(id(node))
        if stats is not None:
            return bool(stats.get("has_nan_or_inf"))
        return bool(self._flagged_below.get(id(node)))

    def _sort_value(self, node: Node, column: Column) -> Any:
        """Raw values for sorting: numbers for numeric columns, text otherwise."""
        tensor = node.tensor
        if column is Column.PARAMS:
            return tensor.numel if tensor is not None else node.params
        if column is Column.SIZE:
            return tensor.nbytes if tensor is not None else node.nbytes
        if column is Column.SHAPE:
            return tensor.numel if tensor is not None else -1
        if column is Column.NORM:
            norm = self._stats.get(id(node), {}).get("l2_norm")
            return float(norm) if isinstance(norm, (int, float)) else -1.0
        if column is Column.NONFINITE:
            stats = self._stats.get(id(node))
            if stats is not None:
                return (
                    int(stats.get("nan") or 0) + int(stats.get("posinf") or 0) + int(stats.get("neginf") or 0)
                )
            return self._flagged_below.get(id(node), -1)
        if column is Column.NAME:
            return node.name
        return self._display(node, column)

    def _tooltip(self, node: Node, column: Column) -> str:
        key = escape_text(node.key) if node.key else self.tr("(the whole file)")
        if column is Column.PARAMS and (node.params or node.tensor is not None):
            count = node.tensor.numel if node.tensor is not None else node.params
            return key + "\n" + self.tr("{count} parameters").format(count=format_count(count))
        if column is Column.SIZE and (node.nbytes or node.tensor is not None):
            count = node.tensor.nbytes if node.tensor is not None else node.nbytes
            return key + "\n" + self.tr("{count} bytes").format(count=format_count(count))
        if column is Column.SHARD and node.tensor is not None and node.tensor.chunks:
            chunks = node.tensor.chunks
            lines = [self.tr("{count} chunk(s):").format(count=len(chunks))]
            lines += [escape_text(c.describe()) for c in chunks[:50]]
            if len(chunks) > 50:
                lines.append(self.tr("… {count} more").format(count=len(chunks) - 50))
            return key + "\n" + "\n".join(lines)
        if node.kind is NodeKind.VALUE and node.value is not None:
            return f"{key}\n{escape_text(node.value[:2000])}"
        if node.kind in (NodeKind.OBJECT, NodeKind.DICT) and node.value:
            key += "\n" + escape_text(node.value)  # the full class name
        elif node.tensor is not None and node.tensor.layout != "strided":
            key += "\n" + _about(node)
        note = self._tooltip_notes.get(id(node))
        return f"{key}\n{note}" if note else key

    def folded_nodes(self, depth: int = 1) -> list[Node]:
        """Rows down to ``depth`` that a view should keep collapsed when it opens the tree (the
        attributes of a pickled module)."""
        found: list[Node] = []
        level = [self._root]
        for _ in range(depth + 1):
            level = [c for n in level for c in n.children if c.kind is not NodeKind.TENSOR]
            found += [n for n in level if n.kind is NodeKind.GROUP and n.name == MODULE_ATTRIBUTES]
        return found

    def _saved_below(self, container: Node) -> str:
        """A container's "Saved on": the one device of every tensor below it, "mixed", or ""."""
        return _found_below(self._saved_summary, self._one_saved, container)

    # -- "Loaded on" -------------------------------------------------------------------------

    def set_loaded_devices(self, devices: Mapping[tuple[PathPart, ...], str]) -> None:
        """Fill "Loaded on" from the engine's answer (tensor path → device); {} clears it. When every
        tensor went to one device, each row's is found when it is shown, not for all at once."""
        self._devices = devices
        self._one_loaded = _the_one(set(devices.values()))
        by_id: dict[int, str] = {}
        if self._one_loaded is None and devices:
            for tensor in self._root.tensors():
                dev = devices.get(tuple(tensor.path))
                if dev is not None:
                    by_id[id(tensor)] = dev
        self._loaded = by_id
        self._loaded_summary = _device_summary(self._root, lambda n: by_id.get(id(n))) if by_id else {}
        self._emit_column_changed(Column.LOADED_ON)

    def loaded_device(self, node: Node) -> str | None:
        if self._one_loaded is not None:
            return self._devices.get(tuple(node.path))
        return self._loaded.get(id(node))

    def _loaded_below(self, container: Node) -> str:
        """A container's "Loaded on": the one device of every tensor below it, "mixed", or ""."""
        return _found_below(self._loaded_summary, self._one_loaded, container, self._devices)

    # -- statistics and notes ----------------------------------------------------------------

    def node_at_path(self, path: tuple[PathPart, ...] | list[PathPart]) -> Node | None:
        """The tensor node with this container path (as the engine's results name it)."""
        if self._by_path is None:
            self._by_path = {tuple(n.path): n for n in self._root.tensors()}
        return self._by_path.get(tuple(path))

    def set_tensor_stats(self, stats: Mapping[tuple[PathPart, ...], dict[str, Any]]) -> None:
        """Add the engine's statistics (tensor path → stats JSON); "NaN/Inf" and "L2 norm" fill in."""
        for path, value in stats.items():
            node = self.node_at_path(path)
            if node is not None:
                self._stats[id(node)] = value
        self._flagged_below = {}
        for node in self._root.tensors():
            if self._stats.get(id(node), {}).get("has_nan_or_inf"):
                up = node.parent
                while up is not None:
                    self._flagged_below[id(up)] = self._flagged_below.get(id(up), 0) + 1
                    up = up.parent
        self._emit_column_changed(Column.NONFINITE)
        self._emit_column_changed(Column.NORM)

    def tensor_stats(self, node: Node) -> dict[str, Any] | None:
        return self._stats.get(id(node))

    def set_notes(self, names: Mapping[str, str], tooltips: Mapping[str, str]) -> None:
        """Text shown after a row's name and added to its tooltip, by key (optimizer ↔ parameter)."""
        by_key = {n.key: n for n in self._root.walk() if n.key in names or n.key in tooltips}
        self._name_notes = {id(by_key[k]): v for k, v in names.items() if k in by_key}
        self._tooltip_notes = {id(by_key[k]): v for k, v in tooltips.items() if k in by_key}
        self._emit_column_changed(Column.NAME)

    def _emit_column_changed(self, column: Column) -> None:
        """Announce that one column changed everywhere.

        One signal over the top-level rows instead of one per parent (10,000 parents cost 2 s):
        a view repaints its whole viewport, children included, for a change of several rows.
        While a level holds a single row, the level below is announced too. Proxies here never
        filter or sort on this column dynamically.
        """
        node, parent_index = self._root, QModelIndex()
        while node.children:
            rows = len(node.children)
            self.dataChanged.emit(
                self.index(0, column, parent_index),
                self.index(rows - 1, column, parent_index),
                [Qt.ItemDataRole.DisplayRole],
            )
            if rows > 1:
                return
            node, parent_index = node.children[0], self.index(0, 0, parent_index)
