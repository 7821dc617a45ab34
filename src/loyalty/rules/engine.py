"""A compiled programme and its evaluation pipeline.

Order of application (documented for marketers in docs/programme.md):
1. Rules for the event's trigger run by priority (highest first), ties by rule id.
   A rule fires when it is active and all its conditions hold; `stop: true` on a fired
   rule skips every rule after it.
2. Exclusive groups: among fired rules sharing a `group`, only the largest award (or the
   largest factor, for multipliers) stays; ties go to priority, then rule id.
3. Base awards are computed and capped (per-event maximum, then member caps and campaign
   budget, read from the counters the caller supplies).
4. Multipliers add extra points to the capped base award of each rule they target:
   additively (2x and 3x make 4x) or compounding (2x then 3x make 6x) per the programme's
   `multiplier_stacking`; then the multiplier's own caps apply to its extra points.
5. The programme's `max_points_per_event` trims awards, lowest priority first.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from .checks import Check
from .context import Clocks, EvalContext
from .effects import AwardFunction, multiplier_extra, qualifying
from .inputs import EventInput, MemberInput
from .items import ItemSelector
from .limits import Limit
from .outputs import Award, CounterIncrement, CounterKey, Evaluation, RuleTrace
from .schema import ProgramSpec, TestSpec
from .source import SourceTree

TriggerKey = tuple[str, str | None]
_NO_COUNTERS: Mapping[CounterKey, int] = {}


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    trigger: TriggerKey
    priority: int
    reason: str
    check: Check | None = None
    items: ItemSelector | None = None
    award: AwardFunction | None = None
    factor: Decimal | None = None
    targets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    pending_days: int | None = None
    expires_after_days: int | None = None
    limits: tuple[Limit, ...] = ()
    max_per_event: int | None = None
    group: str | None = None
    stop: bool = False
    active_from: datetime | None = None
    active_until: datetime | None = None
    # Derived once so the per-event loop reads plain attributes, not properties.
    test: Callable[[EvalContext], bool] | None = field(init=False, default=None)
    windowed: bool = field(init=False, default=False)
    limited: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        derived = {
            "test": self.check.test if self.check is not None else None,
            "windowed": self.active_from is not None or self.active_until is not None,
            "limited": bool(self.limits) or self.max_per_event is not None,
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @property
    def sort_key(self) -> tuple[int, str]:
        return (-self.priority, self.id)

    def is_active(self, at: datetime) -> bool:
        return not self.windowed or (
            (self.active_from is None or at >= self.active_from)
            and (self.active_until is None or at < self.active_until)
        )

    def inactive_reason(self, at: datetime) -> str | None:
        if self.active_from is not None and at < self.active_from:
            return f"not active until {self.active_from.isoformat()}"
        if self.active_until is not None and at >= self.active_until:
            return f"ended at {self.active_until.isoformat()}"
        return None

    def points_for(self, ctx: EvalContext) -> int:
        if self.award is None:
            return 0
        quantity, amount = qualifying(ctx, self.items)
        return self.award(quantity, amount)


@dataclass(slots=True, eq=False)
class _Fired:
    rule: CompiledRule
    points: int
    capped: bool = False
    alive: bool = False
    note: str | None = None
    keys: list[tuple[Limit, CounterKey]] | None = None


@dataclass(slots=True)
class _Run:
    ctx: EvalContext
    counters: Mapping[CounterKey, int]
    notes: list[RuleTrace] | None

    def skip(self, rule_id: str, reason: str) -> None:
        if self.notes is not None:
            self.notes.append(RuleTrace(rule_id=rule_id, reason=reason))


@dataclass(frozen=True, slots=True)
class ProgramInfo:
    id: str
    name: str | None
    currency: str
    point_value: Decimal
    timezone: str
    activates_at: datetime | None
    multiplier_stacking: str
    max_points_per_event: int | None


class Program:
    """A compiled, immutable programme version: evaluate events against it."""

    def __init__(
        self,
        info: ProgramInfo,
        rules: Sequence[CompiledRule],
        clocks: Clocks,
        spec: ProgramSpec,
        tests: Sequence[TestSpec],
        tree: SourceTree,
        version_hash: str,
    ) -> None:
        self.info = info
        self.rules = tuple(sorted(rules, key=lambda r: r.sort_key))
        self.spec = spec
        self.tests = tuple(tests)
        self.tree = tree
        self.version_hash = version_hash
        # Rewards' `when` conditions, by reward id (set by the compiler).
        self.reward_checks: dict[str, Check] = {}
        self._clocks = clocks
        self._by_id = {rule.id: rule for rule in self.rules}
        self._has_groups = any(rule.group is not None for rule in self.rules)
        by_trigger: dict[TriggerKey, list[CompiledRule]] = {}
        for rule in self.rules:
            by_trigger.setdefault(rule.trigger, []).append(rule)
        self._by_trigger = {key: tuple(value) for key, value in by_trigger.items()}
        # Campaign windows only open or close at these instants, so the set of active rules
        # is constant between two of them: computed once per interval, then reused.
        self._boundaries = sorted(
            {at for rule in self.rules for at in (rule.active_from, rule.active_until) if at}
        )
        self._active_cache: dict[tuple[TriggerKey, int], tuple[CompiledRule, ...]] = {}

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def activates_at(self) -> datetime | None:
        """When the file asks this version to take over (the publisher may override it)."""
        return self.info.activates_at

    @property
    def source(self) -> str:
        """The main file's text, as written (see `sources` for included files)."""
        return self.tree.texts.get(self.tree.main_file, "")

    @property
    def sources(self) -> dict[str, str]:
        return dict(self.tree.texts)

    def rule(self, rule_id: str) -> CompiledRule:
        return self._by_id[rule_id]

    def _candidates(self, event: EventInput) -> tuple[CompiledRule, ...]:
        name = event.name if event.type == "custom" else None
        return self._by_trigger.get((event.type, name), ())

    def _active(self, event: EventInput) -> tuple[CompiledRule, ...]:
        """The event's candidate rules whose validity window contains the event."""
        trigger = (event.type, event.name if event.type == "custom" else None)
        slot = (trigger, bisect_right(self._boundaries, event.occurred_at))
        found = self._active_cache.get(slot)
        if found is None:
            at = event.occurred_at
            found = tuple(r for r in self._by_trigger.get(trigger, ()) if r.is_active(at))
            self._active_cache[slot] = found
        return found

    def reward_refusal(self, reward_id: str, member: MemberInput, at: datetime) -> str | None:
        """Why the reward's `when` condition refuses the member at `at`, if it does."""
        check = self.reward_checks.get(reward_id)
        if check is None:
            return None
        ctx = EvalContext(
            EventInput(type="custom", name="redemption", occurred_at=at), member, self._clocks
        )
        return None if check.test(ctx) else check.explain(ctx)

    def counter_keys(self, event: EventInput, member: MemberInput) -> tuple[CounterKey, ...]:
        """Every counter `evaluate` may read for this event; the ledger supplies their values."""
        ctx = EvalContext(event, member, self._clocks)
        keys: dict[CounterKey, None] = {}
        for rule in self._active(event):
            if rule.limits:
                for limit in rule.limits:
                    keys[limit.key(ctx)] = None
        return tuple(keys)

    def evaluate(
        self,
        event: EventInput,
        member: MemberInput,
        counters: Mapping[CounterKey, int] | None = None,
        *,
        explain: bool = False,
    ) -> Evaluation:
        """Judge one event. Missing counters count as zero."""
        ctx = EvalContext(event, member, self._clocks)
        run = _Run(ctx, counters or _NO_COUNTERS, [] if explain else None)
        if explain:
            candidates = self._candidates(event)
            self._trace_other_triggers(run, candidates, event)
        else:
            candidates = self._active(event)
        fired = self._select(run, candidates)
        if self._has_groups:
            fired = self._resolve_groups(fired, run)
        at = event.occurred_at
        awards: list[tuple[_Fired, Award]] = []
        by_target: dict[str, Award] = {}
        multipliers: list[_Fired] = []
        for item in fired:
            rule = item.rule
            if rule.factor is not None:
                multipliers.append(item)
            elif not rule.limited or self._cap(item, run):
                item.alive = True
                if item.points > 0:
                    award = self._base_award(item, at)
                    awards.append((item, award))
                    by_target[rule.id] = award
        if multipliers:
            awards.extend(self._multiply(multipliers, by_target, run))
        if self.info.max_points_per_event is not None:
            awards = self._event_maximum(awards, self.info.max_points_per_event)
        return self._result([item for item in fired if item.alive], awards, run)

    # -- pipeline steps --------------------------------------------------------------------

    def _trace_other_triggers(
        self, run: _Run, candidates: tuple[CompiledRule, ...], event: EventInput
    ) -> None:
        label = f"custom '{event.name}'" if event.type == "custom" else event.type
        listening = {id(rule) for rule in candidates}
        for rule in self.rules:
            if id(rule) not in listening:
                kind, name = rule.trigger
                wants = f"custom '{name}'" if kind == "custom" else kind
                run.skip(rule.id, f"runs on {wants} events, this is {label}")

    def _select(self, run: _Run, candidates: tuple[CompiledRule, ...]) -> list[_Fired]:
        fired: list[_Fired] = []
        ctx = run.ctx
        at = ctx.event.occurred_at
        for index, rule in enumerate(candidates):
            if run.notes is not None and not rule.is_active(at):
                run.skip(rule.id, rule.inactive_reason(at) or "")
                continue
            test = rule.test
            if test is not None and not test(ctx):
                if run.notes is not None and rule.check is not None:
                    run.skip(rule.id, rule.check.explain(ctx))
                continue
            fired.append(_Fired(rule, rule.points_for(ctx)))
            if rule.stop:
                if run.notes is not None:
                    for later in candidates[index + 1 :]:
                        run.skip(later.id, f"not evaluated: '{rule.id}' fired with stop: true")
                break
        return fired

    @staticmethod
    def _resolve_groups(fired: list[_Fired], run: _Run) -> list[_Fired]:
        best: dict[str, _Fired] = {}
        for item in fired:  # already in priority order, so the first of equals wins
            group = item.rule.group
            if group is None:
                continue
            current = best.get(group)
            if current is None or _strength(item) > _strength(current):
                best[group] = item
        kept: list[_Fired] = []
        for item in fired:
            group = item.rule.group
            if group is not None and best[group] is not item:
                run.skip(item.rule.id, f"exclusive group '{group}' won by '{best[group].rule.id}'")
            else:
                kept.append(item)
        return kept

    @staticmethod
    def _cap(item: _Fired, run: _Run) -> bool:
        """Trim `item.points` to its caps; False when a times-cap or exhausted cap blocks it."""
        rule = item.rule
        wanted = item.points
        if rule.max_per_event is not None and item.points > rule.max_per_event:
            item.points = rule.max_per_event
            item.note = f"capped at {rule.max_per_event} points per event"
        item.keys = []
        for limit in rule.limits:
            key = limit.key(run.ctx)
            used = run.counters.get(key, 0)
            if limit.unit == "times" and used >= limit.maximum:
                run.skip(rule.id, f"limit reached: {limit.describe()} (used {used})")
                return False
            if limit.unit == "points" and item.points > limit.maximum - used:
                item.points = max(0, limit.maximum - used)
                item.note = f"capped: {limit.describe()} (used {used})"
            item.keys.append((limit, key))
        if wanted > 0 and item.points == 0:
            run.skip(rule.id, f"limit reached: {item.note}")
            return False
        item.capped = item.points < wanted
        return True

    def _base_award(self, item: _Fired, at: datetime) -> Award:
        rule = item.rule
        pending_days = rule.pending_days
        return Award(
            rule_id=rule.id,
            reason=rule.reason,
            points=item.points,
            pending=bool(pending_days),
            vests_at=at + timedelta(days=pending_days) if pending_days else None,
            expires_at=_expiry(at, rule.expires_after_days),
            capped=item.capped,
            cap_note=item.note if item.capped else None,
        )

    def _multiply(
        self, multipliers: list[_Fired], by_target: dict[str, Award], run: _Run
    ) -> list[tuple[_Fired, Award]]:
        compound = self.info.multiplier_stacking == "compound"
        running = {rule_id: award.points for rule_id, award in by_target.items()}
        result: list[tuple[_Fired, Award]] = []
        for item in multipliers:
            rule = item.rule
            factor = rule.factor or Decimal(1)
            extras: list[tuple[Award, int]] = []
            for target in rule.targets:
                award = by_target.get(target)
                if award is None:
                    continue
                basis = running[target] if compound else award.points
                extras.append((award, multiplier_extra(basis, factor)))
            item.points = sum(extra for _, extra in extras)
            if not extras:
                run.skip(rule.id, f"none of {', '.join(rule.targets)} awarded points")
                continue
            if not self._cap(item, run):
                continue
            remaining = item.points
            for target_award, extra in extras:
                granted = min(extra, remaining)
                remaining -= granted
                running[target_award.rule_id] += granted
                if granted > 0:
                    item.alive = True
                    result.append(
                        (item, self._extra_award(item, target_award, granted, extra, run))
                    )
        return result

    def _extra_award(
        self, item: _Fired, target: Award, granted: int, wanted: int, run: _Run
    ) -> Award:
        rule = item.rule
        at = run.ctx.event.occurred_at
        own_pending = rule.pending_days
        return Award(
            rule_id=rule.id,
            reason=rule.reason,
            points=granted,
            kind="multiplier",
            multiplier_of=target.rule_id,
            # Extra points follow the award they multiply unless the rule says otherwise.
            pending=target.pending if own_pending is None else own_pending > 0,
            vests_at=target.vests_at
            if own_pending is None
            else (at + timedelta(days=own_pending) if own_pending > 0 else None),
            expires_at=_expiry(at, rule.expires_after_days) or target.expires_at,
            capped=granted < wanted,
            cap_note=item.note if granted < wanted else None,
        )

    @staticmethod
    def _event_maximum(
        awards: list[tuple[_Fired, Award]], maximum: int
    ) -> list[tuple[_Fired, Award]]:
        total = sum(award.points for _, award in awards)
        if total <= maximum:
            return awards
        excess = total - maximum
        trimmed: list[tuple[_Fired, Award]] = []
        for item, award in reversed(awards):
            cut = min(excess, award.points)
            excess -= cut
            if cut:
                note = f"capped at {maximum} points per event (programme maximum)"
                award = _replace(award, points=award.points - cut, capped=True, cap_note=note)
            if award.points > 0:
                trimmed.append((item, award))
        trimmed.reverse()
        return trimmed

    def _result(
        self, fired: list[_Fired], awards: list[tuple[_Fired, Award]], run: _Run
    ) -> Evaluation:
        member_tags = run.ctx.member.tags
        tags: dict[str, None] = {}
        points_by_rule: dict[str, int] = {}
        for _, award in awards:
            points_by_rule[award.rule_id] = points_by_rule.get(award.rule_id, 0) + award.points
        increments: list[CounterIncrement] = []
        for item in fired:
            for tag in item.rule.tags:
                if tag not in member_tags:
                    tags[tag] = None
            for limit, key in item.keys or ():
                amount = 1 if limit.unit == "times" else points_by_rule.get(item.rule.id, 0)
                if amount:
                    increments.append(CounterIncrement(key=key, amount=amount))
        total = pending = 0
        for _, award in awards:
            total += award.points
            if award.pending:
                pending += award.points
        return Evaluation(
            program_id=self.info.id,
            program_version=self.version_hash,
            awards=tuple(award for _, award in awards),
            total_points=total,
            pending_points=pending,
            fired=tuple(item.rule.id for item in fired),
            tags=tuple(tags),
            counter_increments=tuple(increments),
            not_fired=tuple(run.notes or ()),
        )


def _strength(item: _Fired) -> Decimal:
    return item.rule.factor if item.rule.factor is not None else Decimal(item.points)


def _expiry(at: datetime, days: int | None) -> datetime | None:
    return at + timedelta(days=days) if days is not None else None


def _replace(award: Award, **changes: Any) -> Award:
    return msgspec.structs.replace(award, **changes)


__all__ = ["CompiledRule", "Program", "ProgramInfo"]
