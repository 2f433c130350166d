"""Process corners (emulated on the single-corner PTM 65 nm cards, or a card's foundry sections), and supplies.

PTM publishes one nominal card per device, no corners. We emulate a corner as a
global threshold shift of every NMOS and PMOS (added to each device's ``delvto``
together with its local mismatch), at a stated temperature. A ±60 mV |Vth| shift
is ≈3σ of the inter-die Vth spread reported for 65 nm bulk (our choice; it moves
an FO4 delay by ≈ +25 % at 0.8 V here, which the digital block reports).
Mobility and oxide corners are not emulated: say so when quoting slow-corner numbers.

Note on signs (checked in ngspice 39): BSIM4 ``delvto`` adds to ``vth0``; a PMOS
has negative ``vth0``, so a *slower* PMOS needs a *negative* ``delvto``.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Corner:
    name: str
    dvth_n_v: float  #: increase of NMOS |Vth| (V)
    dvth_p_v: float  #: increase of PMOS |Vth| (V)
    temperature_c: float
    description: str

    def delvto_n(self) -> float:
        return self.dvth_n_v

    def delvto_p(self) -> float:
        return -self.dvth_p_v


def _preset_corners() -> dict[str, Corner]:
    """The corner table of the ``topkima-65nm`` design preset (circuits/designs/topkima-65nm.toml): the one
    definition; a design cannot change it in this version (:data:`topkima.circuits.design.FIXED_WHERE`)."""
    from topkima.circuits.design import reference_design
    return {name: Corner(name, c.dvth_n_v, c.dvth_p_v, c.temperature_c, c.description)
            for name, c in reference_design().technology.corners.items()}


CORNERS: dict[str, Corner] = _preset_corners()


def corner(name: str) -> Corner:
    """A corner of the active technology (:func:`topkima.circuits.technology.active`; outside a job
    the 65 nm preset's, :data:`CORNERS`)."""
    from topkima.circuits.technology import active
    corners = active().corners
    try:
        return corners[name]
    except KeyError:
        raise ValueError(f"unknown corner {name!r}; choose one of {', '.join(corners)}") from None


@dataclass(frozen=True)
class Supplies:
    """Supply and bias voltages of the macro (V). Source of each choice in the field comment; a design's own
    values come from its ``[supplies]`` table (:meth:`from_design`)."""

    v_array_v: float = 0.5      #: SRAM array / read wordline supply; paper (SPEC §2): 0.5 V
    v_precharge_v: float = 0.5  #: read-bitline precharge level; ours: precharge to the array supply
    v_sa_v: float = 1.0         #: sense-amplifier supply; ours: PTM nominal 1.0 V (PMOS-input latch headroom)
    v_digital_v: float = 0.8    #: counters/arbiter/encoder; paper (SPEC §2): characterised at 0.8 V

    @classmethod
    def from_design(cls, design) -> "Supplies":
        s = design.supplies
        return cls(s.v_array_v, s.v_precharge_v, s.v_sa_v, s.v_digital_v)

    def as_dict(self) -> dict[str, float]:
        return {"v_array_v": self.v_array_v, "v_precharge_v": self.v_precharge_v,
                "v_sa_v": self.v_sa_v, "v_digital_v": self.v_digital_v}
