"""A lean run of the LALR(1) tables Lark builds from grammars/gradcli.lark.

Lark's own loop costs about 40 µs a term of a long program: a Token with eight fields and a
line count for every lexeme, and three or four Python calls for every reduction, most of them
for the chain of one-child rules (``?sum: product``, ``?product: unary``, ...) that only pass
their child on. This loop runs the same tables with Lark's own terminal regex, reduces by the
same rules in the same order and gives each callback the children Lark's child filter would
give it (placeholders included), but

- takes the lexemes' texts from one ``findall`` of Lark's terminal regex without its groups,
  tells each distinct text's terminal once, and makes a token (a str with ``type``,
  ``start_pos`` and ``end_pos``) only for the terminals a callback keeps;
- keeps the stack of states as interned ids, so that what a kind of lexeme does on a stack
  (the reductions it triggers, then its shift) is worked out once: a pass-through reduction
  (``?rule`` with one child) then costs nothing, and a table is looked up only for a new stack;
- calls the Builder's method for a rule directly.

``derive(lark_parser)`` reads all that out of a Lark object as plain data (dicts, lists,
strings, numbers), which grammar_cache keeps per user: a start then needs neither Lark's
import nor its tables' load. The loop knows nothing of errors: at the first lexeme or token
the tables refuse it gives up (``Refused``), and the caller parses the text again with Lark
itself, which reports the error exactly as always (the callbacks run in the same order, so
the same error comes first).
"""

import functools
import operator
import re

PASS, CALL, SPLICE = 0, 1, 2  # a rule's reduction: pass the child on, call a method, or keep
# the children for the parent rule to splice in (Lark's inlined ``__x_star_0`` helper rules)
FORMAT = 2  # of derive()'s data
STRAY = "_gradcli_stray_character"  # the regex group of a character no terminal matches


class Refused(Exception):
    """The text is not in the language (or the tables are not what this loop handles)."""


class Token(str):
    """A lexeme: its text, terminal name and place (what the Builder reads of Lark's)."""

    __slots__ = ("type", "start_pos", "end_pos")
    type: str
    start_pos: int
    end_pos: int

    @property
    def value(self):
        return str(self)


class _Kids(list):
    """The children of a helper rule, spliced into its parent's (Lark's ``to_expand``)."""


def derive(parser):
    """Lark's tables, terminal regex and child filters for ``parser`` (a Lark LALR parser
    with a basic lexer whose transformer's callbacks carry a ``target`` method name), as
    plain data for Tables; Refused for anything this loop does not reproduce exactly."""
    from lark.parse_tree_builder import (
        ChildFilterLALR,
        ChildFilterLALR_NoPlaceholders,
        ExpandSingleChild,
    )
    from lark.parsers.lalr_analysis import Shift

    frontend = parser.parser
    lexer = getattr(frontend.lexer, "lexer", frontend.lexer)  # inside a PostLexConnector
    scanner = lexer.scanner
    lalr = frontend.parser.parser
    table, callbacks = lalr.parse_table, lalr.callbacks
    if (
        len(scanner._mres) != 1
        or lexer.callback
        or lexer.user_callbacks
        or any(isinstance(k, str) for k in callbacks)  # a terminal's callback
    ):
        raise Refused("this loop handles one terminal regex without lexer callbacks")
    number = {rule: k for k, rule in enumerate(callbacks)}
    rules: list[tuple] = []
    for rule, f in callbacks.items():
        size, origin = len(rule.expansion), str(rule.origin.name)  # (Lark's names are Tokens)
        if isinstance(f, ExpandSingleChild):
            if size != 1 or (rule.expansion[0].is_term and rule.expansion[0].filter_out):
                raise Refused(f"a ?rule of {size} symbols without an alias: {rule}")
            rules.append((size, origin, PASS, None, None))
            continue
        include = [(i, False, 0) for i in range(size)]  # no filter: every child, in order
        append = 0
        if isinstance(f, ChildFilterLALR):
            include, append, f = list(f.to_include), f.append_none, f.node_builder
        elif isinstance(f, ChildFilterLALR_NoPlaceholders):
            include, f = [(i, expand, 0) for i, expand in f.to_include], f.node_builder
        picks: list = []  # a child's index, None for a placeholder, ~index to splice its children
        for i, expand, nones in include:
            picks += [None] * nones + [~i if expand else i]
        picks += [None] * append
        target = getattr(f, "target", None)
        if target is None and not origin.startswith("_"):
            raise Refused(f"rule {origin} has no callback: Lark would make a Tree")
        how = SPLICE if target is None else CALL
        rules.append((size, origin, how, None if picks == list(range(size)) else picks, target))
    actions = {
        state: {
            sym: (arg if action is Shift else ~number[arg]) for sym, (action, arg) in row.items()
        }
        for state, row in table.states.items()
    }
    kept = {str(s.name) for r in callbacks for s in r.expansion if s.is_term and not s.filter_out}
    terminals = [(str(t.name), t.pattern.to_regexp()) for t in scanner.terminals]
    if "|".join(f"(?P<{n}>{p})" for n, p in terminals) != scanner._mres[0].pattern:
        raise Refused("Lark's terminal regex is not the alternation of its terminals")
    return {
        "format": FORMAT,
        "pattern": scanner._mres[0].pattern,
        "terminals": terminals,  # (name, regex) in the order Lark tries them
        "flags": scanner._mres[0].flags,
        "ignore": sorted(str(t) for t in lexer.ignore_types),
        "kept": sorted(kept),  # the terminals some callback receives
        "start": table.start_states["start"],
        "end": table.end_states["start"],
        "actions": actions,
        "rules": rules,
    }


