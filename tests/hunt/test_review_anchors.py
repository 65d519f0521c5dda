"""Review of the anchor prefilter, index format 2 and the native lexers (2da35b8, cd98cd1,
a5d60e1): each test here showed one defect. The fixed ones are regression tests now; the
one left is a known limitation, documented in docs/hunt.md and marked
``xfail(strict=True)``, so a fix shows. A copy test indexes originals with ``seawall index add``, hunts a tarball with the
index as written (format 2: anchors decide what is parsed) and with the same index
converted to format 1 (no anchors: everything is parsed), and asserts the findings are the
same; the old pipeline's findings are asserted exactly too, so neither side can drift."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from builders import compress, tar_bytes
from hunt.fixtures import BILLING_TS, index_tree
from hunt.test_anchors import _as_version_1
from seawall.cli import main

pytest.importorskip("tree_sitter")

from seawall.hunt import anchors, lexer  # noqa: E402
from seawall.hunt.index import MAGIC, Index, IndexFormatError  # noqa: E402


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def build(tmp: Path, tree: dict[str, str], name: str = "private") -> tuple[Path, Path]:
    """Index ``tree`` with ``seawall index add``; return (format 2 index, format 1 twin)."""
    v2 = index_tree(tree, tmp / name, tmp / f"{name}.idx", name)
    v1 = tmp / f"{name}-v1.idx"
    v1.write_bytes(_as_version_1(v2.read_bytes()))
    return v2, v1


def hunt(tmp: Path, index: Path, members: dict[str, str]) -> list[tuple[str, str, str]]:
    """(suspect path, original, kind) of every file finding of a hunt of a tarball."""
    target = tmp / "leak.tgz"
    target.write_bytes(compress(tar_bytes({k: v.encode() for k, v in members.items()}), "gz"))
    result = run("hunt", str(target), "--index", str(index), "--jobs", "1", "--format", "json")
    doc = json.loads(result.output)
    assert doc["targets"][0]["error"] is None
    return sorted((f["path"], f["evidence"]["original"], f["evidence"]["kind"])
                  for f in doc["findings"] if f["rule"] == "leak.code-copy")


# -- 1. copies the old pipeline found and the anchor prefilter skips ---------------------


def test_verbatim_copy_of_an_original_indexed_more_than_df_cap_times(tmp_path: Path) -> None:
    """Regression (fixed). Before the fix: A file vendored into 11 places of the private tree (more than ``DF_CAP``) has no
    anchor that counts: ``anchor_total`` is 0, ``need`` is 1 and ``count > 0`` can never
    hold, so ``worth_parsing`` refuses every suspect rich in member anchors, even a
    verbatim copy, which the whole-file channel (not DF-capped) finds. Fix
    (``anchors.worth_parsing``): a suspect is worth parsing when some original with
    ``anchor_total == 0`` could still match (e.g. parse when ``totals.min() == 0``, or keep
    a set of the whole-file/text hashes of anchorless originals and check the suspect's
    text hash against it before refusing)."""
    tree = {f"team{i:02}/invoice.ts": BILLING_TS for i in range(11)}
    v2, v1 = build(tmp_path, tree)
    assert [f.anchors for f in Index.load(v2).files] == [0] * 11
    leak = {"package/invoice.ts": BILLING_TS}
    old = hunt(tmp_path, v1, leak)
    assert old == [("package/invoice.ts", f"team{i:02}/invoice.ts", "verbatim")
                   for i in range(11)]
    assert hunt(tmp_path, v2, leak) == old


STATUS_JS = """\
function describeStatus(code, verbose) {
  switch (code) {
    case 1:
      return verbose ? "zephyr queue idle now" : "idle";
    case 2:
      return verbose ? "zephyr queue draining slowly" : "draining";
    case 3:
      return verbose ? "zephyr ledger sealed" : "sealed";
    case 4:
      return verbose ? "zephyr quorum lost" : "quorum";
    case 5:
      return verbose ? "zephyr replica lagging behind" : "lagging";
    default:
      return "zephyr status unknown";
  }
}

function severityOf(code) {
  if (code >= 4) {
    return "page the zephyr oncall";
  }
  if (code === 3) {
    return "ticket for ledger team";
  }
  return "ignore";
}

