#!/usr/bin/env python3
"""Writes the seeds of fuzz/fuzz-jmap-methods.c into fuzz/corpus/fuzz-jmap-methods/:
the generator's input bytes for requests worth starting from (the tables
below mirror the ones in the C file; keep them in step)."""
import os
import re

here = os.path.dirname(os.path.abspath(__file__))
src = open(os.path.join(here, "fuzz-jmap-methods.c")).read()


def table(name):
    body = re.search(r"\b%s\[\] = \{(.*?)\};" % name, src, re.S).group(1)
    return re.findall(r'"((?:[^"\\]|\\.)*)"', body)


methods, args, keys, strings = (table(n) for n in ("methods", "arg_names", "keys", "strings"))
NULL = [0]
def INT(i): return [3, i]  # index into ints[]: 0, 1, -1, 2, 255, 1000000, max, min
def STR(s): return [5, strings.index(s)]
def arr(*vals): return [8, len(vals)] + sum(vals, [])
def obj(*kv): return [10, len(kv)] + sum(([keys.index(k)] + v for k, v in kv), [])
def call(m, *a): return [methods.index(m), 1, len(a)] + sum(([args.index(n)] + v for n, v in a), [])
def req(*calls): return bytes([len(calls) - 1] + sum(calls, []))


seeds = {
    "email-get-null": req(call("Email/get", ("ids", arr(NULL)))),
    "email-get-object": req(call("Email/get", ("ids", arr(obj(("E1", INT(1))))))),
    "mailbox-get-int": req(call("Mailbox/get", ("ids", arr(INT(4))))),
    "snippet-null": req(call("SearchSnippet/get", ("emailIds", arr(NULL)))),
    "email-set-destroy-null": req(call("Email/set", ("destroy", arr(NULL, STR("E1"))))),
    "mailbox-set-destroy-int": req(call("Mailbox/set", ("destroy", arr(INT(1), STR("M3"))))),
    "identity-set-name": req(call("Identity/set", ("update", obj(("I1", obj(("name", STR("alice")))))))),
    "identity-changes": req(call("Identity/get", ("ids", NULL)),
                            call("Identity/changes", ("sinceState", STR("0")))),
    "submission-create": req(call("EmailSubmission/set",
                                  ("create", obj(("c1", obj(("identityId", STR("I1")), ("emailId", STR("E1")))))),
                                  ("onSuccessDestroyEmail", arr(STR("#c1"))))),
    "query-anchor": req(call("Email/query", ("anchor", INT(2)), ("filter", obj(("inMailbox", NULL))))),
}
out = os.path.join(here, "corpus", "fuzz-jmap-methods")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    open(os.path.join(out, name), "wb").write(data)
