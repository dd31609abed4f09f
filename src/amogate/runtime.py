"""The composition root: `async with Gateway.start(settings) as gateway` builds everything the
gateway runs on, in one place, for `serve`, `worker`, `demo`, `check` and the tests.

    Gateway
      database                       one engine (SQLite migrated on the spot)
      accounts: name -> Account      `default` from .env, the rest from `amogate accounts add`
        amo      AmoConnection       its tokens + refresh lock, its budget, its AmoClient
        info     InfoCache           its pipelines and field lists
        intake   LeadIntake          stores leads for this account
        worker   DeliveryWorker      delivers this account's leads (when asked to run one)
      relay                          amoCRM's webhooks to subscribers (its worker when asked)
      purge                          the retention purge, one per gateway

Each account has its own worker task claiming only its own leads, so an account that is
blocked, down, out of budget or waiting for reauthorization holds up nothing but its own
queue. Accounts added while the gateway runs (by the CLI, or another instance) are picked up
when first asked for and by a periodic re-read; removed ones are stopped the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import structlog

from amogate.accounts import config as account_config
from amogate.accounts.config import AccountConfig
from amogate.amocrm.client import OnCall
from amogate.connection.service import AmoConnection
from amogate.deliveries.signals import DeliverySignals
from amogate.info.cache import InfoCache
from amogate.info.source import AmoInfoSource
from amogate.leads.service import LeadIntake
from amogate.relay.metrics import RelayMetrics
from amogate.relay.registration import WebhookCheck
from amogate.relay.runtime import Relay, start_relay
from amogate.relay.worker import Periodic
from amogate.settings import Settings
from amogate.storage import accounts as account_store
from amogate.storage import schema
from amogate.storage.db import Database
from amogate.worker.retention import RetentionPurge
from amogate.worker.worker import DeliveryWorker, deliverer_from, purge_from

log = structlog.get_logger("amogate.runtime")

# How often a running gateway re-reads the account list (accounts added or removed elsewhere).
ACCOUNTS_REFRESH_SECONDS = 10.0
PURGE_POLL_SECONDS = 30.0

# (account, endpoint template, status or None, seconds): the metrics hook with its account.
AccountCallHook = Callable[[str, str, int | None, float], None]


class AccountNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass
class Account:
    """Everything the gateway runs for one amoCRM account."""

    config: AccountConfig
    settings: Settings  # the account's view of the settings
    amo: AmoConnection
    info: InfoCache
    signals: DeliverySignals
    intake: LeadIntake
    worker: DeliveryWorker | None = None

    @property
    def name(self) -> str:
        return self.config.name

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
        await self.amo.stop()


@dataclass(frozen=True)
class Options:
    transport: httpx.AsyncBaseTransport | None
    on_call: AccountCallHook | None
    keeper: bool
    worker: bool


class Gateway:
    def __init__(self, settings: Settings, database: Database, options: Options) -> None:
        self.settings = settings
        self.database = database
        self.options = options
        self.accounts: dict[str, Account] = {}
        self.purge: RetentionPurge = purge_from(settings, database)
        self.relay: Relay | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        settings: Settings,
        *,
        database: Database | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_call: AccountCallHook | None = None,
        keeper: bool = True,
        worker: bool = True,
        require_current_schema: bool = False,
        schema_ready: bool = False,
        relay_metrics: RelayMetrics | None = None,
    ) -> AsyncIterator[Gateway]:
        """Open (or share) the database, bring the schema up to date (SQLite; PostgreSQL only
        checked with `require_current_schema`; nothing with `schema_ready`, when the caller
        took that step), start every account; stop all on exit. `keeper`: refresh idle tokens
        in the background; `worker`: deliver leads here."""
        db = database or Database(settings.database_url, synchronous=settings.sqlite_synchronous)
        gateway = cls(settings, db, Options(transport, on_call, keeper, worker))
        try:
            if not schema_ready:
                await schema.ensure_current(db, check_postgresql=require_current_schema)
            await gateway.refresh_accounts()
            if worker or keeper:
                gateway._tasks.append(
                    asyncio.create_task(gateway._watch_accounts(), name="amogate-accounts")
                )
            if worker:
                gateway._tasks.append(asyncio.create_task(gateway._purge(), name="amogate-purge"))
            gateway.relay = start_relay(
                settings,
                db,
                metrics=relay_metrics,
                run_worker=worker,
                periodic=gateway._webhook_checks(),
            )
            yield gateway
        finally:
            await gateway.stop()
            if database is None:
                await db.dispose()

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for account in list(self.accounts.values()):
            await account.stop()
        self.accounts.clear()

    # --- accounts --------------------------------------------------------------------------

    @property
    def default(self) -> Account | None:
        """The `.env` account (None when AMO_DOMAIN / AMO_BASE_URL are not set)."""
        return self.accounts.get(account_config.DEFAULT)

    async def account(self, name: str) -> Account:
        """The running account `name`; one added since the last re-read is started now.
        `AccountNotFound` when there is no such account."""
        found = self.accounts.get(name)
        if found is None:
            await self.refresh_accounts()
            found = self.accounts.get(name)
        if found is None:
            raise AccountNotFound(name)
        return found

    async def configured_accounts(self) -> list[AccountConfig]:
        """`default` (when configured) and every added account, from .env and the database."""
        configs = [account_config.from_settings(self.settings)]
        async with self.database.read() as conn:
            rows = await account_store.added(conn)
        configs += [config_of(self.settings, row) for row in rows]
        return [c for c in configs if c.configured]

    async def refresh_accounts(self) -> None:
        """Start accounts that are new or changed, stop removed ones."""
        async with self._lock:
            wanted = {c.name: c for c in await self.configured_accounts()}
            for name in [n for n, a in self.accounts.items() if wanted.get(n) != a.config]:
                await self.accounts.pop(name).stop()
                log.info("account.stopped", account=name)
            for name, config in wanted.items():
                if name not in self.accounts:
                    self.accounts[name] = await self._start_account(config)
                    log.info("account.started", account=name)

    async def _start_account(self, config: AccountConfig) -> Account:
        options = self.options
        settings = account_config.settings_for(self.settings, config)
        hook = options.on_call
        on_call: OnCall | None = None
        if hook is not None:

            def on_call(endpoint: str, status: int | None, seconds: float) -> None:
                hook(config.name, endpoint, status, seconds)

        amo = connection_of(
            settings, self.database, config, transport=options.transport, on_call=on_call
        )
        await amo.start(keeper=options.keeper)
        info = InfoCache(
            AmoInfoSource(amo),
            ttl=settings.info_cache_ttl,
            refresh_min_interval=settings.info_refresh_min_interval,
            account_key=config.name,
        )
        signals = DeliverySignals()
        amo.on_connected.append(signals.wake)
        intake = LeadIntake(
            self.database, settings, signals, fields=lambda: info, account_key=config.name
        )
        account = Account(config, settings, amo, info, signals, intake)
        if options.worker:
            account.worker = DeliveryWorker(
                deliverer_from(settings, self.database, amo, info, signals), signals
            )
            account.worker.start()
        return account

    def _webhook_checks(self) -> list[Periodic]:
        """The periodic check of each account's webhook registration with amoCRM."""
        if not self.accounts:
            return []

        def connection_for(account_key: str) -> AmoConnection | None:
            account = self.accounts.get(account_key)
            return account.amo if account is not None else None

        interval = self.settings.webhook_check_interval_seconds
        return [WebhookCheck(self.database, self.settings, connection_for, interval)]

    def wake_default(self) -> None:
        """Wake the `.env` account's worker (forms store their leads for `default`)."""
        if self.default is not None:
            self.default.signals.wake()

    async def _watch_accounts(self) -> None:
        while True:
            await asyncio.sleep(ACCOUNTS_REFRESH_SECONDS)
            try:
                await self.refresh_accounts()
            except Exception:  # a database hiccup: keep the accounts that run, try again later
                log.exception("accounts.refresh.failed")

    async def _purge(self) -> None:
        while True:
            try:
                if self.purge.due():
                    await self.purge.run_once()
            except Exception:
                log.exception("retention.purge.failed")
            await asyncio.sleep(min(PURGE_POLL_SECONDS, max(self.purge.interval_s, 0.05)))