module.exports = { describeStatus, severityOf };
"""
"""No member access and no string of six words: an original with no anchor at all."""

DOM_JS = """\
export function mountPanel(root, state) {
  const panel = root.ownerDocument.createElement("section");
  panel.classList.add("panel");
  panel.dataset.owner = state.user.name;
  root.appendChild(panel);
  state.listeners.push(() => panel.parentNode.removeChild(panel));
  window.addEventListener("resize", () => panel.style.setProperty("--w", root.clientWidth));
  panel.addEventListener("click", (event) => state.events.emit(event.target.dataset.action));
  return panel.getBoundingClientRect().height + state.layout.margin.top;
}
export function unmountAll(state) {
  state.listeners.forEach((listener) => listener.call(null));
  state.listeners.length = 0;
  state.events.removeAllListeners.apply(state.events);
  return state.layout.margin.bottom;
}
"""
"""Unrelated code rich in member accesses (38 member anchors)."""


def webpack(*modules: str) -> str:
    """Modules wrapped the way webpack 4 emits them, one function per module."""
    body = ",\n".join(f"/* {i} */ function (module, exports, __webpack_require__) {{\n{m}}}"
                      for i, m in enumerate(modules))
    return "(function (modules) { return modules; })([\n" + body + "\n]);\n"


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "known limitation (docs/hunt.md, Anchors): a suspect rich in member anchors of its own is "
    "not parsed for an original that has no anchors at all"))
def test_bundle_holding_an_original_without_anchors(tmp_path: Path) -> None:
    """The docs say "a copy of an original that has few anchors is never skipped, because
    it has few too": true of a copy alone, false of a bundle (under 1 MiB) or a
    concatenation, whose other modules bring member anchors of their own. A status table
    with no member access and short messages has 0 anchors, so ``need`` (1) can never be
    met, and the bundle is not parsed; the old pipeline finds it (k-grams, 20% of the
    original). Fix (``anchors.worth_parsing``): originals with fewer than ``MIN_HITS``
    counting anchors cannot be judged by anchors: if the index holds any, parse every
    suspect (or judge them by a second cheap channel, e.g. the words of short strings)."""
    v2, v1 = build(tmp_path, {"ops/status.js": STATUS_JS})
    assert [f.anchors for f in Index.load(v2).files] == [0]
    leak = {"dist/main.js": webpack(STATUS_JS, DOM_JS.replace("export ", ""))}
    assert len(anchors.member_anchors(leak["dist/main.js"].encode())) >= anchors.OWN_MIN
    old = hunt(tmp_path, v1, leak)
    assert old == [("dist/main.js", "ops/status.js", "verbatim")]
    assert hunt(tmp_path, v2, leak) == old


MESSAGES_RU = {
    "QUOTA": "Превышена дневная квота запросов для вашего рабочего пространства",
    "OVERDUE": "Счёт просрочен, доступ к моделям будет ограничен завтра утром",
    "ISSUED": "Новый счёт выставлен и отправлен на вашу почту сегодня",
    "DOWN": "Региональный кластер недоступен, запросы перенаправлены в соседний регион",
    "UP": "Кластер снова доступен, очередь запросов обрабатывается в обычном режиме",
}
MESSAGES_EN = {
    "QUOTA": "The daily request quota of your workspace is used up",
    "OVERDUE": "Invoice overdue, model access will be limited tomorrow morning",
    "ISSUED": "A new invoice was issued and sent to your mail today",
    "DOWN": "The regional cluster is down, requests are routed to a neighbouring region",
    "UP": "The cluster is back, the request queue is processed as usual again",
}
"""The same messages in Russian (no word in ``[a-z0-9]``) and in English (the control)."""

ALERTS_PY = '''\
QUOTA = "{QUOTA}"
OVERDUE = "{OVERDUE}"
ISSUED = "{ISSUED}"
DOWN = "{DOWN}"
UP = "{UP}"


class AlertBook:
    def __init__(self, sink, clock):
        self.sink = sink
        self.clock = clock
        self.sent = {{}}

    def quota(self, user):
        self.sink.send(user.chat.id, QUOTA)
        self.sent[user.id] = self.clock.now()

    def billing(self, user, invoice):
        if invoice.overdue:
            self.sink.send(user.chat.id, OVERDUE)
        else:
            self.sink.send(user.chat.id, ISSUED)

    def outage(self, region):
        for user in self.sink.users_in(region.name):
            self.sink.send(user.chat.id, DOWN)
        return self.clock.now() - region.down_since

    def recovered(self, region):
        for user in self.sink.users_in(region.name):
            self.sink.send(user.chat.id, UP)
'''

ALERTS_GO = '''\
package alerts

const (
\tquota   = "{QUOTA}"
\toverdue = "{OVERDUE}"
\tissued  = "{ISSUED}"
\tdown    = "{DOWN}"
\tup      = "{UP}"
)

func (b *Book) Quota(u *User) {{
\tb.sink.Send(u.Chat.ID, quota)
\tb.sent[u.ID] = b.clock.Now()
}}

func (b *Book) Billing(u *User, inv *Invoice) {{
\tif inv.Overdue {{
\t\tb.sink.Send(u.Chat.ID, overdue)
\t}} else {{
\t\tb.sink.Send(u.Chat.ID, issued)
\t}}
}}

func (b *Book) Outage(r *Region) time.Duration {{
\tfor _, u := range b.sink.UsersIn(r.Name) {{
\t\tb.sink.Send(u.Chat.ID, down)
\t}}
\treturn b.clock.Now().Sub(r.DownSince)
}}

func (b *Book) Recovered(r *Region) {{
\tfor _, u := range b.sink.UsersIn(r.Name) {{
\t\tb.sink.Send(u.Chat.ID, up)
\t}}
}}
'''
"""A port of ALERTS_PY to Go (``str.format`` with the messages): only they are the same."""


def test_string_only_port_of_messages_in_a_non_latin_script(tmp_path: Path) -> None:
    """Regression (fixed). Before the fix: Anchors read words with ``[a-z0-9]+`` on raw bytes, the string shingles with the
    lexer's ``WORD`` (``[^\\W_]+``, Unicode). Messages in Cyrillic (or Greek, CJK...) give
    no string anchor at all, so a port to another language, which shares only its
    strings, shares no anchor and is skipped; the old pipeline reports it
    ``string-only``. Fix (``anchors.string_anchors`` and ``word_anchors``): read words
    as the shingles do (decode UTF-8 and use ``lexer.WORD``, or a bytes regex that also
    takes every byte >= 0x80 as part of a word, ``rb"(?:[a-z0-9]|[\\x80-\\xff])+"``, on both
    sides)."""
    english = build(tmp_path, {"bot/alerts.py": ALERTS_PY.format(**MESSAGES_EN)}, "en")[0]
    leak = {"internal/alerts/alerts.go": ALERTS_GO.format(**MESSAGES_EN)}
    assert hunt(tmp_path, english, leak) == [  # control: found through its string anchors
        ("internal/alerts/alerts.go", "bot/alerts.py", "string-only")]
    original = ALERTS_PY.format(**MESSAGES_RU)
    v2, v1 = build(tmp_path, {"bot/alerts.py": original}, "ru")
    source = original.encode()
    fragments = lexer.tokenize(source, "python", fragments=True).fragments
    # Cyrillic words are words: each message gives its runs of six
    assert len(fragments) == 5 and len(anchors.string_anchors(source, fragments)) == 18
    assert Index.load(v2).files[0].anchors == len(anchors.member_anchors(source))
    leak = {"internal/alerts/alerts.go": ALERTS_GO.format(**MESSAGES_RU)}
    assert len(anchors.member_anchors(leak["internal/alerts/alerts.go"].encode())) >= 10
    old = hunt(tmp_path, v1, leak)
    assert old == [("internal/alerts/alerts.go", "bot/alerts.py", "string-only")]
    assert hunt(tmp_path, v2, leak) == old


QUOTA_PY = '''\
"""Quota accounting for the zephyrine inference gateway.

