"""Every Redis key, channel, TTL, close code and stream path in one place.

All keys share one hash tag (``{prefix}``) so that the atomic publish step can
touch them together on Redis Cluster too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CLOSE_BAD_REQUEST",
    "CLOSE_INTERNAL",
    "CLOSE_INVALID_DATA",
    "CLOSE_ORIGIN_REFUSED",
    "CLOSE_POLICY",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_SHUTDOWN",
    "CLOSE_SLOW_CLIENT",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_AGAIN",
    "DESK_FEED_MAXLEN",
    "IDEMPOTENCY_TTL",
    "ITEMS_INDEX_MAX",
    "SSE_PATH",
    "WEBHOOK_DEAD_LETTERS_MAX",
    "WS_PATH",
    "Keys",
]

# WebSocket close codes. 1xxx are RFC 6455 codes; 4xxx are ours. Clients
# should reconnect (and resume) after CLOSE_SHUTDOWN and CLOSE_SLOW_CLIENT,
# and give up after CLOSE_ORIGIN_REFUSED and CLOSE_BAD_REQUEST. Which reason
# closes with which code: ticker.disconnect.
CLOSE_SHUTDOWN = 1012  # service restart: reconnect, resume by last id
CLOSE_ORIGIN_REFUSED = 1008  # policy violation: terminal
CLOSE_POLICY = 1008  # other policy violations (a client flooding the server): terminal
CLOSE_SLOW_CLIENT = 4000  # backlog over its bound: reconnect, resume by last id
CLOSE_TRY_AGAIN = 1013  # Redis unreachable, cannot resume or load now: retry later
CLOSE_BAD_REQUEST = 4400  # bad filter or resume id: terminal
# What a parked WebSocket answers a misbehaving client with (ticker.serve.parking).
CLOSE_PROTOCOL_ERROR = 1002  # a frame RFC 6455 forbids: terminal
CLOSE_INVALID_DATA = 1007  # text that is not UTF-8: terminal
CLOSE_TOO_BIG = 1009  # a frame over WS_MAX_SIZE: terminal
CLOSE_INTERNAL = 1011  # a keepalive ping went unanswered: reconnect

# The two stream endpoints: the router, the stream gate, the fast lane and the
# connection cap all know them by these.
SSE_PATH = "/v1/stream"
WS_PATH = "/v1/ws"

IDEMPOTENCY_TTL = 24 * 3600  # seconds an Idempotency-Key answer is remembered
ITEMS_INDEX_MAX = 100_000  # newest items kept in the listing index (GET /v1/items)
DESK_FEED_MAXLEN = 5_000  # status changes kept in the desk feed stream (approximate)
WEBHOOK_DEAD_LETTERS_MAX = 1000  # dead letters kept per endpoint (oldest dropped)


@dataclass(frozen=True, slots=True)
class Keys:
    """Redis key names under one hash tag."""

    prefix: str = "ticker"

    @property
    def tag(self) -> str:
        return "{" + self.prefix + "}"

    @property
    def events(self) -> str:
        return f"{self.tag}:events"

    @property
    def live(self) -> str:
        return f"{self.tag}:live"

    @property
    def epoch(self) -> str:
        """The data's epoch: a random token written with the first event (or the first
        snapshot) of an empty Redis; a Redis that lost its data has none, or another."""
        return f"{self.tag}:epoch"

    @property
    def channel(self) -> str:
        return f"{self.tag}:channel"

    @property
    def none(self) -> str:
        """Stands in a script's KEYS for an absent key: '' would hash to another
        slot (CROSSSLOT on Redis Cluster). Scripts never touch it."""
        return f"{self.tag}:none"

    @property
    def replication_barrier(self) -> str:
        """Written just before WAIT (ticker.redis_conn.confirm_replicated)."""
        return f"{self.tag}:replication-barrier"

    @property
    def item_prefix(self) -> str:
        return f"{self.tag}:item:"

    @property
    def queue(self) -> str:
        # arq's queue: a sorted set of job ids plus its own job keys.
        return f"{self.tag}:queue"

    @property
    def stats(self) -> str:
        """Counters the workers keep for /metrics (duplicates, webhook deliveries)."""
        return f"{self.tag}:stats"

    def item(self, item_id: str) -> str:
        return f"{self.item_prefix}{item_id}"

    def history(self, item_id: str) -> str:
        return f"{self.tag}:history:{item_id}"

    def dedupe(self, key: str) -> str:
        return f"{self.tag}:dedupe:{key}"

    def recent(self, edition: str) -> str:
        """Sorted set of recently published item ids per edition, for near-duplicates."""
        return f"{self.tag}:recent:{edition}"

    def recent_count(self, edition: str) -> str:
        """How many items the publish step has added to the edition's recent set: a worker
        that knows every other worker's share has their items in its index."""
        return f"{self.tag}:recent:{edition}:count"

    def recent_count_by(self, edition: str, writer: str) -> str:
        """One worker process's share of :meth:`recent_count` (``writer``: its name)."""
        return f"{self.tag}:recent:{edition}:count:{writer}"

    def idempotency(self, principal: str, key: str) -> str:
        return f"{self.tag}:idem:{principal}:{key}"

    @property
    def webhooks(self) -> str:
        """Set of webhook endpoint ids."""
        return f"{self.tag}:webhooks"

    @property
    def webhook_cursor(self) -> str:
        """The last event id the webhook dispatcher has fanned out."""
        return f"{self.tag}:webhooks:cursor"

    def webhook(self, endpoint_id: str) -> str:
        """Hash: an endpoint's url, secret, filter, enabled flag."""
        return f"{self.tag}:webhook:{endpoint_id}"

    def webhook_state(self, endpoint_id: str) -> str:
        """Hash: delivery state (attempts on the head, failures, last error)."""
        return f"{self.tag}:webhook:{endpoint_id}:state"

    def webhook_queue(self, endpoint_id: str) -> str:
        """List: event envelopes waiting for delivery, oldest first."""
        return f"{self.tag}:webhook:{endpoint_id}:queue"

    def webhook_dead(self, endpoint_id: str) -> str:
        """List: dead letters (events that ran out of attempts), oldest first."""
        return f"{self.tag}:webhook:{endpoint_id}:dead"

    def webhook_lease(self, endpoint_id: str) -> str:
        """String: held by the one job delivering to this endpoint (per-endpoint order)."""
        return f"{self.tag}:webhook:{endpoint_id}:lease"

    @property
    def webpush_vapid(self) -> str:
        """Hash: the VAPID key pair made on first start (``private_pem``)."""
        return f"{self.tag}:webpush:vapid"

    @property
    def webpush_subscriptions(self) -> str:
        """Hash: subscription id (a hash of the endpoint) -> the subscription's JSON."""
        return f"{self.tag}:webpush:subs"

    @property
    def webpush_version(self) -> str:
        """Counter bumped on every subscription change, so senders reload their copy."""
        return f"{self.tag}:webpush:version"

    @property
    def webpush_cursor(self) -> str:
        """The last event id the Web Push sender has sent out."""
        return f"{self.tag}:webpush:cursor"

    @property
    def webpush_lease(self) -> str:
        """String: held by the one worker process sending Web Push (event order)."""
        return f"{self.tag}:webpush:lease"

    @property
    def webpush_retries(self) -> str:
        """Sorted set: sends to try again (JSON), scored by when."""
        return f"{self.tag}:webpush:retries"

    # The editors' desk: listing index, status feed, accounts, sessions.

    @property
    def items_index(self) -> str:
        """Sorted set of every item id by creation time (ms), for GET /v1/items."""
        return f"{self.tag}:items"

    @property
    def desk_feed(self) -> str:
        """Stream of item status changes (ticker.intake.deskfeed), followed by the desk board."""
        return f"{self.tag}:desk:feed"

    @property
    def desk_secret(self) -> str:
        """The session cookie signing secret when TICKER_DESK_SECRET is unset."""
        return f"{self.tag}:desk:secret"

    @property
    def users(self) -> str:
        """Set of editor account names."""
        return f"{self.tag}:users"

    def user(self, name: str) -> str:
        """Hash: an editor account (role, editions, password hash, disabled)."""
        return f"{self.tag}:user:{name}"

    def user_sessions(self, name: str) -> str:
        """Set of an editor's open session ids (dropped on disable or reset)."""
        return f"{self.tag}:user:{name}:sessions"

    def desk_session(self, sid: str) -> str:
        """Hash: a signed-in console session (user, CSRF token), with its expiry."""
        return f"{self.tag}:desk:session:{sid}"

    def login_failures(self, kind: str, who: str) -> str:
        """Counter of failed sign-ins per account or address, expiring with the window."""
        return f"{self.tag}:desk:fail:{kind}:{who}"

    def oidc_state(self, state: str) -> str:
        """A pending single sign-on (nonce, PKCE verifier), for ten minutes."""
        return f"{self.tag}:desk:oidc:{state}"
