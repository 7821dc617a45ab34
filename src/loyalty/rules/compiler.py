"""compile_program: YAML text -> validated, compiled `Program`, or every error found."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi

from .calendars import CustomDate, is_zone, parse_custom_date
from .checks import Check, all_of
from .conditions import Scope, compile_condition, items_check
from .context import Clocks
from .diagnostics import Diagnostic, ProgramInvalid
from .effects import award_function, describe_award
from .engine import CompiledRule, Program, ProgramInfo
from .expr import compile_expr
from .items import ItemSelector
from .limits import Limit
from .schema import ConditionSpec, ProgramSpec, RuleSpec, TestSpec, as_list
from .source import PathKey, Reader, SourceTree, load_text, read_disk
from .structure import Structurer, did_you_mean

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def compile_program(path: str | Path) -> Program:
    """Compile a programme file; included files are read relative to it."""
    name = str(path)
    try:
        text = read_disk(name)
    except OSError as exc:
        raise ProgramInvalid(
            [Diagnostic(file=name, line=1, column=1, message=f"cannot read: {exc.strerror}")]
        ) from exc
    return _compile(text, name, read_disk)


def compile_files(files: Mapping[str, str], main: str) -> Program:
    """Compile a programme held in memory (e.g. uploaded over HTTP): `files` maps each
    file name, as `include:` spells it relative to `main`, to its text."""
    if main not in files:
        raise ProgramInvalid(
            [Diagnostic(file=main, line=1, column=1, message="the main file is missing")]
        )
    return _compile(files[main], main, lambda name: files[name])


def read_program_files(path: str | Path) -> tuple[dict[str, str], str]:
    """A programme file and every file it includes, named relative to its directory,
    as `compile_files` takes them: what a publish stores. Raises ProgramInvalid."""
    file = Path(path)
    try:
        text = read_disk(str(file))
    except OSError as exc:
        raise ProgramInvalid(
            [Diagnostic(file=str(path), line=1, column=1, message=f"cannot read: {exc.strerror}")]
        ) from exc
    program = _compile(text, file.name, lambda name: read_disk(str(file.parent / name)))
    return program.sources, file.name


def compile_source(text: str, name: str = "program.yaml") -> Program:
    """Compile a single programme text that includes no other files."""
    return compile_files({name: text}, name)


def _compile(text: str, name: str, reader: Reader) -> Program:
    tree, errors = load_text(text, name, reader)
    if not isinstance(tree.data, dict):
        if not errors:
            errors.append(Diagnostic.at(tree.mark(()), "a programme must be a YAML mapping"))
        raise ProgramInvalid(errors)
    return _Compiler(tree, errors).run()


class _Compiler:
    def __init__(self, tree: SourceTree, errors: list[Diagnostic]) -> None:
        self.tree = tree
        self.errors = errors
        self.structurer = Structurer(tree, errors)

    def error(self, path: PathKey, message: str, rule_id: str | None = None) -> None:
        self.errors.append(Diagnostic.at(self.tree.mark(path), message, rule_id))

    def run(self) -> Program:
        data: dict[str, Any] = self.tree.data
        # Hash the merged content, not the text: comments and layout do not make a new version.
        canonical = msgspec.json.encode(copy.deepcopy(data), order="sorted")
        version = hashlib.sha256(canonical).hexdigest()[:16]
        raw_rules = data.pop("rules", [])
        raw_tests = data.pop("tests", [])
        self.structurer.check_shape(data, mi.type_info(ProgramSpec), (), None)
        header: ProgramSpec | None = self.structurer.convert(data, ProgramSpec, (), None)
        rules = self._convert_list(raw_rules, "rules", RuleSpec)
        tests = self._convert_list(raw_tests, "tests", TestSpec)
        if header is None:
            raise ProgramInvalid(_unique(self.errors))
        header = msgspec.structs.replace(
            header, rules=[r for _, r in rules], tests=[t for _, t in tests]
        )
        program = self._build(header, rules, tests, version)
        if self.errors:
            raise ProgramInvalid(_unique(self.errors))
        return program

    def _convert_list(self, raw: Any, section: str, cls: type[Any]) -> list[tuple[int, Any]]:
        if not isinstance(raw, list):
            self.error((section,), f"{section}: expected a list")
            return []
        converted = []
        shape = mi.type_info(cls)
        for index, item in enumerate(raw):
            rule_id = item.get("id") if isinstance(item, dict) else None
            rule_id = rule_id if isinstance(rule_id, str) else None
            where: PathKey = (section, index)
            # A rule with unknown fields or misspelt choices is not checked further: its
            # remaining errors would mostly be echoes of the one already reported.
            if not self.structurer.check_shape(item, shape, where, rule_id):
                continue
            spec = self.structurer.convert(item, cls, where, rule_id)
            if spec is not None:
                converted.append((index, spec))
        return converted

    # -- programme header ------------------------------------------------------------------

    def _build(
        self,
        spec: ProgramSpec,
        rules: list[tuple[int, RuleSpec]],
        tests: list[tuple[int, TestSpec]],
        version: str,
    ) -> Program:
        if not _CURRENCY.match(spec.currency):
            self.error(("currency",), f"currency '{spec.currency}' is not an ISO code like CNY")
        if spec.point_value <= 0:
            self.error(("point_value",), "point_value must be above zero")
        self._zone(spec.timezone, ("timezone",))
        self._aware(spec.activates_at, ("activates_at",), None)
        if spec.max_points_per_event is not None and spec.max_points_per_event < 0:
            self.error(("max_points_per_event",), "max_points_per_event must not be negative")
        for store_id, store in spec.stores.items():
            self._zone(store.timezone, ("stores", store_id, "timezone"))
        tiers = self._tiers(spec)
        self._catalog(spec, tiers)
        custom_dates = self._custom_dates(spec)
        self._scheduled(spec, tiers, custom_dates)
        info = ProgramInfo(
            id=spec.program,
            name=spec.name,
            currency=spec.currency,
            point_value=spec.point_value,
            timezone=spec.timezone,
            activates_at=spec.activates_at,
            multiplier_stacking=spec.multiplier_stacking,
            max_points_per_event=spec.max_points_per_event,
        )
        reward_checks = {
            reward_id: compile_condition(
                reward.when,
                Scope(
                    self.tree,
                    self.errors,
                    None,
                    "member",
                    tiers,
                    spec.stores.keys(),
                    custom_dates,
                    ("rewards", reward_id, "when"),
                ),
            )
            for reward_id, reward in spec.rewards.items()
            if reward.when is not None
        }
        builder = _RuleBuilder(self, spec, tiers, custom_dates)
        compiled = [builder.build(index, rule) for index, rule in rules]
        builder.check_references(rules)
        self._check_tests(tests, spec, tiers, {rule.id for _, rule in rules})
        zones = {store_id: store.timezone for store_id, store in spec.stores.items()}
        clocks = Clocks(spec.timezone if is_zone(spec.timezone) else "UTC", zones)
        program = Program(
            info,
            [c for c in compiled if c is not None],
            clocks,
            spec,
            [t for _, t in tests],
            self.tree,
            version,
        )
        program.reward_checks = reward_checks
        return program

    def _zone(self, name: str, path: PathKey, rule_id: str | None = None) -> None:
        if not is_zone(name):
            self.error(
                path, f"unknown time zone '{name}' (use an IANA name like Asia/Shanghai)", rule_id
            )

    def _aware(self, value: datetime | None, path: PathKey, rule_id: str | None) -> None:
        if value is not None and value.tzinfo is None:
            self.error(
                path, "date-time needs a UTC offset, like 2025-11-11T00:00:00+08:00", rule_id
            )

    def _tiers(self, spec: ProgramSpec) -> tuple[str, ...]:
        seen: list[str] = []
        for index, tier in enumerate(spec.tiers):
            if tier.id in seen:
                self.error(("tiers", index, "id"), f"duplicate tier '{tier.id}'")
            seen.append(tier.id)
            # The ladder starts at the tier every member has. A higher tier without
            # qualify is reached only by a marketer's assignment (invite-only).
            if index == 0 and tier.qualify is not None:
                self.error(
                    ("tiers", index, "qualify"),
                    f"tier '{tier.id}' is the entry tier (first in the ladder): "
                    "it takes no qualify",
                )
        return tuple(seen)

    def _catalog(self, spec: ProgramSpec, tiers: tuple[str, ...]) -> None:
        """Rewards name known tiers; tiers name known rewards."""
        known = ", ".join(tiers) or "none defined"
        for reward_id, reward in spec.rewards.items():
            for field, names in (
                ("tiers", reward.tiers),
                ("cost_by_tier", list(reward.cost_by_tier)),
            ):
                for name in names:
                    if name not in tiers:
                        self.error(
                            ("rewards", reward_id, field),
                            f"reward '{reward_id}': unknown tier '{name}' (tiers: {known})",
                        )
        gifts = [spec.scheduled.birthday, spec.scheduled.anniversary, *spec.scheduled.holidays]
        for gift in gifts:
            if gift is not None and gift.reward is not None and gift.reward not in spec.rewards:
                rewards = ", ".join(spec.rewards) or "none defined"
                where = f"holiday '{gift.id}'" if hasattr(gift, "id") else "scheduled gift"
                self.error(
                    ("scheduled",),
                    f"{where}: unknown reward '{gift.reward}' (rewards: {rewards})",
                )
        if spec.referrals is not None:
            for side in ("referrer_reward", "referee_reward"):
                named = getattr(spec.referrals.rewards, side)
                if named is not None and named not in spec.rewards:
                    rewards = ", ".join(spec.rewards) or "none defined"
                    self.error(
                        ("referrals", "rewards", side),
                        f"referrals: unknown reward '{named}' (rewards: {rewards})",
                    )
        for index, tier in enumerate(spec.tiers):
            for reward_id in tier.benefits.rewards:
                if reward_id not in spec.rewards:
                    rewards = ", ".join(spec.rewards) or "none defined"
                    self.error(
                        ("tiers", index, "benefits", "rewards"),
                        f"tier '{tier.id}': unknown reward '{reward_id}' (rewards: {rewards})",
                    )

    def _scheduled(
        self, spec: ProgramSpec, tiers: tuple[str, ...], custom_dates: dict[str, CustomDate]
    ) -> None:
        """Scheduled gifts name known tiers, holidays and custom dates."""
        known = ", ".join(tiers) or "none defined"
        section = spec.scheduled
        sized: list[tuple[PathKey, dict[str, int], list[str]]] = []
        if section.birthday is not None:
            sized.append((("scheduled", "birthday"), section.birthday.points_by_tier, []))
        if section.anniversary is not None:
            sized.append((("scheduled", "anniversary"), section.anniversary.points_by_tier, []))
        seen: set[str] = set()
        for index, campaign in enumerate(section.holidays):
            where: PathKey = ("scheduled", "holidays", index)
            if campaign.id in seen:
                self.error((*where, "id"), f"duplicate campaign '{campaign.id}'")
            seen.add(campaign.id)
            if not _RULE_ID.match(campaign.id):
                self.error(
                    (*where, "id"), "campaign ids use lower-case letters, digits, '-', '_' and '.'"
                )
            sized.append((where, campaign.points_by_tier, campaign.tiers))
            # The condition compiler already knows holidays and custom dates: reuse its
            # checks (and its positioned messages) for the campaign's day.
            day = ConditionSpec(holiday=campaign.holiday, custom_date=campaign.custom_date)
            compile_condition(
                day,
                Scope(self.tree, self.errors, None, "member", tiers, (), custom_dates, where),
            )
        for where, by_tier, eligible in sized:
            for field, names in (("points_by_tier", list(by_tier)), ("tiers", eligible)):
                for name in names:
                    if name not in tiers:
                        self.error((*where, field), f"unknown tier '{name}' (tiers: {known})")

    def _custom_dates(self, spec: ProgramSpec) -> dict[str, CustomDate]:
        result: dict[str, CustomDate] = {}
        for name, values in spec.custom_dates.items():
            parsed, problems = parse_custom_date(as_list(values))
            for problem in problems:
                self.error(("custom_dates", name), f"custom date '{name}': {problem}")
            result[name] = parsed
        return result

    def _check_tests(
        self,
        tests: list[tuple[int, TestSpec]],
        spec: ProgramSpec,
        tiers: tuple[str, ...],
        rule_ids: set[str],
    ) -> None:
        names: set[str] = set()
        for index, test in tests:
            where: PathKey = ("tests", index)
            if test.name in names:
                self.error((*where, "name"), f"duplicate test name '{test.name}'")
            names.add(test.name)
            if test.member.tier is not None and tiers and test.member.tier not in tiers:
                self.error(
                    (*where, "member", "tier"),
                    f"test '{test.name}': unknown tier "
                    f"'{test.member.tier}' (tiers: {', '.join(tiers)})",
                )
            if test.member.timezone is not None:
                self._zone(test.member.timezone, (*where, "member", "timezone"))
            references: list[tuple[PathKey, str]] = [
                (("counters", i, "rule"), c.rule) for i, c in enumerate(test.counters)
            ]
            for key in ("rules", "not_rules"):
                for i, rule_id in enumerate(getattr(test.expect, key) or []):
                    references.append((("expect", key, i), rule_id))
            for path, rule_id in references:
                if rule_id not in rule_ids:
                    hint = did_you_mean(rule_id, sorted(rule_ids))
                    self.error(
                        (*where, *path), f"test '{test.name}': unknown rule '{rule_id}'{hint}"
                    )


class _RuleBuilder:
    def __init__(
        self,
        compiler: _Compiler,
        spec: ProgramSpec,
        tiers: tuple[str, ...],
        custom_dates: dict[str, CustomDate],
    ) -> None:
        self.c = compiler
        self.spec = spec
        self.tiers = tiers
        self.custom_dates = custom_dates
        self.seen: dict[str, int] = {}

    def error(self, index: int, rule: RuleSpec, message: str, *path: str | int) -> None:
        self.c.error(("rules", index, *path), message, rule.id)

    def build(self, index: int, rule: RuleSpec) -> CompiledRule | None:
        if rule.id in self.seen:
            first = self.c.tree.mark(("rules", self.seen[rule.id], "id"))
            where = f"{first.file}:{first.line}"
            self.error(index, rule, f"duplicate rule id (first defined at {where})", "id")
        else:
            self.seen[rule.id] = index
        if not _RULE_ID.match(rule.id):
            self.error(
                index, rule, "rule ids use lower-case letters, digits, '-', '_' and '.'", "id"
            )
        self._trigger(index, rule)
        self._validity(index, rule)
        if rule.clock == "store" and not self.spec.stores:
            self.error(index, rule, "clock: store needs a stores: section with time zones", "clock")
        scope = Scope(
            self.c.tree,
            self.c.errors,
            rule.id,
            rule.clock,
            self.tiers,
            self.spec.stores.keys(),
            self.custom_dates,
            ("rules", index),
        )
        checks = self._checks(index, rule, scope)
        award = self._award(index, rule)
        self._effects_present(index, rule)
        limits = self._limits(index, rule)
        if rule.pending_days is not None and rule.pending_days < 0:
            self.error(index, rule, "pending_days must not be negative", "pending_days")
        if rule.expires_after_days is not None and rule.expires_after_days <= 0:
            self.error(index, rule, "expires_after_days must be above zero", "expires_after_days")
        if rule.max_per_event is not None and rule.max_per_event < 0:
            self.error(index, rule, "max_per_event must not be negative", "max_per_event")
        return CompiledRule(
            id=rule.id,
            trigger=(rule.on, rule.event if rule.on == "custom" else None),
            priority=rule.priority,
            reason=rule.reason or rule.description or self._default_reason(rule),
            check=all_of(checks) if checks else None,
            items=ItemSelector(rule.items) if rule.items is not None else None,
            award=award,
            factor=rule.multiply,
            targets=tuple(as_list(rule.applies_to)),
            tags=tuple(as_list(rule.tag)),
            pending_days=rule.pending_days,
            expires_after_days=rule.expires_after_days,
            limits=limits,
            max_per_event=rule.max_per_event,
            group=rule.group,
            stop=rule.stop,
            active_from=rule.active_from,
            active_until=rule.active_until,
        )

    def _default_reason(self, rule: RuleSpec) -> str:
        if rule.award is not None:
            return f"{describe_award(rule.award, self.spec.currency)} ({rule.id})"
        if rule.multiply is not None:
            return f"{rule.multiply.normalize()}x points ({rule.id})"
        return rule.id

    def _trigger(self, index: int, rule: RuleSpec) -> None:
        if rule.on == "custom" and not rule.event:
            self.error(index, rule, "on: custom needs an event name, e.g. event: review", "on")
        if rule.on != "custom" and rule.event is not None:
            self.error(
                index,
                rule,
                f"event: only custom rules name an event (this one is on {rule.on})",
                "event",
            )

    def _validity(self, index: int, rule: RuleSpec) -> None:
        self.c._aware(rule.active_from, ("rules", index, "active_from"), rule.id)
        self.c._aware(rule.active_until, ("rules", index, "active_until"), rule.id)
        start, end = rule.active_from, rule.active_until
        if start and end and start.tzinfo and end.tzinfo and start >= end:
            self.error(
                index,
                rule,
                f"active_from {start.isoformat()} is not before active_until {end.isoformat()}",
                "active_from",
            )

    def _checks(self, index: int, rule: RuleSpec, scope: Scope) -> list[Check]:
        checks: list[Check] = []
        if rule.award is not None and (rule.award.per_amount or rule.award.percent):
            currency = self.spec.currency
            checks.append(
                Check(
                    lambda ctx: ctx.event.currency in (None, currency),
                    lambda ctx: f"event currency {ctx.event.currency} is not {currency}",
                )
            )
        if rule.items is not None:
            checks.append(items_check(rule.items, scope.at("items")))
        if rule.when is not None:
            checks.append(compile_condition(rule.when, scope.at("when")))
        if rule.expr is not None:
            # Last, so the costly CEL context is only built when everything else held.
            found = compile_expr(rule.expr, scope)
            if found is not None:
                checks.append(found)
        return checks

    def _award(self, index: int, rule: RuleSpec) -> Any:
        award = rule.award
        if award is None:
            return None
        forms = [
            name
            for name in ("fixed", "per_amount", "per_item", "percent")
            if getattr(award, name) is not None
        ]
        if len(forms) != 1:
            message = (
                "award needs one of fixed, per_amount, per_item, percent"
                if not forms
                else f"award has both {forms[0]} and {forms[1]}; pick one"
            )
            self.error(index, rule, message, "award")
            return None
        for name in ("fixed", "per_item", "points"):
            value = getattr(award, name)
            if value is not None and value < 0:
                self.error(index, rule, f"negative points: {name} is {value}", "award", name)
        for name in ("per_amount", "percent"):
            value = getattr(award, name)
            if value is not None and value <= 0:
                self.error(index, rule, f"{name} must be above zero", "award", name)
        if self.spec.point_value <= 0:
            return None
        return award_function(award, self.spec.point_value)

    def _effects_present(self, index: int, rule: RuleSpec) -> None:
        if rule.award is None and rule.multiply is None and rule.tag is None and not rule.stop:
            self.error(index, rule, "rule has no effect: add award, multiply, tag or stop", "id")
        if rule.award is not None and rule.multiply is not None:
            self.error(
                index, rule, "a rule either awards or multiplies; split it in two", "multiply"
            )
        if rule.multiply is not None:
            if rule.multiply < 1:
                self.error(index, rule, "multiply must be at least 1", "multiply")
            if not as_list(rule.applies_to):
                self.error(
                    index, rule, "multiplier has no target: add applies_to: [rule ids]", "multiply"
                )
        elif rule.applies_to is not None:
            self.error(index, rule, "applies_to only makes sense with multiply", "applies_to")

    def _limits(self, index: int, rule: RuleSpec) -> tuple[Limit, ...]:
        limits: list[Limit] = []
        for i, spec in enumerate(rule.limits):
            where = ("limits", i)
            if (spec.max_points is None) == (spec.max_times is None):
                self.error(
                    index, rule, "a limit needs exactly one of max_points, max_times", *where
                )
                continue
            if (spec.period is None) == (spec.rolling_days is None):
                self.error(index, rule, "a limit needs exactly one of period, rolling_days", *where)
                continue
            if spec.rolling_days is not None and spec.rolling_days <= 0:
                self.error(index, rule, "rolling_days must be above zero", *where, "rolling_days")
            maximum = spec.max_points if spec.max_points is not None else spec.max_times
            if maximum is not None and maximum < 0:
                self.error(index, rule, "a limit maximum must not be negative", *where)
            limits.append(
                Limit(
                    rule_id=rule.id,
                    scope=spec.scope,
                    unit="points" if spec.max_points is not None else "times",
                    maximum=maximum or 0,
                    period=spec.period,
                    rolling_days=spec.rolling_days,
                    clock=rule.clock,
                )
            )
        if rule.once_per_member:
            limits.append(Limit(rule.id, "member", "times", 1, "lifetime", None, rule.clock))
        if rule.budget is not None:
            if rule.budget <= 0:
                self.error(index, rule, "budget must be above zero", "budget")
            limits.append(
                Limit(
                    rule.id,
                    "campaign",
                    "points",
                    rule.budget,
                    None,
                    None,
                    rule.clock,
                    rule.active_from,
                    rule.active_until,
                )
            )
        return tuple(limits)

    def check_references(self, rules: Sequence[tuple[int, RuleSpec]]) -> None:
        by_id = {rule.id: rule for _, rule in rules}
        groups: dict[str, list[RuleSpec]] = {}
        for index, rule in rules:
            if rule.group is not None:
                groups.setdefault(rule.group, []).append(rule)
            targets = as_list(rule.applies_to) if rule.multiply is not None else []
            for i, target in enumerate(targets):
                where = ("applies_to",) if isinstance(rule.applies_to, str) else ("applies_to", i)
                found = by_id.get(target)
                if found is None:
                    hint = did_you_mean(target, sorted(by_id))
                    self.error(index, rule, f"applies_to: unknown rule '{target}'{hint}", *where)
                elif found.award is None:
                    self.error(
                        index, rule, f"applies_to: '{target}' awards no points to multiply", *where
                    )
                elif found.on != rule.on or found.event != rule.event:
                    self.error(
                        index,
                        rule,
                        f"applies_to: '{target}' runs on {found.on}, this multiplier on {rule.on}",
                        *where,
                    )
        for group, members in groups.items():
            self._check_group(group, members, rules)

    def _check_group(
        self, group: str, members: list[RuleSpec], rules: Sequence[tuple[int, RuleSpec]]
    ) -> None:
        """Overlapping groups: members must compete like for like on the same trigger."""
        index_of = {id(rule): index for index, rule in rules}
        first = members[0]
        for rule in members[1:]:
            if (rule.multiply is None) != (first.multiply is None):
                self.error(
                    index_of[id(rule)],
                    rule,
                    f"exclusive group '{group}' overlaps "
                    f"awards and multipliers ('{first.id}'); they cannot be compared",
                    "group",
                )
            elif (rule.on, rule.event) != (first.on, first.event):
                self.error(
                    index_of[id(rule)],
                    rule,
                    f"exclusive group '{group}' spans "
                    f"triggers {first.on} and {rule.on}; its rules never compete",
                    "group",
                )


def _unique(errors: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, int, int]] = set()
    result = []
    for error in errors:
        where = (error.file, error.line, error.column)
        if where not in seen:
            seen.add(where)
            result.append(error)
    return result