Every request that reaches the gateway is charged against the quota of the workspace
that sent it. The quota is kept in tokens rather than in requests, because a single
request to a large model can cost as much as a thousand requests to a small one, and
the finance team wants the invoices to follow what the hardware actually spent. The
counters live in the shared cache so that every replica of the gateway sees the same
numbers, and they are flushed to the ledger once a minute by the background worker.

Why not count in the ledger directly? The ledger is a relational database in another
region, and a round trip to it costs more than most of the requests we serve; writing
there on every request would double the latency of the fast models and turn a slow day
at the database into an outage of the whole product. The cache answers in well under a
millisecond, and losing a minute of counters in a crash costs us less than an hour of
engineering time would, so the trade was made on purpose and should stay that way.

Workspaces on the enterprise plan have no monthly budget, only a burst limit, which
the rate limiter enforces before a request ever reaches this module; their charges are
still recorded here because the invoice is computed from the same counters. Trial
workspaces get a fixed grant of tokens that never renews, and a workspace that runs
past its grant is moved to the read only tier by the billing service, not by us.

When the cache is unreachable the keeper falls back to the local spool, a plain file
of pending charges on the disk of the replica. The worker replays the spool as soon as
the cache answers again, oldest charge first, and deletes each line once the ledger has
acknowledged it, so a replica that dies with a full spool loses nothing but time.
"""


class QuotaKeeper:
    def __init__(self, cache, ledger, spool):
        self.cache = cache
        self.ledger = ledger
        self.spool = spool

    def charge(self, workspace, tokens):
        key = "quota:" + workspace.slug
        try:
            total = self.cache.incr(key, tokens)
        except self.cache.Unavailable:
            self.spool.append((workspace.slug, tokens))
            total = self.spool.pending(workspace.slug)
        return total
'''
"""A documented module: its docstring (string anchors) outweighs its code 28 to 1."""


def strip_module_docstring(source: str) -> str:
    """What python-minifier (``remove_literal_statements``) or a hand copy does."""
    return re.sub(r'"""(?:.|\n)*?"""\n+', "", source, count=1)


def test_copy_without_its_docstring(tmp_path: Path) -> None:
    """Regression (fixed). Before the fix: Python docstrings are string literals, so every run of six of their words is an
    anchor of the original: 333 of this module's 345 counting anchors. A copy with the
    docstring stripped (minified, or pasted without it) keeps all 12 member anchors of
    the code, but ``need`` is ``MIN_SHARE`` (5%) of 345 = 17.25, and the copy is not
    parsed; the old pipeline finds it (``verbatim``: the code's k-grams are all there).
    Fix (``anchors.worth_parsing`` and ``Index._count``): keep member and string anchor
    totals apart (two columns) and let either kind pass on its own share, or take the
    share of the smaller of the two totals."""
    v2, v1 = build(tmp_path, {"gateway/quota.py": QUOTA_PY})
    # member and string anchors are counted apart, each kind judged on its own share
    assert [(f.anchors, f.string_anchors) for f in Index.load(v2).files] == [(21, 329)]
    copy = strip_module_docstring(QUOTA_PY)
    assert copy.startswith("class QuotaKeeper:\n")
    own = anchors.member_anchors(copy.encode())
    assert len(own) == 12 and np.isin(own, Index.load(v2).anchor["hash"]).all()
    leak = {"site-packages/zgw/quota.py": copy}
    old = hunt(tmp_path, v1, leak)
    assert old == [("site-packages/zgw/quota.py", "gateway/quota.py", "verbatim")]
    assert hunt(tmp_path, v2, leak) == old


STORE_GO_WRAPPED = """\
package store

func (s *Store) Orders(customer int64) ([]Order, error) {
\tvar rows []Order
\terr := s.db.Table("orders").
\t\tWhere("customer_id = ?", customer).
\t\tOrder("created_at desc").
\t\tLimit(s.cfg.PageSize).
\t\tFind(&rows).
\t\tError
\treturn rows, err
}

func (s *Store) Refunds(order int64) ([]Refund, error) {
\tvar rows []Refund
\terr := s.db.Table("refunds").
\t\tWhere("order_id = ? and state <> ?", order, s.cfg.Void).
\t\tOrder("issued_at").
\t\tFind(&rows).
\t\tError
\treturn rows, err
}

func (s *Store) Overdue() (int64, error) {
\tvar n int64
\terr := s.db.Model(&Invoice{}).
\t\tWhere("due_at < ? and paid = false", s.clock.Now()).
\t\tCount(&n).
\t\tError
\treturn n, err
}

func (s *Store) Settle(inv *Invoice) error {
\treturn s.db.Model(inv).
\t\tUpdates(map[string]any{"paid": true, "paid_at": s.clock.Now(), "paid_via": "settlement"}).
\t\tError
}

func (s *Store) Purge(before int64) (int64, error) {
\tres := s.db.Table("orders").
\t\tWhere("created_at < ? and state = ? and archived = false", before, s.cfg.Draft).
\t\tDelete(&Order{})
\treturn res.RowsAffected, res.Error
}
"""
"""A Go repository layer as ``golines`` (max 100 columns) leaves it: each long query
chain broken after a call's dot, the only place Go lets a chain break."""


def join_chains(source: str) -> str:
    """The same code written with one-line chains (up to 131 columns)."""
    return re.sub(r"\.\n\t+", ".", source)


def test_go_chains_broken_after_the_dot(tmp_path: Path) -> None:
    """Regression (fixed). Before the fix: ``_MEMBER`` allows only spaces and tabs between ``.`` and the name, so in Go code
    wrapped by ``golines`` (or by hand: Go chains can only break after the dot) every
    name that starts a continuation line is lost, and the runs of three change. The
    copy below has 15 member anchors of its own and shares none of the original's 32:
    it is not parsed. The old pipeline finds it ``verbatim`` (whitespace is not a token).
    Fix (``anchors._MEMBER``): allow any whitespace, newlines included, after the dot
    (``rb"(?:\\.|->|::)\\s*([A-Za-z_$][\\w$]*)"``) on both sides."""
    original = join_chains(STORE_GO_WRAPPED)
    assert max(len(line.expandtabs(4)) for line in original.splitlines()) == 131
    v2, v1 = build(tmp_path, {"billing/store/store.go": original})
    assert [f.anchors for f in Index.load(v2).files] == [30]
    own = anchors.member_anchors(STORE_GO_WRAPPED.encode())
    # a name on the line after its dot is read now: the copy holds the original's runs
    assert len(own) == 30 and np.isin(own, Index.load(v2).anchor["hash"]).all()
    leak = {"vendor/store/store.go": STORE_GO_WRAPPED}
    old = hunt(tmp_path, v1, leak)
    assert old == [("vendor/store/store.go", "billing/store/store.go", "verbatim")]
    assert hunt(tmp_path, v2, leak) == old


MAPPERS_TS = """\
import type * as db from "./db";
import type * as api from "./api";

export function userDto(row: db.UserRow): api.User {
  return { id: row.user_id, value: row.display_name };
}

export function orderDto(row: db.OrderRow): api.Order {
  return { id: row.order_id, value: row.total_cents };
}

export function refundDto(row: db.RefundRow): api.Refund {
  return { id: row.refund_id, value: row.amount_cents };
}

export function invoiceDto(row: db.InvoiceRow): api.Invoice {
  return { id: row.invoice_no, value: row.due_date };
}

export function planDto(row: db.PlanRow): api.Plan {
  return { id: row.plan_code, value: row.seat_count };
}

export function seatDto(row: db.SeatRow): api.Seat {
  return { id: row.seat_id, value: row.holder_email };
}

export function couponDto(row: db.CouponRow): api.Coupon {
  return { id: row.coupon_code, value: row.percent_off };
}

export function regionDto(row: db.RegionRow): api.Region {
  return { id: row.region_code, value: row.vat_rate };
}
"""
"""Row-to-DTO mappers typed with namespace-qualified types (``db.UserRow``), two member
accesses in each body."""


def strip_qualified_types(source: str) -> str:
    """What ``tsc`` leaves of MAPPERS_TS: no type imports, no annotations."""
    return re.sub(r": (?:db|api)\.\w+", "", source.split("\n", 2)[2])


def test_type_stripped_copy_of_code_with_qualified_types(tmp_path: Path) -> None:
    """Regression (fixed). Before the fix: The private side reads member anchors from raw bytes, so the names of qualified
    types (``db.UserRow``, ``api.User``, as ``express.Request`` or ``React.FC`` elsewhere)
    are anchors and break every run of the code's own member names, while the compiled
    copy has none of them: it holds 14 member anchors of its own and 0 of the original's
    30, and is not parsed. The old pipeline drops types as whole subtrees and finds it.
    Fix (``fingerprint.fingerprint`` / ``anchors.private_anchors``): on the private side,
    take member names only outside the subtrees the lexer skips (types, comments,
    imports), e.g. from the parse's ``prop`` captures in source order, or blank the
    ``skip`` spans of the source before the regex runs."""
    v2, v1 = build(tmp_path, {"src/api/mappers.ts": MAPPERS_TS})
    # the private side keeps its text's runs (30) and those of the code without its
    # types (14, what the compiled copy holds)
    assert [f.anchors for f in Index.load(v2).files] == [44]
    copy = strip_qualified_types(MAPPERS_TS)
    assert copy.startswith("\nexport function userDto(row) {\n  return { id: row.user_id")
    own = anchors.member_anchors(copy.encode())
    assert len(own) == 14 and np.isin(own, Index.load(v2).anchor["hash"]).all()
    leak = {"dist/api/mappers.js": copy}
    old = hunt(tmp_path, v1, leak)
    assert old == [("dist/api/mappers.js", "src/api/mappers.ts", "verbatim")]
    assert hunt(tmp_path, v2, leak) == old


POLICY_MESSAGES = [
    "the signing key for this tenant was rotated less than an hour ago",
    "refusing to mint a token for a subject that has been suspended by billing",
    "token lifetime exceeds the maximum the tenant policy allows for service accounts",
]


def policy_py(limits: int) -> str:
    """A Python policy class: three checks with messages, then ``limits`` accessors that
    each read two attribute chains (8 KB at 80: an ordinary module)."""
    checks = "".join(
        f"    def check_{name}(self, {arg}):\n        if {test}:\n"
        f"            raise PolicyError(\"{message}\")\n\n"
        for (name, arg, test), message in zip(
            [("key", "key", "key.age < 3600"), ("subject", "subject", "subject.suspended"),
             ("lifetime", "lifetime", "lifetime > self.policy.max_lifetime")],
            POLICY_MESSAGES))
    accessors = "".join(
        f"    def limit_{i}(self):\n"
        f"        return self.policy.tier_{i}.ceiling + self.usage.meter_{i}.total\n\n"
        for i in range(limits))
    return "class TenantPolicy:\n" + checks + accessors


POLICY_GO = """\
package policy

func (p *Policy) CheckKey(k *Key) error {
\tif p.clock.Since(k.Created).Hours() < 1 {
\t\treturn errors.New("%s")
\t}
\treturn nil
}

func (p *Policy) CheckSubject(s *Subject) error {
\tif p.billing.Suspended(s.ID) {
\t\treturn errors.New("%s")
\t}
\treturn nil
}

func (p *Policy) CheckLifetime(d time.Duration) error {
\tif d > p.cfg.Policy.MaxLifetime {
\t\treturn errors.New("%s")
\t}
\treturn nil
}
""" % tuple(POLICY_MESSAGES)
"""A Go port of the checks: the same three messages, none of the Python's member runs."""


def test_string_only_port_of_a_member_heavy_original(tmp_path: Path) -> None:
    """Regression (fixed). Before the fix: A port shares only strings, but ``need`` is 5% of all the original's anchors,
    member runs included: this 8 KB module has 506, a port with all three of its
    messages holds their 24 string anchors (25.3 needed) and is not parsed; the old
    pipeline reports it ``string-only`` (32 shingles in common, 10 needed). The same
    mixed total loses the docstring-less copy above. Fix (``anchors.worth_parsing``):
    judge string anchors against the original's string-anchor total alone (a second
    column), or require only ``MIN_HITS`` of them, as ``MIN_SHINGLES`` does for
    shingles."""
    original = policy_py(80)
    v2, v1 = build(tmp_path, {"auth/policy.py": original})
    assert [(f.anchors, f.string_anchors, f.shingles) for f in Index.load(v2).files] == [
        (482, 24, 32)]
    held = np.isin(anchors.word_anchors(POLICY_GO.encode()), Index.load(v2).anchor["hash"])
    assert int(held.sum()) == 24
    leak = {"internal/policy/policy.go": POLICY_GO}
    old = hunt(tmp_path, v1, leak)
    assert old == [("internal/policy/policy.go", "auth/policy.py", "string-only")]
    assert hunt(tmp_path, v2, leak) == old


REVIEW_PROMPT = ("ROLE:\\nyou review pull requests for payments\\n"
                 "never approve changes to ledger code\\nanswer with a verdict and reason\\n"
                 "quote the lines that worry you\\n")
TRIAGE_PROMPT = ("ROLE:\\nyou triage incidents for the gateway\\npage the oncall for any outage\\n"
                 "file a ticket for slow requests\\nclose duplicates with a short note\\n")
"""Prompts as one literal each, lines ending in ``\\n`` (as written in source code)."""

REVIEWER_GO = f"""\
package review

const reviewPrompt = "{REVIEW_PROMPT}"

const triagePrompt = "{TRIAGE_PROMPT}"

func (r *Reviewer) Review(ctx context.Context, pr *PullRequest) (*Verdict, error) {{
\tmsgs := []Message{{{{Role: "system", Content: reviewPrompt}},
\t\t{{Role: "user", Content: pr.Diff.String()}}}}
\tout, err := r.client.Chat.Complete(ctx, r.cfg.Model, msgs)
\tif err != nil {{
\t\treturn nil, err
\t}}
\treturn parseVerdict(out.Choices[0].Message.Content)
}}

func (r *Reviewer) Triage(ctx context.Context, inc *Incident) (*Verdict, error) {{
\tmsgs := []Message{{{{Role: "system", Content: triagePrompt}},
\t\t{{Role: "user", Content: inc.Summary.Text()}}}}
\tout, err := r.client.Chat.Complete(ctx, r.cfg.TriageModel, msgs)
\tif err != nil {{
\t\treturn nil, err
\t}}
\treturn parseVerdict(out.Choices[0].Message.Content)
}}
"""

REVIEWER_JS = f"""\
const REVIEW_PROMPT = "{REVIEW_PROMPT}";

const TRIAGE_PROMPT = "{TRIAGE_PROMPT}";

export class Reviewer {{
  constructor(client, settings) {{
    this.client = client;
    this.settings = settings;
  }}

  async review(pullRequest) {{
    const reply = await this.client.chat.completions.create({{
      model: this.settings.reviewModel,
      messages: [{{ role: "system", content: REVIEW_PROMPT }},
        {{ role: "user", content: pullRequest.diff.text }}] }});
    return parseVerdict(reply.choices[0].message.content);
  }}

  async triage(incident) {{
    const reply = await this.client.chat.completions.create({{
      model: this.settings.triageModel,
      messages: [{{ role: "system", content: TRIAGE_PROMPT }},
        {{ role: "user", content: incident.summary.text }}] }});
    return parseVerdict(reply.choices[0].message.content);
  }}
}}
"""
"""A JavaScript port of REVIEWER_GO: the same prompts, nothing else in common."""


def test_string_only_port_of_prompts_with_escaped_newlines(tmp_path: Path) -> None:
    """Regression (fixed). Before the fix: On the private side the parser splits a Go/JS/C/Java literal into fragments at
    every escape, and ``string_anchors`` takes runs inside one fragment: ``you review
    pull requests for payments``. The suspect side runs ``[a-z0-9]+`` over raw bytes, where
    ``\\nyou`` reads ``nyou``: the "superset" the docs promise is false, and none of the
    8 string anchors of REVIEWER_GO is found even in REVIEWER_GO itself. A port that
    shares only its prompts (the channel made for ports) is skipped; the old pipeline
    finds it ``string-only`` (the shingles read the same fragments on both sides).
    Fix (``anchors.word_anchors`` and ``string_anchors``): read words the same way on
    both sides: blank backslash escapes (``rb"\\\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|.)"``)
    before ``_WORD`` runs, and on the private side take each literal's whole span."""
    v2, v1 = build(tmp_path, {"review/reviewer.go": REVIEWER_GO})
    assert len(anchors.member_anchors(REVIEWER_JS.encode())) >= anchors.OWN_MIN
    leak = {"lib/reviewer.js": REVIEWER_JS}
    old = hunt(tmp_path, v1, leak)
    assert old == [("lib/reviewer.js", "review/reviewer.go", "string-only")]
    assert hunt(tmp_path, v2, leak) == old


def test_a_verbatim_copy_holds_every_string_anchor_of_its_original() -> None:
    """Regression (fixed). Before the fix: The invariant the docs state ("a suspect's every run of 6 words is looked up, a
    superset, since a literal's words stay in order"), checked on the original itself:
    all 8 string anchors of REVIEWER_GO start right after a ``\\n`` and none of them is
    among the word runs of the very same bytes. Same fix as above."""
    source = REVIEWER_GO.encode()
    private = anchors.string_anchors(source, lexer.tokenize(source, "go",
                                                            fragments=True).fragments)
    assert len(private) == 40  # fragments joined across `\n`, escapes read as spaces
    assert np.isin(private, anchors.word_anchors(source)).all()


# -- 3. index format 2: corrupt or adversarial files -------------------------------------


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("review-format")
    v2, _ = build(root, {"billing/invoice.ts": BILLING_TS})
    return v2.read_bytes()


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    magic, version, hlen = struct.unpack_from("<8sII", data, 0)
    assert magic == MAGIC and version == 2
    start = 16 + hlen + (-(16 + hlen) % 8)
    return json.loads(data[16:16 + hlen]), data[start:]


def _join(header: dict[str, Any], body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    head = struct.pack("<8sII", MAGIC, header["version"], len(raw)) + raw
    return head + b"\0" * (-len(head) % 8) + body


def _anchor_bytes(header: dict[str, Any]) -> int:
    """Bytes the anchor section (the last one) takes at the end of the file."""
    section = header["sections"][-1]
    assert section["name"] == "anchor"
    sizes = [section["count"] * np.dtype(dt).itemsize for _, dt in section["arrays"]]
    return sum(size + (-size % 8) for size in sizes)


def test_version_2_index_without_anchor_section_is_refused(
        small_index: bytes, tmp_path: Path) -> None:
    """Regression (fixed). Before the fix: ``Index._parse`` takes ``sections.get("anchor", {})`` whatever the version, and
    ``__post_init__`` turns the missing section into an empty table. The file rows still
    say 17 anchors, so ``has_anchors`` is true, ``_hits`` finds nothing and
    ``worth_parsing`` refuses every suspect with 10 member anchors: a verbatim copy of
    the indexed file is hunted clean, with no error. Fix (``Index._parse``): for version
    >= 2 require every section of ``_sections()`` (raise ``IndexFormatError(f"{path}:
    corrupt index: no anchor section")``), and for version 1 ignore any anchor section."""
    header, body = _split(small_index)
    cut = _anchor_bytes(header)
    header["sections"] = header["sections"][:-1]
    broken = tmp_path / "broken.idx"
    broken.write_bytes(_join(header, body[:-cut]))
    with pytest.raises(IndexFormatError, match="broken.idx: corrupt index"):
        Index.load(broken)


def test_infinite_anchor_count_is_a_format_error(small_index: bytes, tmp_path: Path) -> None:
    """Regression (fixed). Before the fix: ``int(r[8])`` of ``1e400`` (Python's json reads it as ``inf``) raises
    ``OverflowError``, which ``Index.load`` does not turn into ``IndexFormatError`` (it
    catches ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError,
    struct.error): ``seawall index info`` and ``seawall hunt`` end in a traceback. The
    same holds for the older integer columns (lines, counting k-grams and shingles).
    Fix (``Index.load``): add ``OverflowError`` to the caught exceptions (better: check
    each row is 9 values with non-negative ``int`` counts, -1 allowed for anchors)."""
    header, body = _split(small_index)
    assert header["files"][0][8] == 16
    header["files"][0][8] = float("inf")  # json writes `Infinity`, as it reads `1e400`
    path = tmp_path / "inf.idx"
    path.write_bytes(_join(header, body))
    with pytest.raises(IndexFormatError, match="inf.idx: corrupt index"):
        Index.load(path)
    result = CliRunner().invoke(main, ["index", "info", str(path)])
    assert result.exit_code == 2 and result.exception is not None
    assert isinstance(result.exception, SystemExit)
    assert "inf.idx: corrupt index" in result.output


def test_negative_anchor_file_id_is_a_format_error(small_index: bytes, tmp_path: Path) -> None:
    """Regression (fixed). Before the fix: ``_check`` compares only ``file.max()`` with the file count and never the dtypes
    the header names: an anchor ``file`` array declared ``<i4`` holding -1 loads, and then
    ``np.bincount`` fails on every suspect ("detector codecopy failed: ValueError"),
    naming the suspect rather than the index. Fix (``Index._check``): require each
    array's dtype to be the one in ``*_FIELDS`` (or check ``file.min() >= 0``)."""
    header, body = _split(small_index)
    section = header["sections"][-1]
    section["arrays"][1][1] = "<i4"
    at = len(body) - _anchor_bytes(header) + section["count"] * 8  # the first file id
    corrupt = body[:at] + struct.pack("<i", -1) + body[at + 4:]
    path = tmp_path / "negative.idx"
    path.write_bytes(_join(header, corrupt))
    with pytest.raises(IndexFormatError, match="negative.idx: corrupt index"):
        Index.load(path)


# -- 2. hostile input: the C++ template-depth guard --------------------------------------


def _deep_template(depth: int, arrows: int) -> bytes:
    """``using T = A<A<...1>...>;`` nested ``depth`` deep, after a comment of ``->``."""
    return (b"// " + b"->" * arrows + b"\nusing T = " + b"A<" * depth + b"1" + b">" * depth
            + b";\n")


def test_template_depth_guard_cannot_be_cancelled_by_arrows_in_a_comment() -> None:
    """Regression (fixed). Before the fix: ``_template_depth`` is documented as an upper bound, but it subtracts every ``>``
    since the last ``;``/``{``/``}``: a comment of 10,000 ``->`` before a type nested
    10,000 deep reads as depth 0, and tree-sitter-cpp then spends 15.7 CPU s on the 50 KB
    file (measured: ``_deep_template(10_000, 10_000)``; 2.8 s at 5,000; it grows with the
    2.6th power), which a release can repeat in every ``.cpp``/``.hpp`` it ships. Fix
    (``lexer._template_depth``): never let the level fall below the statement's start
    (a running ``max(level, start)``, e.g. clamp with ``np.maximum.accumulate`` per
    statement, or count only ``<`` since the statement start, a true upper bound), and
    blank comments and string literals' ``>`` out of the count."""
    source = _deep_template(300, 300)
    assert lexer._template_depth(_deep_template(300, 0)) == 300
    assert lexer._template_depth(source) > lexer.MAX_TEMPLATE_DEPTH
    tokens = lexer.tokenize(source, "cpp")
    assert tokens.norm == [] and tokens.errors


def _stream_dump(fields: int) -> bytes:
    """One ordinary statement: a struct printed field by field with ``<<``."""
    items = b"".join(b' << "f%d=" << r.f%d' % (i, i) for i in range(fields))
    return (b"#include <iostream>\nvoid dump(const Row& r) {\n  std::cout" + items
            + b" << std::endl;\n}\n")


def test_a_long_shift_chain_is_not_refused_as_deep_templates(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (fixed). Before the fix: ``std::cout << a << b ...`` with 130 ``<<`` in one statement (a struct dumped field
    by field, a serialiser, a bit-packing expression) reads as template depth 260 > 256.
    ``tokenize`` then returns no tokens for the whole file (not only the statement, as
    docs/hunt.md says), so neither the original nor any copy of it has a k-gram: the
    file can never be found. tree-sitter parses it in about a millisecond. Fix
    (``lexer._template_depth``): skip ``<<`` and ``<=`` (and ``->``/``>>``/``>=`` on the
    other side), and refuse only the statement, or only when the parse is really slow."""
    source = _stream_dump(65)
    assert lexer._template_depth(source) == 1  # `<<` is a shift, not a bracket (`<iostream>`)
    monkeypatch.setattr(lexer, "MAX_TEMPLATE_DEPTH", 10**9)
    unguarded = lexer.tokenize(source, "cpp")
    assert len(unguarded.norm) == 6 + 3 * 65 + 2 and not unguarded.errors  # .std .cout, f0 I .f0...
    monkeypatch.undo()
    assert lexer.tokenize(source, "cpp").norm == unguarded.norm


# -- the native lexers: string words across languages ------------------------------------

ESCAPED = r'"ROLE:\nyou review pull requests\tfor payments\n"'


@pytest.mark.parametrize("language, source", [
    ("go", f"package p\nconst P = {ESCAPED}\n"),
    ("rust", f"const P: &str = {ESCAPED};\n"),
    ("java", f"class C {{ String p = {ESCAPED}; }}\n"),
    ("c", f"const char *p = {ESCAPED};\n"),
])
def test_python_and_native_literals_give_the_same_words(language: str, source: str) -> None:
    """Regression (fixed: normaliser 4). Before the fix: The shingle channel exists for ports, and a port of a Python prompt module to Go
    (or back) keeps its literals byte for byte. tree-sitter-python's ``string_content``
    spans the escapes inside it, and ``lexer._words`` runs ``WORD`` over that raw text,
    so ``\\nyou`` gives ``nyou`` and ``\\tfor`` gives ``tfor``; Go, Rust, Java and C (and
    JavaScript) fragments stop at each escape. Every shingle that holds a word after an
    escape differs, so prompts written as ``\\n``-separated lines share almost no shingle
    between Python and the new languages (they did not before either with JavaScript).
    Fix (``lexer._words``): blank backslash escapes in the fragment text before ``WORD``
    runs (or capture Python's ``escape_sequence`` nodes and cut fragments at them)."""
    python = lexer.tokenize(f"P = {ESCAPED}\n".encode(), "python").words
    native = lexer.tokenize(source.encode(), language).words
    assert native == ["role", "you", "review", "pull", "requests", "for", "payments"]
    assert python == native
