"""A lean run of the LALR(1) tables Lark builds from grammars/gradcli.lark.

Lark's own loop costs about 40 µs a term of a long program: a Token with eight fields and a
line count for every lexeme, and three or four Python calls for every reduction, most of them
for the chain of one-child rules (``?sum: product``, ``?product: unary``, ...) that only pass
their child on. This loop runs the same tables with Lark's own terminal regex, reduces by the
same rules in the same order and gives each callback the children Lark's child filter would
give it (placeholders included), but

- takes lexemes from one ``finditer``, and makes a token (a str with ``type``, ``start_pos``
  and ``end_pos``) only for the terminals a callback keeps;
- replaces a pass-through reduction (``?rule`` with one child) by its goto, without a call;
- calls the Builder's method for a rule directly.

``derive(lark_parser)`` reads all that out of a Lark object as plain data (dicts, lists,
strings, numbers), which grammar_cache keeps per user: a start then needs neither Lark's
import nor its tables' load. The loop knows nothing of errors: at the first lexeme or token
the tables refuse it gives up (``Refused``), and the caller parses the text again with Lark
itself, which reports the error exactly as always (the callbacks run in the same order, so
the same error comes first).
"""

import re

PASS, CALL, SPLICE = 0, 1, 2  # a rule's reduction: pass the child on, call a method, or keep
# the children for the parent rule to splice in (Lark's inlined ``__x_star_0`` helper rules)
FORMAT = 1  # of derive()'s data
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
    return {
        "format": FORMAT,
        "pattern": scanner._mres[0].pattern,
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
        # Lark's terminal regex, and last a character no terminal matches (which ends the
        # loop: finditer would skip it)
        if f"(?P<{STRAY}>" in data["pattern"]:
            raise Refused(f"a terminal named {STRAY}")
        self.regex = re.compile(f"(?:{data['pattern']})|(?P<{STRAY}>[\\s\\S])", data["flags"])
        self.ignore = frozenset(data["ignore"])
        self.kept = frozenset(data["kept"])
        self.start, self.end = data["start"], data["end"]
        self.actions = data["actions"]
        self.rules = [
            (size, origin, how, None if picks is None else tuple(picks), target)
            for size, origin, how, picks, target in data["rules"]
        ]
        self.chains = {}  # (state below, state, lookahead) -> state after pass-throughs
        self.gotos = {}  # (state below, rule's origin, lookahead) -> the same after a goto


def parse(tables, text, postlex, builder):
    """The start rule's value for ``text``: each CALL rule calls ``getattr(builder,
    target)``; ``postlex`` names the separator and bracket terminals. Raises Refused where
    Lark would raise a parse error.

    The lexemes are the regex's matches over the whole text, without ignored terminals, and
    with the post-lexer's rule for separators: none inside brackets, none first, one for a
    run (a separator is held back until a lexeme follows it)."""
    actions, rules, kept, chains = tables.actions, tables.rules, tables.kept, tables.chains
    gotos = tables.gotos
    methods = [getattr(builder, r[4]) if r[2] == CALL else None for r in rules]
    ignore, sep, opens = tables.ignore, postlex.SEP, postlex.OPEN
    special = ignore | {sep, STRAY, *opens, *postlex.CLOSE}  # (the rest only pass through)
    depth = 0
    pending = started = False  # a separator held back; a lexeme seen
    states = [tables.start]
    values: list = []
    push_state, push_value = states.append, values.append
    new_str = str.__new__
    for m in tables.regex.finditer(text):
        kind = m.lastgroup
        if kind in special:
            if kind in ignore:
                continue
            if kind == sep:
                pending = pending or (depth == 0 and started)
                continue
            if kind == STRAY:
                raise Refused("a character no terminal matches")
            if kind in opens:
                depth += 1
            elif depth:
                depth -= 1
        started = True
        while True:  # the held-back separator first, then this lexeme
            k = sep if pending else kind
            act = actions[states[-1]].get(k)
            if act is None:
                raise Refused(k)
            if act >= 0:  # shift
                push_state(act)
                if pending:
                    pending = False
                    push_value(None)
                    continue
                if kind in kept:
                    tok = new_str(Token, m.group())
                    tok.type = kind
                    tok.start_pos, tok.end_pos = m.span()
                    push_value(tok)
                else:
                    push_value(None)
                break
            size, origin, how, picks, _ = rules[~act]
            if how == PASS:  # a chain of them, once worked out for these states
                key = (states[-2], states[-1], k)
                top = chains.get(key)
                if top is None:
                    top = chains[key] = _chain(tables, states[-2], states[-1], k)
                states[-1] = top
                continue
            # (what _reduce does, inline: this is the hot path)
            if size == 1:
                children = [values.pop()]
                del states[-1]
            elif size:
                children = values[-size:]
                del values[-size:]
                del states[-size:]
            else:
                children = []
            if picks is not None:
                children = _pick(children, picks)
            # the goto, and the pass-throughs that follow it on this lookahead (the same
            # for the same state below, rule and lookahead: worked out once)
            key = (states[-1], origin, k)
            top = gotos.get(key)
            if top is None:
                below = states[-1]
                top = gotos[key] = _chain(tables, below, actions[below][origin], k)
            push_state(top)
            push_value(methods[~act](*children) if how == CALL else _kids(children))
    end = tables.end
    while True:  # the end of the text: reduce until the start rule is done
        act = actions[states[-1]].get("$END")
        if act is None or act >= 0:
            raise Refused("$END")
        rule = rules[~act]
        if rule[2] == PASS:
            states[-1] = actions[states[-2]][rule[1]]
        else:
            value = _reduce(rule, methods[~act], states, values)
            push_state(actions[states[-1]][rule[1]])
            push_value(value)
        if states[-1] == end:
            return values[-1]


def _chain(tables, below, state, kind):
    """The state on top of ``below`` once every pass-through reduction on ``kind`` is done."""
    actions, rules = tables.actions, tables.rules
    while True:
        act = actions[state].get(kind)
        if act is None or act >= 0 or rules[~act][2] != PASS:
            return state
        state = actions[below][rules[~act][1]]


def _reduce(rule, method, states, values):
    size, _, how, picks, _ = rule
    if size:
        children = values[-size:]
        del values[-size:]
        del states[-size:]
    else:
        children = []
    if picks is not None:
        children = _pick(children, picks)
    if how == SPLICE:
        return _kids(children)
    return method(*children)


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
