"""The table of output targets: adding a target is one renderer module, its
template(s) in templates/, and one entry here."""
from __future__ import annotations

from ..render import Target
from .azure_firewall import AzureFirewallTarget
from .calico import CalicoTarget
from .cilium import CiliumTarget
from .iptables import IptablesTarget
from .nftables import NftablesTarget
from .nsg import NsgArmTarget, NsgTfTarget

TARGETS: dict[str, Target] = {
    t.id: t
    for t in (
        AzureFirewallTarget(),
        NsgArmTarget(),
        NsgTfTarget(),
        NftablesTarget(),
        IptablesTarget(),
        CiliumTarget(),
        CalicoTarget(),
    )
}
