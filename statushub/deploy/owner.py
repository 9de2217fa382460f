"""
Which containers are this hub's: those labelled with its C{[deploy] owner}.

Hubs with different owners share one engine without seeing each other: each
lists, polls, follows, adopts and removes only its owner's containers.
Containers made before owners existed carry no owner label; they were made
by a hub that was, in effect, the default owner (C{statushub}), so a hub
with that owner takes them as its own, and a hub with any other owner
leaves them alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from statushub.engine import DEFAULT_OWNER, DEPLOYMENT_LABEL, OWNER_LABEL


@dataclass(frozen=True)
class Owner:
    """
    The owner a hub acts for.

    @ivar name: C{[deploy] owner}.
    """

    name: str = DEFAULT_OWNER

    @property
    def takesUnlabelled(self) -> bool:
        """
        Whether containers without an owner label (made before owners
        existed) are this owner's: only the default owner's.
        """
        return self.name == DEFAULT_OWNER

    @property
    def label(self) -> tuple[str, str]:
        """
        The label every container made for this owner carries.
        """
        return (OWNER_LABEL, self.name)

    def selector(self, deployment: Optional[str] = None) -> dict[str, Optional[str]]:
        """
        The engine's label filter for this owner's containers (of one
        deployment, if named).  It may match more (the default owner's also
        matches other owners'): keep only what L{owns} says.
        """
        labels: dict[str, Optional[str]] = {DEPLOYMENT_LABEL: deployment}
        if not self.takesUnlabelled:
            labels[OWNER_LABEL] = self.name
        return labels

    def owns(self, labels: Mapping[str, str]) -> bool:
        """
        Whether a container with these labels is this owner's.
        """
        found = labels.get(OWNER_LABEL)
        if found is None:
            return self.takesUnlabelled
        return found == self.name
