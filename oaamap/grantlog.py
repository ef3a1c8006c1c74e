"""Stage 6 helper: grants kept as a compact log per identity, replayed into IdentityGrants.

A million grant rows name a few roles and a few thousand resources. Held as per-identity dicts of
lists they cost about a kilobyte per identity; here each identity keeps one `array` with an
integer per grant row (what was granted, on which target), 8 bytes, and the strings are stored once
in tables. `IdentityGrants` are rebuilt from the log each time the grants are iterated (checking
and serialising), one identity at a time, so the whole frozen grant model never exists at once.

Replaying an identity's log in row order gives exactly what merging row by row gave: roles and
permissions in first-granted order under their first spelling, targets in first-named order
without repeats, `apply_to_application` as last set, properties merged.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .errors import RowRef
from .model import Granted, IdentityGrants, RoleAssignment

__all__ = ["GrantLog", "Grantee", "ReplayedGrants"]

_new = tuple.__new__
_EMPTY: Mapping[str, Any] = {}  # shared by every assignment without properties (never written)
# A log entry is `(grant << SHIFT) | target`: the grant's index in the table and the target's
# number, NO_TARGET for a row with no resource (a role granted app-wide, an application permission).
SHIFT = 32
LOW = (1 << SHIFT) - 1
NO_TARGET = 0


class Grantee:
    """One identity named by grants: its first spelling, identity type, first row and log.

    `log` holds one entry `(grant << SHIFT) | target` per grant row and target: an index into the
    log's grant table and a target number (or NO_TARGET).
    """

    __slots__ = ("identity", "kind", "log", "ref")

    def __init__(self, identity: str, kind: str, ref: RowRef | None) -> None:
        self.identity = identity
        self.kind = kind
        self.ref = ref
        self.log = array("q")


class GrantLog:
    """The grants of a run, recorded row by row.

    Attributes:
        grantees: every Grantee, in first-named order.
        by_spelling: identity type -> {identity as written, and lower-cased -> Grantee}: one
            dict lookup per row (a key's lower-cased text decides which identity it names).
        grants: the distinct grants: (is_role, name as first written, apply_to_application,
            properties); a row with properties gets its own entry.
        targets: lower-cased resource references, each stored once, numbered from 1 (the
            place of NO_TARGET holds ""); `target_of` numbers them as written; `spelling`:
            lower-cased reference -> as first written.
    """

    def __init__(self, kinds: Sequence[str]) -> None:
        self.grantees: list[Grantee] = []
        self.by_spelling: dict[str, dict[str, Grantee]] = {kind: {} for kind in kinds}
        self.grants: list[tuple[bool, str, bool | None, Mapping[str, Any] | None]] = []
        self.grant_of: dict[tuple[bool, str, bool | None], int] = {}
        self.targets: list[str] = [""]
        self.target_of: dict[str, int] = {}
        self.lower_target: dict[str, int] = {}
        self.spelling: dict[str, str] = {}
        self._folded: list[tuple[bool, str, bool | None, Mapping[str, Any] | None, str]] = []
        self._roles_only = False

    def grantee(self, kind: str, identity: str, ref: Callable[[], RowRef | None]) -> Grantee:
        """The Grantee of an identity (created, with the row's ref, when first named)."""
        spelled = self.by_spelling[kind]
        found = spelled.get(identity)
        if found is None:
            lower = identity.lower()
            if lower == identity:
                lower = identity  # one string, not two equal ones
            found = spelled.get(lower)
            if found is None:
                found = spelled[lower] = Grantee(identity, kind, ref())
                self.grantees.append(found)
            spelled[identity] = found
        return found

    def named(self, kind: str, lower: str) -> Grantee | None:
        """The Grantee of an identity type and lower-cased identity, if grants name it."""
        return self.by_spelling[kind].get(lower)

    def grant(self, is_role: bool, name: str, apply: bool | None,
              properties: Mapping[str, Any] | None = None) -> int:
        """The index of a grant in the table (a grant with properties is always a new one)."""
        if properties:
            self.grants.append((is_role, name, apply, dict(properties)))
            return len(self.grants) - 1
        key = (is_role, name, apply)
        index = self.grant_of.get(key)
        if index is None:
            index = self.grant_of[key] = len(self.grants)
            self.grants.append((is_role, name, apply, None))
        return index

    def target(self, reference: str) -> int:
        """The number of a resource reference (its lower-cased text, stored once)."""
        index = self.target_of.get(reference)
        if index is None:
            lower = reference.lower()
            index = self.lower_target.get(lower)
            if index is None:
                index = self.lower_target[lower] = len(self.targets)
                self.targets.append(lower)
                self.spelling[lower] = reference
            self.target_of[reference] = index
        return index

    def add(self, grantee: Grantee, grant: int, resources: Sequence[str]) -> None:
        """Log a grant row: once per resource, or once with NO_TARGET."""
        log = grantee.log
        if not resources:
            log.append(grant << SHIFT | NO_TARGET)
            return
        target_of = self.target_of
        for reference in resources:
            target = target_of.get(reference)
            log.append(grant << SHIFT | (self.target(reference) if target is None else target))

    def payload_keys(self, resource_keys: Mapping[str, str]) -> list[str]:
        """Each target's payload key, by target number: its resource's key, or its spelling
        when no rule defines that resource (stage 8 reports it)."""
        final = {**self.spelling, **resource_keys}
        return ["", *(final[target] for target in self.targets[1:])]

    def granted(self, keys: Sequence[str]) -> Granted:
        """The role and permission names the grants use (as written), their payload keys
        (`payload_keys`), and whether any grant has properties."""
        return Granted(frozenset(name for is_role, name, _, _ in self.grants if is_role),
                       frozenset(name for is_role, name, _, _ in self.grants if not is_role),
                       frozenset(keys[1:]), properties=any(grant[3] for grant in self.grants))

    def targets_of(self, grantee: Grantee) -> list[str]:
        """The lower-cased targets an identity's grants name, in log order (with repeats)."""
        targets = self.targets
        return [targets[e & LOW] for e in grantee.log if e & LOW]

    def replay(self, grantee: Grantee, keys: Sequence[str]) -> IdentityGrants:
        """An identity's grants merged from its log; `keys`: each target's payload key, by
        target number (`payload_keys`).

        A role's entry with no target grants it app-wide (apply_to_application true).
        """
        table = self.folded_grants()
        if self._roles_only:
            return self._replay_roles(grantee, keys)
        roles: dict[str, list[Any]] = {}
        app: dict[str, str] = {}
        resources: dict[str, list[Any]] = {}
        for logged in grantee.log:
            is_role, name, apply, properties, folded = table[logged >> SHIFT]
            target = logged & LOW
            if is_role:
                if target == NO_TARGET:
                    apply = True
                entry = roles.get(folded)
                if entry is None:
                    entry = roles[folded] = [name, apply, {}, None]
                elif apply is not None:
                    entry[1] = apply
                if target:
                    entry[2][target] = None
                if properties:
                    entry[3] = {**(entry[3] or {}), **properties}
                continue
            if not target or apply:
                app.setdefault(folded, name)
            if target:
                entry = resources.get(folded)
                if entry is None:
                    entry = resources[folded] = [name, {}]
                entry[1][target] = None
        # The NamedTuples made with tuple.__new__: their generated __new__ is a Python call,
        # a third of the replay of a hundred thousand identities.
        return _new(IdentityGrants, (
            grantee.identity, grantee.kind, tuple(app.values()),
            tuple([(name, [keys[t] for t in targets]) for name, targets in resources.values()]),
            tuple([_new(RoleAssignment, (name, apply, [keys[t] for t in targets], props or _EMPTY))
                   for name, apply, targets, props in roles.values() if apply or targets]),
            grantee.ref))

    def _replay_roles(self, grantee: Grantee, keys: Sequence[str]) -> IdentityGrants:
        """`replay` when every grant is a role without properties and no two grants name one
        role (the common export): entries grouped by grant, the same result with less work."""
        by_grant: dict[int, dict[int, None]] = {}
        for logged in grantee.log:
            targets = by_grant.get(logged >> SHIFT)
            if targets is None:
                targets = by_grant[logged >> SHIFT] = {}
            targets[logged & LOW] = None
        table = self._folded
        key_of = keys.__getitem__
        roles = []
        for grant, targets in by_grant.items():
            _, name, apply, _, _ = table[grant]
            if NO_TARGET in targets:  # an entry with no target: granted app-wide
                del targets[NO_TARGET]
                apply = True
            if apply or targets:
                roles.append(_new(RoleAssignment, (name, apply, list(map(key_of, targets)),
                                                   _EMPTY)))
        return _new(IdentityGrants, (grantee.identity, grantee.kind, (), (), tuple(roles),
                                     grantee.ref))

    def folded_grants(self) -> list[tuple[bool, str, bool | None, Mapping[str, Any] | None, str]]:
        """The grant table with each name lower-cased (made once, when first replayed)."""
        if len(self._folded) != len(self.grants):
            self._folded = [(*grant, grant[1].lower()) for grant in self.grants]
            folded = [(is_role, name) for is_role, _, _, _, name in self._folded]
            self._roles_only = all(is_role and not properties
                                   for is_role, _, _, properties, _ in self._folded) \
                and len(set(folded)) == len(folded)
        return self._folded


class ReplayedGrants(Sequence[IdentityGrants]):
    """The identities' grants in the SDK's order, rebuilt from the log each time they are read.

    Iterating replays every identity (an identity whose grants come to nothing is left out);
    the length is known after a first full iteration (one is made if asked before).
    """

    def __init__(self, log: GrantLog, order: Sequence[Grantee], keys: Sequence[str]) -> None:
        """`keys`: each target's payload key, by target number (`GrantLog.payload_keys`)."""
        self._log = log
        self._order = order
        self._keys = keys
        self._length: int | None = None

    def __iter__(self) -> Iterator[IdentityGrants]:
        replay, keys = self._log.replay, self._keys
        count = 0
        for grantee in self._order:
            grants = replay(grantee, keys)
            if grants.app_permissions or grants.resource_permissions or grants.role_assignments:
                count += 1
                yield grants
        self._length = count

    def __len__(self) -> int:
        if self._length is None:
            for _ in self:
                pass
        assert self._length is not None
        return self._length

    def __getitem__(self, index: Any) -> Any:
        items = list(self)
        return items[index]

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"ReplayedGrants({len(self._order)} identities)"
