"""The circuit breaker: a state machine driven by one decision path.

Every way of guarding a call (decorator, ``call``/``acall``, streams, ``with``/``async with``)
runs the same three steps (the code around the user's call is in :mod:`tripwise.core.guard`):

1. Admission. The caller reads ``breaker.path``, the immutable :class:`~tripwise.core.path.Path`
   of the current generation. When it says ``admit`` the call runs with no lock taken;
   otherwise ``_admit_slow()`` decides under the lock (open -> half-open after the cool-down,
   probe slots, the shared store...) and returns the permit (the Path the call runs in) or
   raises :class:`CircuitBreakerOpen`.
2. The user's function runs with no lock held.
3. The outcome. A lean success (``path.lean``) is one ``next(path.calls)``; a returned call
   on a ``path.quick`` path (CLOSED, outcome = latency and score) is ``_complete()``, one
   short step under the lock; anything else is ``_record()`` under the lock. Each guarded call
   completes its permit exactly once, with an outcome (``_complete``/``_record``) or without
   one (``_release``: an ignored exception, cancellation).

Every transition builds a new Path with its own call counter, so the outcome of a call that
began before a transition still counts in the stats but can never fill the new generation's
windows, close, open or re-open the breaker. In HALF_OPEN a permit of the current generation
is a probe. Settings live in a frozen :class:`~tripwise.core.config.BreakerConfig`.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tripwise.core import guard, signals
from tripwise.core.clock import Clock, monotonic
from tripwise.core.condition_base import claim_condition, release_condition
from tripwise.core.conditions import Condition, ScoreFn, as_condition, consecutive_failures
from tripwise.core.config import BreakerConfig
from tripwise.core.errors import CircuitBreakerOpen, FailedResult, QualitySignalMissing
from tripwise.core.events import Listener, dispatch_call, dispatch_rejection, dispatch_state_change
from tripwise.core.guard import NO_FALLBACK, check_fallback
from tripwise.core.path import Path, Tally
from tripwise.core.records import CallRecord
from tripwise.core.shared import SharedState, StateLink, StateStore
from tripwise.core.signals import check_reported_score
from tripwise.core.states import Mode, State
from tripwise.core.stats import BreakerStats
from tripwise.core.validation import check_exception_types, check_name

if TYPE_CHECKING:
    from tripwise.core.registry import Registry

logger = logging.getLogger("tripwise.breaker")

F = TypeVar("F", bound=Callable[..., Any])

# Module-level aliases: an Enum member lookup costs ~100 ns on CPython 3.11, a global ~8 ns.
_CLOSED, _OPEN, _HALF_OPEN = State.CLOSED, State.OPEN, State.HALF_OPEN
_NORMAL, _FORCED_OPEN, _DISABLED, _METRICS_ONLY = (
    Mode.NORMAL,
    Mode.FORCED_OPEN,
    Mode.DISABLED,
    Mode.METRICS_ONLY,
)
_STALE_GEN = -1  # the generation of a permit that counts in the stats only

StateChangeCallback = Callable[["CircuitBreaker", State, State], Any]

_DEFAULT_REGISTRY: Any = object()  # sentinel: "use the process-wide registry"


_STALE: Any = object()  # (_complete: the call's path is no longer the breaker's)


class CircuitBreaker:
    """A circuit breaker that trips on errors, latency and model-output quality.

    Use it as a decorator (``@breaker``, also on generator and async generator functions),
    with ``breaker.call(fn, ...)`` / ``await breaker.acall(fn, ...)`` / ``breaker.stream(...)``,
    or as a (async) context manager.

    Defaults: ``trip_on=consecutive_failures(5)``, ``half_open_after=60.0`` s,
    ``half_open_max_calls=1``, ``recovery_threshold=2``. ``fallback`` is a value, a callable
    taking the guarded function's arguments, ``None`` or ``"raise"`` (both: a rejected call
    raises :class:`CircuitBreakerOpen`).
    """

    # Slots: attribute reads and writes on the hot path are CPython's fastest kind (a breaker
    # has ~45 fields, too many for a dict with shared keys). ``__dict__`` stays, so users and
    # their tests can still set their own attributes or patch a method on one breaker.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_base_mode",
        "_calls_offset",
        "_clock",
        "_clock_fn",
        "_config",
        "_created_wall",
        "_failed_recoveries",
        "_failures",
        "_fallback",
        "_frames",
        "_gen",
        "_ignored",
        "_last_quality",
        "_last_trip_at",
        "_late_calls",
        "_late_ids",
        "_latency_max",
        "_latency_sum",
        "_lean",
        "_link",
        "_listeners",
        "_lock",
        "_mode",
        "_open_duration",
        "_opened_at",
        "_opened_at_wall",
        "_path",
        "_probe_successes",
        "_probes_in_flight",
        "_quality_count",
        "_quality_sum",
        "_rejected_offset",
        "_rejections",
        "_reports_scoped",
        "_retired_calls",
        "_rng",
        "_root",
        "_score_fn",
        "_stale_path",
        "_state",
        "_state_callbacks",
        "_state_changed_wall",
        "_timed_calls",
        "_trip_count",
        "_warming",
        "late_quality_capacity",
        "name",
        "registry",
    )

    def __init__(
        self,
        trip_on: Any = None,
        *,
        name: str | None = None,
        fallback: Any = None,
        half_open_after: float = 60.0,
        half_open_max_calls: int = 1,
        recovery_threshold: int = 2,
        half_open_backoff: float = 1.0,
        max_half_open_after: float | None = None,
        half_open_jitter: float = 0.0,
        score_fn: ScoreFn | None = None,
        require_quality_signal: bool = False,
        record_exceptions: type[BaseException] | Iterable[type[BaseException]] = (Exception,),
        ignore_exceptions: type[BaseException] | Iterable[type[BaseException]] = (),
        exception_predicate: Callable[[BaseException], bool] | None = None,
        result_predicate: Callable[[Any], bool] | None = None,
        on_state_change: StateChangeCallback | None = None,
        listeners: Iterable[Listener] = (),
        metrics_only: bool = False,
        track_latency: bool = False,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        registry: Registry | None = _DEFAULT_REGISTRY,
        store: StateStore | None = None,
    ) -> None:
        if name is not None:
            check_name(name)
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        if rng is not None and not callable(getattr(rng, "random", None)):
            raise TypeError(f"rng must be a random.Random-like object, got {rng!r}")
        if on_state_change is not None and not callable(on_state_change):
            raise TypeError(f"on_state_change must be callable, got {on_state_change!r}")
        if registry is _DEFAULT_REGISTRY:
            from tripwise.core.registry import default_registry

            registry = default_registry
        if registry is not None and not (
            callable(getattr(registry, "add", None)) and hasattr(registry, "all")
        ):
            raise TypeError(f"registry must be a tripwise.Registry or None, got {registry!r}")
        if store is None and registry is not None:
            store = registry.default_store  # the one place a registry's default store applies
        if store is not None and not callable(getattr(store, "attach", None)):
            raise TypeError(f"store must be a state store (e.g. RedisStore), got {store!r}")
        if store is not None and name is None and getattr(store, "shared", True):
            raise ValueError(
                f"a breaker sharing its state through {store!r} needs a name= (the name is the "
                "key other processes share; a generated name would share nothing)"
            )
        try:
            listeners = list(listeners)
        except TypeError:
            raise TypeError(
                f"listeners must be an iterable of listener objects, got {listeners!r}"
            ) from None

        self._root: Condition = as_condition(
            consecutive_failures(5) if trip_on is None else trip_on
        )
        self._config = BreakerConfig(
            half_open_after=half_open_after,
            half_open_max_calls=half_open_max_calls,
            recovery_threshold=recovery_threshold,
            half_open_backoff=half_open_backoff,
            max_half_open_after=max_half_open_after,
            half_open_jitter=half_open_jitter,
            require_quality_signal=require_quality_signal,
            record_exceptions=check_exception_types("record_exceptions", record_exceptions),
            ignore_exceptions=check_exception_types("ignore_exceptions", ignore_exceptions),
            exception_predicate=exception_predicate,
            result_predicate=result_predicate,
            metrics_only=metrics_only,
            track_latency=track_latency,
            score_fn=score_fn,
        )
        self._fallback = check_fallback(fallback)
        self._score_fn = self._pick_score_fn(score_fn)

        # The default clock looks time.monotonic up at every read, so that mock.patch,
        # freezegun and time-machine move breakers; _clock_fn is None for it (the hot paths
        # then call time.monotonic() inline, which costs ~10 ns more than a bound reference).
        self._clock_fn: Clock | None = clock
        self._clock: Clock = clock if clock is not None else monotonic
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._late_calls = None
        self._late_ids = None
        self.late_quality_capacity = self.LATE_QUALITY_CAPACITY
        self._frames: ContextVar[guard.Frame | None] = ContextVar("tripwise_frames", default=None)

        self._listeners: list[Listener] = listeners
        self._state_callbacks: list[StateChangeCallback] = []
        if on_state_change is not None:
            self._state_callbacks.append(on_state_change)

        claimed: list[Any] = []
        try:
            for cond in self._root.walk():
                for obj in cond.claimables():
                    claim_condition(obj, name if name is not None else "unnamed")
                    claimed.append(obj)
            self._init_rest(name, registry, store, metrics_only)
        except BaseException:  # (a refused name or store: the conditions stay free)
            for obj in claimed:
                release_condition(obj)
            raise

    def _init_rest(
        self, name: str | None, registry: Registry | None, store: Any, metrics_only: bool
    ) -> None:
        """The rest of ``__init__``, once the conditions are claimed."""
        # State machine (guarded by _lock; _path is also read without it, atomically).
        self._base_mode = _METRICS_ONLY if metrics_only else _NORMAL
        self._mode = self._base_mode
        self._state = _CLOSED
        self._gen = 0
        self._root.restart(0)
        self._warming = not self._root.warm(0)  # conditions still need to hear of successes
        self._reports_scoped = False  # no report reached an inline call yet (see _scope_reports)
        self._opened_at: float | None = None
        self._opened_at_wall: float | None = None
        self._last_trip_at: float | None = None
        self._open_duration = self._config.half_open_after
        self._failed_recoveries = 0
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._trip_count = 0
        self._state_changed_wall = time.time()
        self._created_wall = self._state_changed_wall

        # Counters (under _lock, except the Tallies, which are bumped lock-free).
        self._retired_calls = 0  # calls counted on the Tallies of retired generations
        self._calls_offset = 0  # calls before the last clear_stats
        self._rejections = Tally()
        self._rejected_offset = 0
        self._timed_calls = 0
        self._failures = 0
        self._ignored = 0
        self._latency_sum = 0.0
        self._latency_max = 0.0
        self._quality_sum = 0.0
        self._quality_count = 0
        self._last_quality: float | None = None
        self._stale_path = self._build_path(_STALE_GEN, Tally())
        self._path: Path
        self._lean: Tally | None  # path.calls when path.lean, else None (set with _path)
        self._set_path(self._build_path(0, Tally()))
        # Lean conditions learn of successes from sequence gaps; this lets their accessors
        # (aggregate(), window.count...) count the successes since their last observation.
        follow_calls = getattr(self._root, "follow_calls", None)
        if callable(follow_calls):
            follow_calls(self._calls_in_generation)

        self.name = name if name is not None else f"breaker-{id(self):x}"
        self.registry: Registry | None = None
        if registry is not None:
            registry.add(self)
            self.registry = registry

        # Shared state (see tripwise.core.shared): consulted on the slow path only.
        self._link: StateLink | None = None
        if store is not None:
            self._link = store.attach(self)
            if self._link is not None:
                self._link.sync()

    # ------------------------------------------------------------------ construction helpers

    def _pick_score_fn(self, score_fn: ScoreFn | None) -> ScoreFn | None:
        if score_fn is not None:
            return score_fn
        found = {id(c.score_fn): c.score_fn for c in self._root.walk() if c.score_fn is not None}
        if len(found) > 1:
            raise ValueError(
                "trip_on has conditions with different score_fn functions; pass one score_fn "
                "to the breaker instead"
            )
        return next(iter(found.values()), None)

    # ------------------------------------------------------------------ configuration

    @property
    def config(self) -> BreakerConfig:
        """The breaker's settings (frozen; change them with :meth:`configure`)."""
        return self._config

    def configure(self, **changes: Any) -> BreakerConfig:
        """Change settings at runtime: ``breaker.configure(track_latency=True)``.

        Takes any :class:`BreakerConfig` field; validates the new configuration as a whole,
        swaps it in and re-derives the fast path, so the change applies from the next call.
        ``metrics_only`` takes effect at the next :meth:`reset`. Returns the new config.
        """
        if "record_exceptions" in changes:
            changes["record_exceptions"] = check_exception_types(
                "record_exceptions", changes["record_exceptions"]
            )
        if "ignore_exceptions" in changes:
            changes["ignore_exceptions"] = check_exception_types(
                "ignore_exceptions", changes["ignore_exceptions"]
            )
        config = self._config.replace(**changes)
        score_fn = self._pick_score_fn(config.score_fn) if "score_fn" in changes else None
        with self._lock:
            self._config = config
            if "score_fn" in changes:
                self._score_fn = score_fn
            if "metrics_only" in changes:
                self._base_mode = _METRICS_ONLY if config.metrics_only else _NORMAL
            self._refresh_path_locked()
        return config

    # ------------------------------------------------------------------ public state

    @property
    def state(self) -> State:
        return self._state

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def trip_on(self) -> Condition:
        return self._root

    @property
    def path(self) -> Path:
        """The current generation's fast path (immutable; replaced on every transition)."""
        return self._path

    @property
    def shares_state(self) -> bool:
        """Whether a store links this breaker's state to other processes."""
        return self._link is not None

    @property
    def trip_count(self) -> int:
        return self._trip_count

    @property
    def opened_at(self) -> float | None:
        """When the breaker last opened, on its clock (``None`` if it never did)."""
        return self._opened_at

    @property
    def last_trip_at(self) -> float | None:
        """When the breaker last tripped, on its clock (``time.monotonic()`` by default;
        ``None`` if it never did), as in ml-breaker."""
        return self._last_trip_at

    @property
    def uses_quality(self) -> bool:
        return self._path.quality

    @property
    def fallback(self) -> Any:
        return None if self._fallback is NO_FALLBACK else self._fallback

    @property
    def has_fallback(self) -> bool:
        return self._fallback is not NO_FALLBACK

    def retry_after(self) -> float:
        """Seconds until the breaker admits a probe (0.0 when it admits calls now)."""
        with self._lock:
            return self._retry_after_locked(self._clock())

    def _retry_after_locked(self, now: float) -> float:
        if self._mode is _FORCED_OPEN:
            return math.inf
        if self._state is _OPEN and self._opened_at is not None:
            return max(0.0, self._opened_at + self._open_duration - now)
        return 0.0

    def rejection(self) -> CircuitBreakerOpen:
        """The CircuitBreakerOpen error describing the breaker now (not raised)."""
        return CircuitBreakerOpen(self.name, self._state, self._trip_count, self.retry_after())

    # ------------------------------------------------------------------ listeners

    def add_listener(self, listener: Listener) -> None:
        """Add an object with any of ``on_state_change(breaker, old, new)``,
        ``on_call(breaker, record, outcome)``, ``on_rejection(breaker, error)``."""
        with self._lock:
            self._listeners = [*self._listeners, listener]
            self._refresh_path_locked()

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = [x for x in self._listeners if x is not listener]
            self._refresh_path_locked()

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return tuple(self._listeners)

    def on_state_change(self, callback: StateChangeCallback) -> StateChangeCallback:
        """Register ``callback(breaker, old, new)``; usable as a decorator."""
        with self._lock:
            self._state_callbacks = [*self._state_callbacks, callback]
        return callback

    # ------------------------------------------------------------------ manual control

    def force_open(self, *, by: str | None = None, reason: str | None = None) -> None:
        """Reject every call until :meth:`reset` (a kill switch). With a shared store it acts
        on the whole fleet; ``by``/``reason`` are recorded there (who and why)."""
        self._set_mode(_FORCED_OPEN, _OPEN, control=("force_open", by, reason))

    def disable(self, *, by: str | None = None, reason: str | None = None) -> None:
        """Admit every call and keep recording stats, without evaluating conditions (fleet-wide
        with a shared store, like :meth:`force_open`)."""
        self._set_mode(_DISABLED, _CLOSED, control=("disable", by, reason))

    def reset(
        self, *, clear_stats: bool = False, by: str | None = None, reason: str | None = None
    ) -> None:
        """Back to CLOSED in the configured mode, with empty windows (fleet-wide with a shared
        store)."""
        self._set_mode(
            self._base_mode, _CLOSED, clear_stats=clear_stats, control=("reset", by, reason)
        )

    def trip(self) -> bool:
        """Open the breaker now, as if its condition had fired (an external signal such as a
        failed health probe). Unlike :meth:`force_open` it recovers normally after the cool-down.
        Returns True if it changed state (False when already open or not in normal operation)."""
        with self._lock:
            old = self._state
            if old is _OPEN or self._mode in (_FORCED_OPEN, _DISABLED):
                return False
            changed = self._open_locked(old, self._clock())
        if changed is not None:
            self._emit_state_change(*changed)
        return True

    def half_open_now(self, *, by: str | None = None, reason: str | None = None) -> bool:
        """End the cool-down of an OPEN breaker early and admit probes now (an external signal
        such as a passing health probe says the service is back). Returns True if it changed
        state (False unless the breaker is OPEN in normal or metrics-only mode). Fleet-wide with
        a shared store."""
        with self._lock:
            if self._state is not _OPEN or self._mode in (_FORCED_OPEN, _DISABLED):
                return False
            now = self._clock()
            self._enter_state_locked(_HALF_OPEN, now)
            self._control_locked(("half_open", by, reason), now)
            new = self._state
        if new is not _OPEN:
            self._emit_state_change(_OPEN, new)
        return True

    def _set_mode(
        self,
        mode: Mode,
        state: State,
        *,
        clear_stats: bool = False,
        control: tuple[str, str | None, str | None] | None = None,
    ) -> None:
        with self._lock:
            old = self._state
            self._mode = mode
            self._failed_recoveries = 0
            if clear_stats:
                self._clear_stats_locked()
            now = self._clock()
            self._enter_state_locked(state, now)
            shared = control is not None and self._control_locked(control, now)
            if not shared and self._link is not None and mode is self._base_mode:
                self._share_locked(old, state, now, reset=True)  # reset() closes the fleet
            new = self._state
        if old is not new:
            self._emit_state_change(old, new)

    def _control_locked(self, control: tuple[str, str | None, str | None], now: float) -> bool:
        """Tell the fleet about a manual action, if the store shares manual control (its link
        has ``control``); adopt its answer. False: the store does not share manual control."""
        send = getattr(self._link, "control", None)
        if send is None:
            return False
        shared = send(*control)
        if shared is not None:
            self._adopt_locked(shared, now)
        return True

    def _calls_in_generation(self) -> int:
        """The newest call number of the current generation (what ``observe``'s ``seq``
        counts), read without taking one."""
        with self._lock:
            return self._path.calls.value()

    def _calls_locked(self) -> int:
        return self._retired_calls + self._path.calls.value()

    def _clear_stats_locked(self) -> None:
        self._calls_offset = self._calls_locked()
        self._rejected_offset = self._rejections.value()
        self._failures = self._ignored = self._timed_calls = 0
        self._latency_sum = self._latency_max = self._quality_sum = 0.0
        self._quality_count = 0
        self._last_quality = None
        self._trip_count = 0
        self._last_trip_at = None

    # ------------------------------------------------------------------ the fast path

    def _build_path(self, gen: int, calls: Tally) -> Path:
        mode, state = self._mode, self._state
        admit = mode is _DISABLED or (state is _CLOSED and mode is not _FORCED_OPEN)
        config = self._config
        timed = (
            config.track_latency
            or bool(self._listeners)
            or any(c.uses_clock for c in self._root.walk())
        )
        quality = (
            config.require_quality_signal
            or self._score_fn is not None
            or any(c.uses_quality for c in self._root.walk())
        )
        lean = (
            admit
            and not timed
            and not quality
            and config.result_predicate is None
            and (mode is _DISABLED or (self._root.lean and not self._warming))
        )
        # While open, a rejection is decided without the lock: "is the clock before this?"
        # (Not when a listener wants to hear of rejections: those go through the slow path.)
        open_until: float | None = None
        if self._listeners:
            open_until = None
        elif mode is _FORCED_OPEN:
            open_until = math.inf
        elif state is _OPEN and mode is _NORMAL and self._opened_at is not None:
            open_until = self._opened_at + self._open_duration
        plain = not quality and config.result_predicate is None
        scored = quality and config.result_predicate is None and not config.require_quality_signal
        if quality:
            signals.may_run_inline(self)  # (its calls may run inline: see signals)
        quick = (
            state is _CLOSED
            and (mode is _NORMAL or mode is _METRICS_ONLY)
            and not lean
            and not self._listeners
            and not self._warming
            and (plain or scored)
        )
        return Path(
            gen=gen,
            state=state,
            mode=mode,
            admit=admit,
            lean=lean,
            quick=quick,
            scoped=quick and quality and (self._reports_scoped or signals.inline_off),
            timed=timed,
            quality=quality,
            plain=plain,
            scored=scored,
            open_until=open_until,
            calls=calls,
            step=self._root.quick_step() if quick and quality else None,
        )

    def _set_path(self, path: Path) -> None:
        """Swap in ``path`` (under the lock, or in the constructor). ``_lean`` mirrors it for
        the hottest check: the generation's counter when a plain success is lean, else None;
        the counter knows its generation's newest Path (``calls.path``)."""
        path.calls.path = path
        self._path = path
        self._lean = path.calls if path.lean else None

    def _scope_reports(self) -> None:
        """A report reached one of this breaker's inline calls (found by its frame, see
        :mod:`tripwise.core.signals`): from now on its quality calls are scoped (they set a
        context slot, which the next reports find without inspecting frames)."""
        with self._lock:
            if not self._reports_scoped:
                self._reports_scoped = True
                self._refresh_path_locked()

    def _refresh_path_locked(self) -> None:
        """Same generation, same counter, new decisions (a setting or listener changed)."""
        self._set_path(self._build_path(self._gen, self._path.calls))
        self._stale_path = self._build_path(_STALE_GEN, self._stale_path.calls)

    def _settle_locked(self, calls: Tally) -> None:
        """Add what a retired generation's counter counted since it was last settled (a call
        admitted in that generation may complete lock-free after the swap)."""
        n = calls.value()
        self._retired_calls += n - calls.settled
        calls.settled = n

    def _late_success(self, calls: Tally) -> None:
        """A lean success was counted on ``calls`` after the breaker swapped its path."""
        with self._lock:
            if calls is not self._path.calls:
                self._settle_locked(calls)

    # ------------------------------------------------------------------ the state machine

    def _enter_state_locked(self, state: State, now: float) -> None:
        old_calls = self._path.calls
        self._state = state
        self._gen += 1
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._state_changed_wall = time.time()
        if state is _OPEN:
            self._opened_at = now
            self._opened_at_wall = self._state_changed_wall
        elif state is _CLOSED:
            self._root.restart(0)
            self._warming = not self._root.warm(0)
            self._failed_recoveries = 0
        self._set_path(self._build_path(self._gen, Tally()))
        self._settle_locked(old_calls)

    def _open_locked(self, old: State, now: float) -> tuple[State, State] | None:
        """Trip from ``old`` and tell the fleet, if the breaker shares its state; returns the
        change to announce (the fleet may have moved first)."""
        self._trip_locked(now)
        if self._link is not None:
            return self._share_locked(old, _OPEN, now)
        return (old, _OPEN)

    def _trip_locked(self, now: float) -> None:
        config = self._config
        duration = config.half_open_after * config.half_open_backoff**self._failed_recoveries
        if config.half_open_jitter:
            duration *= 1.0 + config.half_open_jitter * self._rng.random()
        if config.max_half_open_after is not None:
            duration = min(duration, config.max_half_open_after)
        self._open_duration = duration
        self._trip_count += 1
        self._last_trip_at = now
        self._enter_state_locked(_OPEN, now)

    def _admit(self) -> Path:
        """Step 1: a permit (the Path the call runs in), or CircuitBreakerOpen."""
        path = self._path
        if path.admit:
            return path
        return self._admit_slow()

    def _admit_slow(self) -> Path:
        changed: tuple[State, State] | None = None
        rejection: CircuitBreakerOpen | None = None
        permit = self._stale_path
        with self._lock:
            now = self._clock()
            mode, state = self._mode, self._state
            if mode is _DISABLED or (state is _CLOSED and mode is not _FORCED_OPEN):
                permit = self._path
            elif mode is _FORCED_OPEN:
                rejection = self._reject_locked(math.inf)
            elif self._link is not None and (answer := self._ask_probe_locked(now)) is not None:
                permit, rejection, changed = self._admit_shared_locked(answer, now)
            else:
                if state is _OPEN:
                    assert self._opened_at is not None
                    remaining = self._opened_at + self._open_duration - now
                    if remaining > 0:
                        if mode is _METRICS_ONLY:
                            permit = self._path
                        else:
                            rejection = self._reject_locked(remaining)
                    else:
                        self._enter_state_locked(_HALF_OPEN, now)
                        changed = (_OPEN, _HALF_OPEN)
                        state = _HALF_OPEN
                if state is _HALF_OPEN:
                    if self._probes_in_flight < self._config.half_open_max_calls:
                        self._probes_in_flight += 1
                        permit = self._path
                    elif mode is _METRICS_ONLY:
                        permit = self._stale_path
                    else:
                        rejection = self._reject_locked(0.0)
        if changed is not None:
            self._emit_state_change(*changed)
        if rejection is not None:
            if self._listeners:
                dispatch_rejection(self, self._listeners, rejection)
            try:
                raise rejection
            finally:
                rejection = None  # no exception -> traceback -> frame -> exception cycle
        return permit

    def _reject_fast(self, path: Path) -> bool:
        """The open breaker's lock-free rejection on ``path``: True means "answer with the
        fallback"; raises CircuitBreakerOpen when there is none; False means "take the slow
        path" (the cool-down is over, or a listener wants to hear of rejections)."""
        until = path.open_until
        if until is None:
            return False
        now = self._clock()
        if now >= until:
            return False
        next(self._rejections)
        if self._fallback is not NO_FALLBACK:
            return True
        raise CircuitBreakerOpen(self.name, _OPEN, self._trip_count, until - now)

    # ------------------------------------------------------------------ shared state (slow path)

    def apply_shared_state(self, shared: SharedState) -> None:
        """Adopt a state the fleet moved to; a store calls this when another process changed it.

        Ignored when the store's link says the news is older than what the breaker already
        applied, and while the breaker is forced open or disabled unless the store shares manual
        control (``shared.mode`` is set).
        """
        with self._lock:
            link = self._link
            if (
                link is None
                or (shared.mode is None and self._mode in (_FORCED_OPEN, _DISABLED))
                or not link.accept(shared)
            ):
                return
            old = self._state
            self._adopt_locked(shared, self._clock())
            new = self._state
        if old is not new:
            self._emit_state_change(old, new)

    def _adopt_locked(self, shared: SharedState, now: float) -> None:
        mode = shared.mode  # None: the store does not share manual control
        entered = False
        if mode is not None:
            mode = self._base_mode if mode is Mode.NORMAL else mode
            if mode is not self._mode:
                self._mode = mode
                entered = True
        if entered or shared.state is not self._state:
            self._enter_state_locked(shared.state, now)  # new generation (and fast path)
        self._trip_count = shared.trip_count
        self._failed_recoveries = shared.failed_recoveries
        if shared.state is _OPEN:
            self._open_duration = shared.open_duration
            self._opened_at = now - shared.open_elapsed
            self._opened_at_wall = time.time() - shared.open_elapsed
            self._refresh_path_locked()  # the lock-free rejection deadline moved

    def _share_locked(
        self, old: State, new: State, now: float, *, reset: bool = False
    ) -> tuple[State, State] | None:
        """Tell the fleet about a local transition; adopt its answer (another process may have
        moved first). Returns the resulting change, if any."""
        assert self._link is not None
        shared = self._link.published(old, new, self._open_duration, reset=reset)
        if shared is not None:
            self._adopt_locked(shared, now)
        return (old, self._state) if self._state is not old else None

    def _ask_probe_locked(self, now: float) -> tuple[SharedState, bool] | None:
        """Ask the fleet for a probe permit, unless the local cool-down is still running."""
        if self._state is _OPEN:
            assert self._opened_at is not None
            if self._opened_at + self._open_duration > now:
                return None  # the local path rejects without a round trip
        assert self._link is not None
        return self._link.acquire_probe(self._config.half_open_max_calls)

    def _admit_shared_locked(
        self, answer: tuple[SharedState, bool], now: float
    ) -> tuple[Path, CircuitBreakerOpen | None, tuple[State, State] | None]:
        shared, granted = answer
        old = self._state
        self._adopt_locked(shared, now)
        state = self._state
        changed = (old, state) if state is not old else None
        if state is _CLOSED:
            return self._path, None, changed
        if granted and state is _HALF_OPEN:
            self._probes_in_flight += 1
            return self._path, None, changed
        if self._mode is _METRICS_ONLY:
            return (self._path if state is _OPEN else self._stale_path), None, changed
        return self._stale_path, self._reject_locked(self._retry_after_locked(now)), changed

    def _reject_locked(self, retry_after: float) -> CircuitBreakerOpen:
        next(self._rejections)
        return CircuitBreakerOpen(self.name, self._state, self._trip_count, retry_after)

    # ------------------------------------------------------------------ step 3: the outcome

    def _record(
        self,
        permit: Path,
        start: float | None,
        error: BaseException | None,
        quality: float | None,
        latency_ms: float | None = None,
        record: CallRecord | None = None,
    ) -> bool:
        """Complete ``permit`` with the outcome. Returns True if this call opened the breaker.

        ``start`` is the clock reading at admission (``None``: not timed); a stream passes its
        own ``latency_ms`` (to the first item) and listener ``record`` instead.
        """
        if start is not None:
            clock = self._clock_fn
            now = time.monotonic() if clock is None else clock()
            lat = (now - start) * 1000.0
            timed = True
        elif latency_ms is not None:
            now = self._clock()
            lat = latency_ms
            timed = True
        else:
            now = lat = 0.0
            timed = False
        changed: tuple[State, State] | None = None
        self._lock.acquire()
        try:
            if error is not None:
                self._failures += 1
            if timed:
                self._timed_calls += 1
                self._latency_sum += lat
                if lat > self._latency_max:
                    self._latency_max = lat
            if quality is not None:
                self._quality_sum += quality
                self._quality_count += 1
                self._last_quality = quality
            if permit.gen != self._gen:
                # Started before a transition: it counts in the stats, on its own generation's
                # counter, so it cannot fill the new generation's windows.
                next(permit.calls)
                if permit.calls is not self._path.calls:
                    self._settle_locked(permit.calls)
            elif self._mode is _DISABLED:
                next(self._path.calls)
            else:
                calls = self._path.calls
                seq = next(calls) - calls._reads + 1  # Tally.take(), inlined
                state = self._state
                if state is _CLOSED:
                    if self._root.observe(error, lat, quality, now, seq):
                        changed = self._open_locked(_CLOSED, now if timed else self._clock())
                    elif self._warming and self._root.warm(seq):
                        self._warming = False
                        self._refresh_path_locked()
                elif state is _HALF_OPEN:
                    self._probes_in_flight -= 1
                    if self._root.judge(error, lat, quality):
                        self._failed_recoveries += 1
                        changed = self._open_locked(_HALF_OPEN, now if timed else self._clock())
                    elif self._link is not None and (
                        shared := self._link.probe_done(True, self._config.recovery_threshold)
                    ):
                        self._adopt_locked(shared, self._clock())
                        if self._state is not _HALF_OPEN:
                            changed = (_HALF_OPEN, self._state)
                    else:
                        self._probe_successes += 1
                        if self._probe_successes >= self._config.recovery_threshold:
                            self._enter_state_locked(_CLOSED, self._clock())
                            changed = (_HALF_OPEN, _CLOSED)
        finally:
            self._lock.release()
        if self._listeners:
            if record is None:
                record = CallRecord(lat, error, quality, now)
            dispatch_call(self, self._listeners, record, "success" if error is None else "failure")
        if changed is not None:
            self._emit_state_change(*changed)
            return changed[1] is _OPEN
        return False

    def _complete(self, path: Path, lat: float | None, quality: float | None, now: float) -> bool:
        """The outcome of a call that returned on a ``quick`` path (CLOSED, no listeners, no
        result predicate): ``_record`` with no error, without its general cases. ``lat`` is
        None for an untimed call (``now`` is then not read). True if this call opened the
        breaker."""
        lock = self._lock
        lock.acquire()
        try:
            if path is self._path:
                # the stats, as in _record (inlined: a helper call costs this path ~5%)
                if lat is not None:
                    self._timed_calls += 1
                    self._latency_sum += lat
                    if lat > self._latency_max:
                        self._latency_max = lat
                if quality is not None:
                    self._quality_sum += quality
                    self._quality_count += 1
                    self._last_quality = quality
                calls = path.calls
                if (  # the root's own shortcut (quick_step) for a score in its range
                    quality is not None
                    and (step := path.step) is not None
                    and path.step_low <= quality <= path.step_high
                ):
                    next(calls)  # (a step takes no sequence number)
                    tripped = step(quality, now)
                else:
                    seq = next(calls) - calls._reads + 1  # Tally.take(), inlined
                    tripped = self._root.observe(
                        None, 0.0 if lat is None else lat, quality, now, seq
                    )
                if not tripped:
                    return False
                changed = self._open_locked(_CLOSED, self._clock() if lat is None else now)
            else:
                changed = _STALE
        finally:
            lock.release()
        if changed is _STALE:  # the path changed since admission: the general case
            return self._record(path, None, None, quality, lat)
        if changed is not None:
            self._emit_state_change(*changed)
            return changed[1] is _OPEN
        return False

    def _release(self, permit: Path) -> None:
        """Complete a permit without an outcome (ignored exception, cancellation)."""
        with self._lock:
            self._ignored += 1
            if permit.gen == self._gen and self._state is _HALF_OPEN:
                self._probes_in_flight -= 1
                if self._link is not None:
                    self._link.probe_done(None, self._config.recovery_threshold)
        if self._listeners:
            dispatch_call(self, self._listeners, None, "ignored")

    def _emit_state_change(self, old: State, new: State) -> None:
        if new is _OPEN and self._mode is _FORCED_OPEN:
            logger.warning("Circuit breaker '%s' forced open", self.name)
        elif new is _OPEN:
            logger.warning("Circuit breaker '%s' opened (trip #%d)", self.name, self._trip_count)
        elif new is _CLOSED:
            logger.info("Circuit breaker '%s' closed (was %s)", self.name, old.value)
        else:
            logger.info("Circuit breaker '%s' probing (half-open)", self.name)
        dispatch_state_change(self, self._state_callbacks, self._listeners, old, new)

    # ------------------------------------------------------------------ late quality scores

    LATE_QUALITY_CAPACITY = 10_000
    """The default of ``breaker.late_quality_capacity``: how many call ids handed out by
    ``current_call_id()`` wait for a late score at most; beyond that the oldest are forgotten."""

    _late_calls: dict[str, int] | None  # call id -> generation of the call
    _late_ids: itertools.count[int] | None

    def _register_late_call(self, gen: int) -> str:
        """Remember a call (by the generation it ran in) that may get a late score."""
        with self._lock:
            if self._late_calls is None or self._late_ids is None:
                self._late_calls = {}
                self._late_ids = itertools.count(1)
            pending = self._late_calls
            call_id = f"{self.name}#{next(self._late_ids)}"
            pending[call_id] = gen
            if len(pending) > self.late_quality_capacity:
                del pending[next(iter(pending))]
            return call_id

    def record_late_quality(self, call_id: str, score: float) -> bool:
        """Attach a quality ``score`` that arrived after the call returned (user feedback, an
        offline judge) to the call ``call_id`` from ``current_call_id()``.

        The score counts in the stats and, if the breaker is still CLOSED in the generation the
        call ran in, is shown to the quality conditions, which may trip the breaker. A score
        for a call from before a transition counts in the stats only. Returns False when the
        id is unknown, already scored, or was forgotten (see ``late_quality_capacity``).
        """
        quality = check_reported_score(score, "late quality score")
        changed: tuple[State, State] | None = None
        with self._lock:
            gen = self._late_calls.pop(call_id, None) if self._late_calls else None
            if gen is None:
                logger.debug("breaker %r: late score for unknown call id %r", self.name, call_id)
                return False
            self._quality_sum += quality
            self._quality_count += 1
            self._last_quality = quality
            if gen == self._gen and self._state is _CLOSED and self._mode is not _DISABLED:
                now = self._clock()
                if self._root.observe_late(quality, now):
                    changed = self._open_locked(_CLOSED, now)
        if changed is not None:
            self._emit_state_change(*changed)
        return True

    # ------------------------------------------------------------------ outcome classification

    def _counts_as_failure(self, exc: BaseException) -> bool:
        if not isinstance(exc, Exception):  # KeyboardInterrupt, CancelledError, SystemExit
            return False
        config = self._config
        if config.ignore_exceptions and isinstance(exc, config.ignore_exceptions):
            return False
        if not isinstance(exc, config.record_exceptions):
            return False
        if config.exception_predicate is None:
            return True
        try:
            return bool(config.exception_predicate(exc))
        except Exception:
            logger.exception(
                "exception_predicate of breaker %r failed; the call counts as neither success "
                "nor failure",
                self.name,
            )
            return False

    def _quality_of(self, result: Any, slot: list[Any] | None) -> float | None:
        """The call's score: the one reported in ``slot``, else the score_fn's of ``result``."""
        if slot is not None and slot[0] is not None:
            score: float = slot[0]
            return score
        score_fn = self._score_fn
        if score_fn is None:
            return None
        try:
            raw = score_fn(result)
        except Exception:
            self._score_failed()
            return None
        if type(raw) is float and raw - raw == 0.0:  # a finite float: nothing to check
            return raw
        return self._score_value(raw)

    def _score_value(self, raw: Any) -> float | None:
        """A score_fn's answer that is not a finite float, as the call counts it."""
        try:
            return check_reported_score(raw, "score_fn result")
        except Exception:
            self._score_failed()
            return None

    def _score_failed(self) -> None:
        logger.exception("score_fn of breaker %r failed; call counted without a score", self.name)

    def _finish(
        self,
        permit: Path,
        start: float | None,
        result: Any,
        slot: list[Any] | None,
        has_result: bool = True,
    ) -> bool:
        """Record a call that returned ``result`` (a ``with`` block has none to judge).

        Returns True when the caller should answer with the fallback instead: this call's own
        outcome (its quality, latency or rejected result) opened the breaker and a fallback
        exists (never in metrics-only mode)."""
        error: BaseException | None = None
        predicate = self._config.result_predicate
        if has_result and predicate is not None:
            try:
                rejected = predicate(result)
            except Exception:
                logger.exception(
                    "result_predicate of breaker %r failed; the call counts as neither success "
                    "nor failure",
                    self.name,
                )
                self._release(permit)
                return False
            if rejected:
                error = FailedResult(result)
        quality = None
        if permit.quality:
            if slot is not None and slot[0] is not None:
                quality = slot[0]
            elif has_result and self._score_fn is not None:
                quality = self._quality_of(result, None)
            if quality is None and self._config.require_quality_signal:
                self._release(permit)
                raise QualitySignalMissing(self.name)
        return self._record(permit, start, error, quality) and self._substitutes()

    def _substitutes(self) -> bool:
        """After a returned call opened the breaker: answer with the fallback instead?"""
        return self._fallback is not NO_FALLBACK and self._mode is not _METRICS_ONLY

    def _on_exception(self, permit: Path, start: float | None, exc: BaseException) -> bool:
        """Record a call that raised ``exc``. Returns True when the caller should answer with
        the fallback; raises CircuitBreakerOpen (chained to ``exc``) when this call tripped the
        breaker and there is no fallback; returns False when ``exc`` should propagate."""
        if not self._counts_as_failure(exc):
            self._release(permit)
            return False
        if not self._record(permit, start, exc, None) or self._mode is _METRICS_ONLY:
            return False  # (shadow mode never changes what the caller sees)
        if self._fallback is not NO_FALLBACK:
            return True
        raise CircuitBreakerOpen(
            self.name, self._state, self._trip_count, self._retry_after_locked(self._clock())
        ) from exc

    # ------------------------------------------------------------------ guarding calls

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` under the breaker. For a generator function (or an
        async generator function) this returns the guarded stream, see :meth:`stream`."""
        return guard.run(self, fn, args, kwargs)

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` under the breaker."""
        return await guard.arun(self, fn, args, kwargs)

    def stream(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Guard the stream ``fn(*args, **kwargs)`` (a generator function, sync or async):
        admission at the first item, the outcome when it ends (see
        :mod:`tripwise.core.streaming`)."""
        from tripwise.core import streaming

        return streaming.open_stream(self, fn, args, kwargs)

    def __call__(self, fn: F) -> F:
        """Decorate a sync or async function, or a (async) generator function; the wrapper
        exposes ``.breaker``."""
        return guard.decorate(self, fn)

    def decorate(self, fn: F) -> F:
        """Wrap ``fn`` (sync or async, or a generator function); the wrapper exposes the breaker
        as ``.breaker``."""
        return guard.decorate(self, fn)

    def __enter__(self) -> CircuitBreaker:
        """Guard a block. A rejected block raises CircuitBreakerOpen even when the breaker has
        a fallback: a block has no value to substitute (use ``call()`` or the decorator)."""
        guard.enter(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        guard.exit_block(self, exc)
        return False

    async def __aenter__(self) -> CircuitBreaker:
        guard.enter(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        guard.exit_block(self, exc)
        return False

    # ------------------------------------------------------------------ stats and registry

    def stats(self) -> BreakerStats:
        """A consistent snapshot of the breaker's counters and state."""
        with self._lock:
            calls = self._calls_locked() - self._calls_offset
            timed = self._timed_calls
            return BreakerStats(
                name=self.name,
                state=self._state,
                mode=self._mode,
                trip_count=self._trip_count,
                successes=calls - self._failures,
                failures=self._failures,
                ignored=self._ignored,
                rejected=self._rejections.value() - self._rejected_offset,
                avg_latency_ms=self._latency_sum / timed if timed else None,
                max_latency_ms=self._latency_max if timed else None,
                avg_quality=(
                    self._quality_sum / self._quality_count if self._quality_count else None
                ),
                last_quality=self._last_quality,
                quality_count=self._quality_count,
                opened_at=self._opened_at_wall,
                state_changed_at=self._state_changed_wall,
                created_at=self._created_wall,
                retry_after=self._retry_after_locked(self._clock()),
                failed_recoveries=self._failed_recoveries,
            )

    @classmethod
    def get(cls, name: str) -> CircuitBreaker:
        """The breaker registered under ``name`` in the process-wide registry (KeyError if none)."""
        from tripwise.core.registry import default_registry

        return default_registry.get(name)

    @classmethod
    def all(cls) -> dict[str, CircuitBreaker]:
        """Every breaker of the process-wide registry, by name."""
        from tripwise.core.registry import default_registry

        return default_registry.all()

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(name={self.name!r}, state={self._state.value}, "
            f"mode={self._mode.value}, trip_on={self._root!r})"
        )


def _config_view(field: str) -> property:
    def get(self: CircuitBreaker) -> Any:
        return getattr(self._config, field)

    def refuse(self: CircuitBreaker, value: Any) -> None:
        raise AttributeError(
            f"breaker.{field} is read-only (the config is frozen): use "
            f"breaker.configure({field}={value!r}) to change it"
        )

    get.__doc__ = f"``config.{field}`` (read-only; change it with ``configure({field}=...)``)."
    return property(get, refuse)


for _field in BreakerConfig.__dataclass_fields__:
    if _field != "score_fn":
        setattr(CircuitBreaker, _field, _config_view(_field))
del _field
