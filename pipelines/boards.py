"""Board facts that recipes are checked against, with their sources.

Renesas' per-board table (rzv_drp-ai_tvm `tutorials/README.md`, v1.0.4 and
v1.1.0) gives the DRP-AI `addr_map_start` for each product. The seeds set
0x438E0000, which is the RZ/V2MA value, so a recipe names its product and a
value that does not belong to it is refused.
"""

from __future__ import annotations

DRPAI_ADDR_MAP_START: dict[str, int] = {
    "V2L": 0x838E0000,
    "V2M": 0xC38E0000,
    "V2MA": 0x438E0000,
}
