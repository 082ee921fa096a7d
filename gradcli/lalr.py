"""A lean run of the LALR(1) tables Lark builds from grammars/gradcli.lark.

Lark's own loop costs about 40 µs a term of a long program: a Token with eight fields and a
line count for every lexeme, and three or four Python calls for every reduction, most of them
for the chain of one-child rules (``?sum: product``, ``?product: unary``, ...) that only pass
their child on. This loop runs the same tables with the same terminal regex, reduces by the
same rules in the same order and calls the same callbacks, but

- takes lexemes from one ``finditer`` over Lark's own terminal pattern, and makes a Token
  (with the positions the callbacks read) only for the terminals a callback keeps;
- replaces a pass-through reduction (``?rule`` with one child) by its goto, without a call;
- calls the transformer's target method directly with the children Lark's child filter would
  give it (placeholders included).

It knows nothing of errors: at the first lexeme or token the tables refuse it gives up
(``Refused``), and the caller parses the text again with Lark itself, which reports the error
exactly as always (the callbacks run in the same order, so the same error comes first).
"""

from lark.lexer import Token
from lark.parse_tree_builder import (
    ChildFilterLALR,
    ChildFilterLALR_NoPlaceholders,
    ExpandSingleChild,
)
from lark.parsers.lalr_analysis import Shift

PASS, DIRECT, LARK = 0, 1, 2  # how a rule is reduced: pass the child on, call, Lark's callback


class Refused(Exception):
    """The text is not in the language (or the tables are not what this loop handles)."""


class Tables:
    """Lark's LALR tables and callbacks, in the shape the loop reads.

    ``actions[state][symbol]`` is the next state for a shift or goto (>= 0), or ``~rule``
    for a reduction by ``rules[rule]``: (size, origin, how, picks, callback, target)."""

    def __init__(self, parser):
        frontend = parser.parser
        lexer = getattr(frontend.lexer, "lexer", frontend.lexer)  # inside a PostLexConnector
        scanner = lexer.scanner
        lalr = frontend.parser.parser
        table = lalr.parse_table
        callbacks = lalr.callbacks
        if len(scanner._mres) != 1 or lexer.callback or lexer.user_callbacks:
            raise Refused("this loop handles one terminal regex without lexer callbacks")
        self.regex = scanner._mres[0]
        self.ignore = frozenset(lexer.ignore_types)
        self.start = table.start_states["start"]
        self.end = table.end_states["start"]
        number = {rule: k for k, rule in enumerate(callbacks)}
        self.actions = {
            state: {
                sym: (arg if action is Shift else ~number[arg])
                for sym, (action, arg) in row.items()
            }
            for state, row in table.states.items()
        }
        self.rules = [_rule(rule, f) for rule, f in callbacks.items()]
        if any(sym in callbacks for row in table.states.values() for sym in row if sym.isupper()):
            raise Refused("terminal callbacks")
        kept = set()
        for rule in callbacks:
            for sym in rule.expansion:
                if sym.is_term and not sym.filter_out:
                    kept.add(sym.name)
        self.kept = frozenset(kept)  # terminals some callback receives
        self.chains = {}  # (state below, state, lookahead) -> state after pass-throughs


def _rule(rule, f):
    size, origin = len(rule.expansion), rule.origin.name
    if (
        isinstance(f, ExpandSingleChild)
        and size == 1
        and not (rule.expansion[0].is_term and rule.expansion[0].filter_out)
    ):
        return (size, origin, PASS, None, None, None)
    picks = None  # every child, in order
    inner = f
    if isinstance(inner, ChildFilterLALR):
        if any(expand for _, expand, _ in inner.to_include):
            return (size, origin, LARK, None, f, None)
        picks = []
        for i, _, nones in inner.to_include:
            picks += [-1] * nones + [i]
        picks += [-1] * inner.append_none
        inner = inner.node_builder
    elif isinstance(inner, ChildFilterLALR_NoPlaceholders):
        if any(expand for _, expand in inner.to_include):
            return (size, origin, LARK, None, f, None)
        picks = [i for i, _ in inner.to_include]
        inner = inner.node_builder
    target = getattr(inner, "target", None)
    if target is None:
        return (size, origin, LARK, None, f, None)
    if picks is not None:
        picks = None if picks == list(range(size)) else tuple(picks)
    return (size, origin, DIRECT, picks, f, target)


def parse(tables, text, postlex, builder):
    """The start rule's value for ``text``: each DIRECT rule calls ``getattr(builder,
    target)``; ``postlex`` names the separator and bracket terminals (see _lexemes). Raises
    Refused where Lark would raise a parse error."""
    actions, rules, kept, chains = tables.actions, tables.rules, tables.kept, tables.chains
    methods = [getattr(builder, r[5]) if r[2] == DIRECT else None for r in rules]
    states = [tables.start]
    values: list = []
    push_state, push_value = states.append, values.append
    new_str = str.__new__
    for m in _lexemes(tables, text, postlex):
        kind = m.lastgroup
        while True:
            act = actions[states[-1]].get(kind)
            if act is None:
                raise Refused(kind)
            if act >= 0:  # shift
                push_state(act)
                if kind in kept:
                    text_ = m.group()
                    tok = new_str(Token, text_)
                    tok.type, tok.value = kind, text_
                    tok.start_pos, tok.end_pos = m.span()
                    push_value(tok)
                else:
                    push_value(None)
                break
            size, origin, how, picks, f, _ = rule = rules[~act]
            if how == PASS:  # a chain of them, once worked out for these states
                key = (states[-2], states[-1], kind)
                top = chains.get(key)
                if top is None:
                    top = chains[key] = _chain(tables, states[-2], states[-1], kind)
                states[-1] = top
                continue
            value = _reduce(rule, methods[~act], states, values, size)
            push_state(actions[states[-1]][origin])
            push_value(value)
    end = tables.end
    while True:  # the end of the text: reduce until the start rule is done
        act = actions[states[-1]].get("$END")
        if act is None or act >= 0:
            raise Refused("$END")
        rule = rules[~act]
        size, origin, how = rule[0], rule[1], rule[2]
        if how == PASS:
            states[-1] = actions[states[-2]][origin]
        else:
            value = _reduce(rule, methods[~act], states, values, size)
            push_state(actions[states[-1]][origin])
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


def _reduce(rule, method, states, values, size):
    if size:
        children = values[-size:]
        del values[-size:]
        del states[-size:]
    else:
        children = []
    how, picks, f = rule[2], rule[3], rule[4]
    if how == LARK:
        return f(children)
    if picks is None:
        return method(*children)
    return method(*[children[k] if k >= 0 else None for k in picks])


def _lexemes(tables, text, postlex):
    """The regex's matches over the whole text, without ignored terminals, and with the
    post-lexer's rule for separators: none inside brackets, none first, one for a run."""
    ignore, sep, opens, closes = tables.ignore, postlex.SEP, postlex.OPEN, postlex.CLOSE
    pos = depth = 0
    pending = None
    started = False
    for m in tables.regex.finditer(text):
        if m.start() != pos:
            raise Refused("a character no terminal matches")
        pos = m.end()
        kind = m.lastgroup
        if kind in ignore:
            continue
        if kind == sep:
            if depth == 0 and started:
                pending = m
            continue
        if pending is not None:
            yield pending
            pending = None
        if kind in opens:
            depth += 1
        elif kind in closes and depth:
            depth -= 1
        started = True
        yield m
    if pos != len(text):
        raise Refused("a character no terminal matches")