def connection_of(
    settings: Settings,
    database: Database,
    config: AccountConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    on_call: OnCall | None = None,
) -> AmoConnection:
    """The one place an account's connection is made (not started); `settings` are the
    gateway's, the account's view of them is taken here."""
    return AmoConnection.create(
        account_config.settings_for(settings, config),
        database,
        transport=transport,
        on_call=on_call,
        account_key=config.name,
    )


async def account_config_of(settings: Settings, database: Database, name: str) -> AccountConfig:
    """The settings of account `name` (`default`: .env); `AccountNotFound` when there is no
    such account, or `default` is not configured."""
    if name == account_config.DEFAULT:
        config = account_config.from_settings(settings)
    else:
        async with database.read() as conn:
            row = await account_store.get(conn, name)
        if row is None or row.added_at is None:
            raise AccountNotFound(name)
        config = config_of(settings, row)
    if not config.configured:
        raise AccountNotFound(name)
    return config


async def connection_for(
    settings: Settings,
    database: Database,
    name: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AmoConnection:
    """A connection (not started) to account `name`, for commands that need one account."""
    config = await account_config_of(settings, database, name)
    return connection_of(settings, database, config, transport=transport)


def config_of(settings: Settings, row: account_store.AccountRow) -> AccountConfig:
    """An added account's settings from its row (what it leaves out comes from .env)."""
    return account_config.added(
        settings,
        name=row.account_key,
        domain=row.amo_domain,
        base_url=row.base_url,
        client_id=row.client_id,
        client_secret=row.client_secret,
        long_lived_token=row.long_lived_token,
        rate_limit=row.rate_limit,
        contact_dedup=row.contact_dedup,
    )