class Tables:
    """derive()'s data, ready for the loop: ``actions[state][symbol]`` is the next state for
    a shift or goto (>= 0), or ``~k`` for a reduction by ``rules[k]`` (size, origin, how,
    picks, target)."""

    def __init__(self, data):
        if data.get("format") != FORMAT:
            raise Refused("tables of another format")
        # The lexemes: Lark's terminals tried in Lark's order, then any other character
        # (which ends the loop). Without Lark's named groups: re skips an alternative that
        # starts with a literal or a character set on the first character, but tries every
        # one that starts with a group; which terminal a lexeme is, its text alone says
        # (the terminal regex matched on it), since no terminal looks around or anchors.
        alternatives = [f"(?:{regex})" for _, regex in data["terminals"]]
        self.lexeme = re.compile("|".join([*alternatives, r"[\s\S]"]), data["flags"])
        if self.lexeme.groups or self.lexeme.fullmatch("") or any(map(_looks_around, alternatives)):
            raise Refused("a terminal with a group, an empty match or a look around")
        self.terminal = re.compile(data["pattern"], data["flags"])
        symbols = {sym for row in data["actions"].values() for sym in row}
        self.names = sorted(symbols | {STRAY, *(name for name, _ in data["terminals"])})
        self.code = {name: k for k, name in enumerate(self.names)}  # (a lexeme's kind)
        self.ignore = frozenset(self.code[name] for name in data["ignore"])
        self.kept = frozenset(self.code[name] for name in data["kept"])
        self.start, self.end = data["start"], data["end"]
        self.actions = data["actions"]
        self.rules = [
            (size, origin, how, None if picks is None else tuple(picks), target)
            for size, origin, how, picks, target in data["rules"]
        ]


def _looks_around(regex):
    """Whether a terminal's regex may look past its own text: an anchor, a look-ahead or
    -behind, a word boundary or a back reference (conservatively: any such spelling)."""
    if any(e in "bBAZ0123456789" for e in re.findall(r"\\(.)", regex, re.DOTALL)):
        return True
    bare = re.sub(r"\\.", "", regex, flags=re.DOTALL).replace("[^", "[")
    return any(s in bare for s in ("^", "$", "(?=", "(?!", "(?<", "(?P="))


