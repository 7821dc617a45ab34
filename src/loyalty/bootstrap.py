"""The composition root: settings in, wired services out. One place builds everything."""

from __future__ import annotations

from loyalty.auth.service import ApiKeyService
from loyalty.clock import Clock, SystemClock
from loyalty.db.engine import Database
from loyalty.ledger.backtest import Backtester
from loyalty.ledger.batch import BatchService
from loyalty.ledger.events import EventService
from loyalty.ledger.jobs import LedgerJobs
from loyalty.ledger.redemptions import RedemptionService
from loyalty.ledger.reports import ReportService
from loyalty.ledger.service import LedgerService
from loyalty.members.service import MemberService
from loyalty.program.service import ProgramService
from loyalty.referrals.service import ReferralService
from loyalty.rewards.service import RewardService
from loyalty.scheduler.service import Scheduler
from loyalty.settings import Settings
from loyalty.tiers.service import TierService


class Container:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.db = Database(settings.database, pool_size=settings.db_pool_size)
        self.api_keys = ApiKeyService(self.db, self.clock, settings.auth_cache_seconds)
        self.members = MemberService(self.db, self.clock, settings.default_phone_region)
        self.programs = ProgramService(self.db, self.clock, settings.program_refresh_seconds)
        self.tiers = TierService(self.db, self.clock, self.programs)
        self.referrals = ReferralService(self.db)
        self.redemptions = RedemptionService(self.db, self.clock, self.programs)
        self.rewards = RewardService(self.db, self.clock, self.programs, self.redemptions)
        self.events = EventService(
            self.db,
            self.clock,
            self.programs,
            self.tiers,
            enrol_unknown=settings.unknown_member == "enrol",
        )
        self.batches = BatchService(self.db, self.events)
        self.ledger = LedgerService(self.db, self.clock, self.programs)
        self.ledger_jobs = LedgerJobs(self.db, self.clock)
        self.backtester = Backtester(self.db, self.programs)
        self.reports = ReportService(self.db, self.clock, self.programs)
        self.scheduler = Scheduler(
            self.db, self.clock, self.programs, self.ledger_jobs, self.tiers, self.redemptions
        )

    async def close(self) -> None:
        await self.db.dispose()
