"""How the engine should ``torch.load`` a file: the user's map_location, weights_only and mmap."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: None means "as saved"; a str is one device for everything (or ``AS_SAVED_ELSE_CPU``); a dict
#: maps saved → target device.
MapLocation = str | dict[str, str] | None

#: Each storage stays on the device it was saved on when the loading machine has that device, and
#: goes to cpu otherwise; the engine reports what moved. JSON and settings carry this string.
AS_SAVED_ELSE_CPU = "as-saved-else-cpu"
_AS_SAVED_ELSE_CPU_TEXT = "As saved where possible, else cpu"

_DEVICE = re.compile(r"^(cpu|meta|mps|xpu|cuda(:\d+)?|privateuseone(:\d+)?)$")


def is_device_name(text: str) -> bool:
    return bool(_DEVICE.match(text))


def parse_map_location(text: str) -> MapLocation:
    """Parse what a user types: "" / "As saved", "As saved where possible, else cpu", "cpu",
    "cuda:0", or "cuda:1→cuda:0, cuda:2->cpu". Raises ValueError with a sentence otherwise.
    """
    text = text.strip()
    if not text or text.lower() in {"as saved", "as-saved", "none"}:
        return None
    if text.lower() in {AS_SAVED_ELSE_CPU, _AS_SAVED_ELSE_CPU_TEXT.lower()}:
        return AS_SAVED_ELSE_CPU
    if "→" in text or "->" in text or "=" in text:
        mapping: dict[str, str] = {}
        for part in re.split(r"[,;]", text):
            part = part.strip()
            if not part:
                continue
            pieces = re.split(r"→|->|=", part)
            if len(pieces) != 2:
                raise ValueError(f"“{part}” is not a mapping like cuda:1->cuda:0 (or cuda:1→cuda:0).")
            src, dst = (p.strip() for p in pieces)
            for dev in (src, dst):
                if not is_device_name(dev):
                    raise ValueError(f"“{dev}” is not a device name (cpu, meta, mps, cuda:N).")
            mapping[src] = dst
        if not mapping:
            raise ValueError("The mapping is empty.")
        return mapping
    if not is_device_name(text):
        raise ValueError(
            f"“{text}” is not a device name (cpu, meta, mps, cuda:N) or a mapping such as cuda:1->cpu."
        )
    return text


def map_location_from_json(value: Any) -> MapLocation:
    """A map location as JSON carries it: null, a device name, or an object of saved → target."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return None if value is None else str(value)


def format_map_location(loc: MapLocation) -> str:
    """The inverse of ``parse_map_location``, for display and settings."""
    if loc is None:
        return "As saved"
    if loc == AS_SAVED_ELSE_CPU:
        return _AS_SAVED_ELSE_CPU_TEXT
    if isinstance(loc, str):
        return loc
    return ", ".join(f"{k}→{v}" for k, v in loc.items())


@dataclass(frozen=True)
class LoadOptions:
    """The arguments the engine passes to ``torch.load`` (``weights_only`` is always explicit)."""

    map_location: MapLocation = None
    weights_only: bool = True
    mmap: bool = True  # used where the format allows it (zip files)
    #: ``module.name`` globals the user allowed for this file (``torch.serialization.safe_globals``).
    allowed_globals: tuple[str, ...] = ()
    #: With ``weights_only=False`` only: "pickle" (torch's default) or "dill".
    pickle_module: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "map_location": self.map_location,
            "weights_only": self.weights_only,
            "mmap": self.mmap,
            "allowed_globals": list(self.allowed_globals),
            "pickle_module": self.pickle_module,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadOptions:
        return cls(
            map_location=map_location_from_json(data.get("map_location")),
            weights_only=bool(data.get("weights_only", True)),
            mmap=bool(data.get("mmap", True)),
            allowed_globals=tuple(str(g) for g in data.get("allowed_globals") or ()),
            pickle_module=str(data["pickle_module"]) if data.get("pickle_module") else None,
        )

    def target_device(self, saved_device: str) -> str:
        """Where torch will put a storage saved on ``saved_device`` (before torch checks it exists;
        under ``AS_SAVED_ELSE_CPU`` the engine's answer says which saved devices went to cpu)."""
        loc = self.map_location
        if loc is None or loc == AS_SAVED_ELSE_CPU:
            return saved_device
        if isinstance(loc, str):
            return loc
        return loc.get(saved_device, saved_device)