class _Kinds(dict):
    """A lexeme's text -> its terminal's code, worked out once per distinct text."""

    def __init__(self, tables):
        super().__init__()
        self.tables = tables

    def __missing__(self, text):
        tables = self.tables
        m = tables.terminal.match(text)
        if m is None and len(text) == 1:
            code = tables.code[STRAY]
        elif m is None or m.end() != len(text) or m.lastgroup is None:
            raise Refused(f"the lexeme {text!r} is not one terminal")
        else:
            code = tables.code[m.lastgroup]
        self[text] = code
        return code


LIMIT = 1 << 17  # interned stacks kept at most (a deeply nested program has many)


class _Stacks:
    """The parser's stack of states as interned ids: equal stacks have the same id, so the
    work a kind of lexeme does on a stack -- the reductions it triggers, its shift -- is
    worked out once, in ``steps``. A long program repeats a few stacks over and over (the
    stack after ``... +`` is the same for every term of a sum). An id is a multiple of
    ``width``, the number of codes, so that ``id + code`` keys ``steps``."""

    def __init__(self, tables, calls):
        self.tables, self.calls = tables, calls
        self.width = len(tables.code)
        self.ids: dict = {}  # (id below, state) -> id
        self.below: list = []  # id // width -> (id below, state)
        self.steps: dict = {}  # id + code -> (id after, the rules reduced before the shift)

    def push(self, below, state):
        key = (below, state)
        sid = self.ids.get(key)
        if sid is None:
            sid = self.ids[key] = len(self.below) * self.width
            self.below.append(key)
        return sid

    def states(self, sid):
        out = []
        while sid is not None:
            sid, state = self.below[sid // self.width]
            out.append(state)
        return out[::-1]

    def forget(self, sid) -> int:
        """Every stack but ``sid``'s forgotten; its new id."""
        states = self.states(sid)
        self.ids.clear()
        self.below.clear()
        self.steps.clear()
        new = self.push(None, states[0])
        for state in states[1:]:
            new = self.push(new, state)
        return new

    def step(self, sid, code):
        """``steps[sid + code]``, worked out: Lark's reductions on this lookahead until it
        shifts (or, for $END, until the start rule is done)."""
        if len(self.below) > LIMIT:
            sid = self.forget(sid)
        tables, below = self.tables, self.below
        actions, rules, width = tables.actions, tables.rules, self.width
        kind = tables.names[code]
        key = sid + code
        reduced: list = []
        while True:
            act = actions[below[sid // width][1]].get(kind)
            if act is None or (act >= 0 and kind == "$END"):
                raise Refused(kind)
            if act >= 0:  # shift
                self.steps[key] = hit = (self.push(sid, act), tuple(reduced))
                return hit
            size, origin, how, _, _ = rules[~act]
            if how != PASS:
                reduced.append(self.calls[~act])
            for _ in range(size):
                sid = below[sid // width][0]
            sid = self.push(sid, actions[below[sid // width][1]][origin])
            if kind == "$END" and below[sid // width][1] == tables.end:
                self.steps[key] = hit = (sid, tuple(reduced))
                return hit


def parse(tables, text, postlex, builder):
    """The start rule's value for ``text``: each CALL rule calls ``getattr(builder,
    target)``; ``postlex`` names the separator and bracket terminals. Raises Refused where
    Lark would raise a parse error.

    The lexemes are the regex's matches over the whole text, without ignored terminals, and
    with the post-lexer's rule for separators: none inside brackets, none first, one for a
    run (a separator is held back until a lexeme follows it)."""
    code = tables.code
    calls = [
        _call(size, how, picks, target, builder) for size, _, how, picks, target in tables.rules
    ]
    stacks = _Stacks(tables, calls)
    steps, step = stacks.steps, stacks.step
    kinds: dict = {}  # a lexeme's text -> its terminal's code (a plain dict: the fast lookup)
    tell = _Kinds(tables).__missing__
    ignore = tables.ignore
    sep, stray = code[postlex.SEP], code[STRAY]
    opens = {code[name] for name in postlex.OPEN}
    special = [False] * len(tables.names)  # by code: a terminal the loop looks at itself
    for k in ignore | opens | {sep, stray, *(code[name] for name in postlex.CLOSE)}:
        special[k] = True
    kept = [name if k in tables.kept else None for k, name in enumerate(tables.names)]
    depth = pos = 0
    pending = started = False  # a separator held back; a lexeme seen
    sid = stacks.push(None, tables.start)
    values: list = []
    push = values.append
    new_str = str.__new__
    for lexeme in tables.lexeme.findall(text):
        start = pos
        pos += len(lexeme)
        try:
            kind = kinds[lexeme]
        except KeyError:
            kind = kinds[lexeme] = tell(lexeme)
        if special[kind]:
            if kind in ignore:
                continue
            if kind == sep:
                pending = pending or (depth == 0 and started)
                continue
            if kind == stray:
                raise Refused("a character no terminal matches")
            if kind in opens:
                depth += 1
            elif depth:
                depth -= 1
        started = True
        while True:  # the held-back separator first, then this lexeme
            k = sep if pending else kind
            try:
                sid, reduced = steps[sid + k]
            except KeyError:
                sid, reduced = step(sid, k)
            for arity, size, a, b, c, method, _ in reduced:  # (what _apply does, inline)
                if arity == 1:
                    if size == 1:  # number, name: one child, passed on
                        values[-1] = method(values[-1])
                        continue
                    out = method(values[a])
                elif arity == 2:  # x * y: the children at a and b of the rule's
                    out = method(values[a], values[b])
                elif arity == 3:  # x + y, sin(x)
                    out = method(values[a], values[b], values[c])
                else:
                    _apply(values, size, a, method)  # (a: the rule's picker)
                    continue
                del values[-size:]
                push(out)
            if pending:
                pending = False
                push(None)
                continue
            name = kept[kind]
            if name is None:
                push(None)
            else:
                tok = new_str(Token, lexeme)
                tok.type = name
                tok.start_pos, tok.end_pos = start, pos
                push(tok)
            break
    _, reduced = step(sid, code["$END"])  # the end of the text: the start rule's reductions
    for call in reduced:
        _apply(values, call[1], call[6], call[5])
    return values[-1]


def _call(size, how, picks, target, builder):
    """How the loop reduces by a rule: (arity, size, a, b, c, method, picker). A CALL rule
    whose callback takes 1 to 3 of its children, none spliced and no placeholder, has arity
    1 to 3 and the children's offsets on the value stack in a, b, c (a call with neither
    a slice of the stack nor an argument tuple); any other rule has arity 0, its picker in
    a; the picker (for _apply) is last in each."""
    method = getattr(builder, target) if how == CALL else None
    pick = _picker(picks)
    order = list(range(size)) if picks is None else list(picks)
    if (
        how == CALL
        and size
        and 1 <= len(order) <= 3
        and all(k is not None and k >= 0 for k in order)
    ):
        offsets = [k - size for k in order] + [0] * (3 - len(order))
        return (len(order), size, *offsets, method, pick)
    return (0, size, pick, None, None, method, pick)


def _apply(values, size, pick, method):
    """One reduction on the value stack: its children popped, its value pushed."""
    if size:
        children = values[-size:]
        del values[-size:]
    else:
        children = []
    if pick is not None:
        children = pick(children)
    values.append(_kids(children) if method is None else method(*children))


def _picker(picks):
    """What gives a rule's children as Lark's child filter passes them on (None: all of
    them): an itemgetter where some are only left out, else _pick."""
    if picks is None:
        return None
    if len(picks) > 1 and all(k is not None and k >= 0 for k in picks):
        return operator.itemgetter(*picks)
    return functools.partial(_pick, picks=picks)


def _kids(children):
    """A helper rule's value: its children, in the list that already holds them if any."""
    return children if type(children) is _Kids else _Kids(children)


def _pick(children, picks):
    """The children Lark's child filter passes on: some of them, placeholders (None) where
    an optional part was absent, and a helper rule's children spliced in."""
    kids: list = []
    for k in picks:
        if k is None:
            kids.append(None)
        elif k >= 0:
            kids.append(children[k])
        elif kids:
            kids += children[~k]
        else:  # a left-recursive helper rule (a, b, c, ...): its list grows in place, as in
            kids = children[~k]  # Lark's ChildFilterLALR, so that n items cost O(n)
    return kids
