"""The table of output targets: adding a target is one renderer module, its
template(s) in templates/, and one entry here."""

from __future__ import annotations

from ..render import Target
from .azure_firewall import AzureFirewallTarget
from .calico import CalicoTarget
from .cilium import CiliumTarget
from .iptables import IptablesTarget
from .lists import ListsTarget
from .nftables import NftablesTarget
from .nsg import NsgArmTarget, NsgTfTarget
from .squid import SquidTarget

TARGETS: dict[str, Target] = {
    t.id: t
    for t in (
        AzureFirewallTarget(),
        NsgArmTarget(),
        NsgTfTarget(),
        NftablesTarget(),
        IptablesTarget(),
        SquidTarget(),
        ListsTarget(),
        CiliumTarget(),
        CalicoTarget(),
    )
}
